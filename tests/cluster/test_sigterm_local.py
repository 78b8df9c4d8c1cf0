"""SIGTERM (what a scheduler sends before SIGKILL) to a local distill, teach and generate: a graceful exit, 130.

No Slurm: the stage itself stops at its next boundary (a checkpoint at the next optimizer step; the
batch in flight written), the rerun resumes, and no row or metrics step is lost or counted twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.dataset as ds

from stages.artifacts.layout import data_files, manifest_path, metrics_path
from tests.cluster.conftest import ENV, rlt, wait_for
from tests.conftest import ROOT

STEPS = 24


def spawn(args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rltcli", *map(str, args)], cwd=ROOT, text=True,
                            env={**os.environ, **ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def term_when(args, ready, what: str) -> str:
    """Start `rlt ARGS`, SIGTERM it once `ready()`; returns its stderr after asserting the graceful exit."""
    proc = spawn(args)
    try:
        wait_for(lambda: ready() or proc.poll() is not None, 300, what, every=0.1)
        assert proc.poll() is None, f"finished before the signal:\n{proc.stderr.read()[-2000:]}"
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err[-3000:]
    assert "SIGTERM: stopping at the next boundary" in err and "Traceback" not in err, err[-3000:]
    assert err.rstrip().endswith("rlt: error: interrupted; rerun the same command to resume"), err[-1000:]
    return err


def metric_rows(out: Path) -> int:
    p = metrics_path(out)
    return len(p.read_text().splitlines()) if p.is_file() else 0


def saved_step(err: str) -> int:
    return int(err.split("checkpoint saved at step ")[1].split()[0].rstrip(";:,"))


def check_training(out: Path, err: str, args) -> None:
    step = saved_step(err)
    assert (out / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").is_file()  # saved at the stop
    assert not manifest_path(out).exists()
    again = rlt(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest.get("global_step", (manifest.get("training") or {}).get("global_step")) == STEPS
    steps = [json.loads(line)["step"] for line in metrics_path(out).read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1)), steps  # each row once, none lost


def test_sigterm_distill_saves_at_the_next_step_and_resumes(tiny_teacher, synth_train, tmp_path):
    out = tmp_path / "student"
    args = ["distill", "--model", tiny_teacher, "--data", synth_train, "--out", out, "--preset", "tiny",
            f"max_steps={STEPS}", "batch_size=4", "logging_steps=1", "save_steps=1000"]
    err = term_when(args, lambda: metric_rows(out) >= 2, "two distill steps")
    check_training(out, err, args)


def test_sigterm_teach_saves_at_the_next_step_and_resumes(tiny_teacher, tiny_student, synth_train, tmp_path):
    out = tmp_path / "teacher"
    args = ["teach", "--teacher", tiny_teacher, "--student", tiny_student, "--data", synth_train, "--out", out,
            "--preset", "tiny", f"max_steps={STEPS}", "num_generations=2", "prompts_per_step=2",
            "max_new_tokens=12", "logging_steps=1", "save_steps=1000"]
    err = term_when(args, lambda: metric_rows(out) >= 2, "two teach steps")
    check_training(out, err, args)


def _rows(out: Path) -> list[tuple]:
    table = ds.dataset(str(out), format="parquet").to_table(columns=["id", "sample", "explanation"])
    return sorted(zip(*(table.column(c).to_pylist() for c in ("id", "sample", "explanation"))))


def test_sigterm_generate_writes_the_batch_in_flight_and_resumes(tiny_teacher, synth_train, tmp_path):
    batch = 2
    out, whole = tmp_path / "traces", tmp_path / "whole"
    common = ["--teacher", tiny_teacher, "--data", synth_train, "--max-new-tokens", 48, "--temperature", 0,
              f"engine.batch_size={batch}"]
    term_when(["generate", *common, "--out", out], lambda: len(data_files(out)) >= 2, "two generate batches")
    written = len(data_files(out))
    assert written >= 2 and not manifest_path(out).exists()
    again = rlt("generate", *common, "--out", out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "from the earlier run" in again.stderr
    assert rlt("generate", *common, "--out", whole).returncode == 0
    rows = _rows(out)
    assert len(rows) == 64 and len({r[:2] for r in rows}) == 64  # none lost, none twice
    assert rows == _rows(whole)  # the resumed run wrote what an uninterrupted one writes
