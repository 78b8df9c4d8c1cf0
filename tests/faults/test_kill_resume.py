"""SIGKILL and SIGINT at seeded random moments: reruns resume, no row is lost or written twice.

For the deterministic stages (greedy generate, score, greedy eval) the resumed artifact equals an
uninterrupted run row for row; training stages resume from their last checkpoint and end at the
step the manifest records.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections import Counter
from pathlib import Path

import pytest

from stages.artifacts.layout import manifest_path, meta_path, metrics_path, summary_path
from stages.artifacts.read import read_rows
from tests.conftest import rlt
from tests.faults.conftest import ONE_THREAD, checkpoints, comparable, kill_loop, manifest, parts, spawn, wait_for

KILLS = 2
GEN = ["--limit", 24, "--batch-size", 2, "--max-new-tokens", 16, "--temperature", 0, "--device", "cpu"]
# one question per part: 16 parts, so that two kills land before a run can finish (16 tokens take milliseconds)
EVAL = ["--batch-size", 1, "--max-new-tokens", 16, "--temperature", 0, "engine.device=cpu"]


def _assert_complete(out: Path, kind: str, key: tuple[str, ...], ref: Path | None = None) -> list[dict]:
    """Manifest present, every key exactly once, and (given a reference) the same rows as it."""
    m = manifest(out)
    rows = read_rows(out, kind)
    assert m["kind"] == kind and m["rows"] == len(rows)
    dup = [k for k, n in Counter(tuple(r[c] for c in key) for r in rows).items() if n > 1]
    assert not dup, f"rows written twice: {dup[:3]}"
    assert not meta_path(out, "lock").exists() and not list(out.glob(".part-*.tmp"))
    if ref is not None:
        assert comparable(rows, key) == comparable(read_rows(ref, kind), key)
    return rows


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from stages.commands.data import SynthConfig, synth

    return synth(SynthConfig(out=str(tmp_path_factory.mktemp("faults") / "data"), n=24, seed=0))


@pytest.fixture(scope="module")
def gen_ref(tiny_teacher, data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "gen"
    rlt("generate", "--teacher", tiny_teacher, "--data", data, "--out", out, *GEN, check=True, env=ONE_THREAD)
    return out


def test_generate_survives_kills(tiny_teacher, data, gen_ref, tmp_path, rng):
    out = tmp_path / "gen"
    args = ["generate", "--teacher", tiny_teacher, "--data", data, "--out", out, *GEN]
    assert kill_loop(args, out, parts, rng, KILLS, max_delay=0.1) == KILLS
    assert not manifest_path(out).exists() and parts(out) > 0
    rlt(*args, check=True, env=ONE_THREAD)
    assert len(_assert_complete(out, "traces", ("id", "sample"), gen_ref)) == 24


def test_score_survives_kills(tiny_teacher, tiny_student, gen_ref, tmp_path, rng):
    args = ["score", "--teacher", tiny_teacher, "--student", tiny_student, "--data", gen_ref,
            "--batch-size", 1, "--device", "cpu"]
    ref = tmp_path / "ref"
    rlt(*args, "--out", ref, check=True, env=ONE_THREAD)
    out = tmp_path / "scored"
    assert kill_loop([*args, "--out", out], out, parts, rng, KILLS, max_delay=0.05) == KILLS
    rlt(*args, "--out", out, check=True, env=ONE_THREAD)
    assert len(_assert_complete(out, "traces", ("id", "sample"), ref)) == 24


@pytest.mark.slow
def test_eval_survives_kills(tiny_teacher, synth_test, tmp_path, rng):
    args = ["eval", "--model", tiny_teacher, "--data", synth_test, *EVAL]
    ref = tmp_path / "ref"
    rlt(*args, "--out", ref, check=True, env=ONE_THREAD)
    out = tmp_path / "eval"
    assert kill_loop([*args, "--out", out], out, parts, rng, KILLS, max_delay=0.02) == KILLS
    rlt(*args, "--out", out, check=True, env=ONE_THREAD)
    assert len(_assert_complete(out, "eval", ("model", "id", "sample"), ref)) == 16
    assert json.loads(summary_path(out).read_text()) == json.loads(summary_path(ref).read_text())


def _assert_training_resumed(out: Path, steps: int, metrics_step: str = "step") -> dict:
    m = manifest(out)
    logged = [json.loads(x)[metrics_step] for x in metrics_path(out).read_text().splitlines() if x]
    assert logged == sorted(set(logged)) and logged[-1] == steps, logged  # each step once, in order
    assert (out / "model.safetensors").is_file() and not meta_path(out, "lock").exists()
    return m


@pytest.mark.slow
def test_distill_survives_kills(tiny_student, gen_ref, tmp_path, rng):
    out = tmp_path / "student"
    args = ["distill", "--model", tiny_student, "--data", gen_ref, "--out", out, "--preset", "tiny",
            "--max-steps", 20, "--batch-size", 4, "--device", "cpu", "save_steps=1", "logging_steps=1"]
    assert kill_loop(args, out, checkpoints, rng, KILLS, max_delay=0.2) == KILLS
    resume_from = checkpoints(out)
    assert 0 < resume_from < 20
    rlt(*args, check=True, env=ONE_THREAD)
    m = _assert_training_resumed(out, 20)
    assert m["global_step"] == 20 and m["resumed_from"] is not None
    assert int(m["resumed_from"].split("-")[-1]) >= resume_from


def test_teach_survives_kills(tiny_teacher, tiny_student, data, tmp_path, rng):
    out = tmp_path / "teacher"
    args = ["teach", "--teacher", tiny_teacher, "--student", tiny_student, "--data", data, "--out", out,
            "--max-steps", 5, "--device", "cpu", "prompts_per_step=2", "num_generations=2",
            "max_new_tokens=8", "reward_batch_size=8", "save_steps=1"]
    assert kill_loop(args, out, checkpoints, rng, KILLS, max_delay=0.3) == KILLS
    resume_from = checkpoints(out)
    assert 0 < resume_from < 5
    rlt(*args, check=True, env=ONE_THREAD)
    m = _assert_training_resumed(out, 5)
    assert m["training"]["global_step"] == 5
    assert int(Path(m["training"]["resumed_from"]).name.split("-")[-1]) >= resume_from


def test_run_pipeline_survives_kills(tiny_teacher, gen_ref, tmp_path, rng):
    pipelines = tmp_path / "pipelines.yaml"
    gen = {"teacher": str(tiny_teacher), "data": "${data}", "limit": 24, "max_new_tokens": 16,
           "temperature": 0, "engine": {"batch_size": 2, "device": "cpu"}}
    pipelines.write_text(json.dumps({"faults": {"steps": {
        "data": {"command": "data synth", "options": {"n": 24, "seed": 0}},
        "gen": {"command": "generate", "options": gen}}}}))
    runs = tmp_path / "runs"
    args = ["run", "faults", "--file", pipelines, "--runs", runs]
    out = runs / "faults" / "gen"
    assert kill_loop(args, out, parts, rng, KILLS, max_delay=0.1) == KILLS
    assert manifest_path(runs / "faults" / "data").is_file() and not manifest_path(out).exists()
    rlt(*args, check=True, env=ONE_THREAD)
    _assert_complete(runs / "faults" / "data", "dataset", ("id",))
    assert len(_assert_complete(out, "traces", ("id", "sample"), gen_ref)) == 24


def test_ctrl_c_exits_130_with_one_line_and_resumes(tiny_teacher, data, gen_ref, tmp_path):
    out = tmp_path / "gen"
    args = ["generate", "--teacher", tiny_teacher, "--data", data, "--out", out, *GEN]
    proc = spawn(args)
    try:
        assert wait_for(lambda: parts(out) >= 2, proc), "finished before Ctrl-C"
        os.kill(proc.pid, signal.SIGINT)
    finally:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    said = [line for line in err.splitlines() if line.startswith("rlt:")]
    assert said == [("rlt: SIGINT: stopping at the next boundary (the work in flight is kept; Ctrl-C again stops at "
                     "once)"), "rlt: error: interrupted; rerun the same command to resume"], err
    assert not manifest_path(out).exists() and not meta_path(out, "lock").exists()
    before = parts(out)
    again = rlt(*args, check=True, env=ONE_THREAD)
    assert f"of {24 // 2} batches to generate" in again.stderr and before > 0
    assert len(_assert_complete(out, "traces", ("id", "sample"), gen_ref)) == 24


@pytest.mark.parametrize("command", ["distill", "teach"])
def test_kill_mid_checkpoint_save_resumes_from_the_last_whole_one(command, tiny_teacher, tiny_student, data,
                                                                   tmp_path):
    """A kill while a checkpoint is written leaves a directory without trainer_state.json: skip it."""
    out = tmp_path / command
    if command == "distill":
        args = ["distill", "--model", tiny_student, "--data", data, "--out", out, "--preset", "tiny",
                "--max-steps", 4, "--batch-size", 8, "--device", "cpu", "save_steps=1", "logging_steps=1",
                "keep_checkpoints=true"]
    else:
        args = ["teach", "--teacher", tiny_teacher, "--student", tiny_student, "--data", data, "--out", out,
                "--max-steps", 4, "--device", "cpu", "prompts_per_step=2", "num_generations=2",
                "max_new_tokens=8", "reward_batch_size=8", "save_steps=1"]
    proc = spawn(args)
    try:  # freeze the run once checkpoint-2 is whole, then kill it
        assert wait_for(lambda: checkpoints(out) >= 2, proc), "the run ended before checkpoint-2"
        os.kill(proc.pid, signal.SIGSTOP)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.communicate(timeout=120)
    assert not manifest_path(out).exists()
    for later in (out / "checkpoints").glob("checkpoint-*"):
        if int(later.name.split("-")[-1]) > 2:
            shutil.rmtree(later)
    half = out / "checkpoints" / "checkpoint-3"  # a save cut short by the kill
    shutil.copytree(out / "checkpoints" / "checkpoint-2", half)
    (half / "trainer_state.json").unlink()
    (half / "model.safetensors").write_bytes(b"\0" * 100)
    proc = rlt(*args, env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = manifest(out)
    info = m if command == "distill" else m["training"]
    assert info["global_step"] == 4 and Path(info["resumed_from"]).name == "checkpoint-2"
