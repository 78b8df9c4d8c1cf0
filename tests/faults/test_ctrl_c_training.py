"""Ctrl-C keeps what SIGTERM keeps: a training run saves a checkpoint at the next optimizer step, says so,
exits 130 and keeps its folder; the rerun (and `rlt run --plan`) resumes at that step."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from stages.artifacts.layout import manifest_path, metrics_path
from tests.conftest import ROOT, rlt
from tests.faults.conftest import ONE_THREAD, _default_sigint


def ctrl_c_when_training(args, out):
    """Start `rlt ARGS` in its own process group; once a training step is logged, SIGINT the whole group (as a
    terminal's Ctrl-C does); returns (exit code, stderr)."""
    _default_sigint()
    proc = subprocess.Popen([sys.executable, "-m", "rltcli", *map(str, args)], cwd=ROOT, text=True,
                            env={**os.environ, **ONE_THREAD}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.time() + 240
        while not (metrics_path(out).is_file() and metrics_path(out).read_text().strip()):
            assert proc.poll() is None and time.time() < deadline, proc.stderr.read()[-3000:]
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, err


def saved_step(err: str) -> int:
    m = re.search(r"checkpoint saved at step (\d+)", err)
    assert m, err[-3000:]
    return int(m.group(1))


def assert_kept(code: int, err: str, out) -> int:
    assert code == 130 and "Traceback" not in err, err[-3000:]
    assert "rlt: SIGINT: stopping at the next boundary" in err
    assert err.rstrip().endswith("rlt: error: interrupted; rerun the same command to resume"), err[-1000:]
    step = saved_step(err)
    assert step >= 1 and (out / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").is_file()
    assert not manifest_path(out).exists()
    return step


@pytest.mark.parametrize("launch", [[], ["--launch", "ddp", "--nproc", "2"]], ids=["one", "ddp2"])
def test_ctrl_c_saves_distill(tiny_teacher, synth_train, tmp_path, launch):
    out = tmp_path / "student"
    args = ["distill", "--model", tiny_teacher, "--data", synth_train, "--out", out, "--preset", "tiny",
            "--max-steps", 400, "--batch-size", 4, "save_steps=1000", "logging_steps=1", "--device", "cpu", *launch]
    step = assert_kept(*ctrl_c_when_training(args, out), out)
    shown = rlt("inspect", out, env=ONE_THREAD)
    assert shown.returncode == 0 and f"at step {step} (rerun the same command to resume)" in shown.stdout, shown.stdout


def test_ctrl_c_saves_teach(tiny_teacher, tiny_student, synth_train, tmp_path):
    out = tmp_path / "teacher"
    args = ["teach", "--teacher", tiny_teacher, "--student", tiny_student, "--data", synth_train, "--out", out,
            "--preset", "tiny", "--max-steps", 200, "--max-new-tokens", 8, "save_steps=1000", "--device", "cpu"]
    assert_kept(*ctrl_c_when_training(args, out), out)


def test_ctrl_c_in_a_pipeline_resumes_at_the_saved_step(tiny_teacher, synth_train, tmp_path):
    pipelines = tmp_path / "pipelines.yaml"
    pipelines.write_text(json.dumps({"sft": {"steps": {"student": {"command": "distill", "options": {
        "model": str(tiny_teacher), "data": str(synth_train), "preset": "tiny", "max_steps": 400, "batch_size": 4,
        "save_steps": 1000, "logging_steps": 1, "device": "cpu"}}}}}))
    runs = tmp_path / "runs"
    args = ["run", "sft", "--file", pipelines, "--runs", runs]
    out = runs / "sft" / "student"
    step = assert_kept(*ctrl_c_when_training(args, out), out)
    plan = rlt(*args, "--plan", env=ONE_THREAD)
    assert plan.returncode == 0, plan.stderr
    assert f"resume interrupted run (at step {step})" in " ".join(plan.stdout.replace("│", " ").split()), plan.stdout
