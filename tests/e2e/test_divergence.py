"""A run that diverges stops at once: a non-finite loss, gradient norm or reward ends distill and teach
(one process and two) at that step with exit 1 and one line, no manifest, the last good checkpoint kept
and finite, and records that are strict JSON."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from stages.artifacts.layout import manifest_path, metrics_path
from tests.conftest import ONE_THREAD, rlt

# a learning rate that warms up to 1e3: finite for the first steps, then the gradient norm overflows
DIVERGING = ["--lr", "1e3", "warmup_ratio=0.9", "lr_scheduler=linear", "save_steps=1", "logging_steps=1"]


def strict_json(line: str):
    """json.loads that refuses NaN and Infinity, as jq and JavaScript do."""
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(line, parse_constant=refuse)


def assert_stopped(proc, out: Path) -> int:
    """Exit 1, one line naming the step and what went non-finite, no manifest, the newest checkpoint finite
    and from before that step, strict-JSON metrics with finite losses; returns the step."""
    from safetensors.torch import load_file

    assert proc.returncode == 1, proc.stderr[-3000:]
    said = [line for line in proc.stderr.splitlines() if line.startswith("rlt:")]
    assert len(said) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    m = re.search(r"diverged at step (\d+): the (.+?) is not finite", said[0])
    assert m, said
    step = int(m.group(1))
    assert step >= 2 and set(m.group(2).split(" and ")) <= {"loss", "grad norm", "reward"}
    assert not manifest_path(out).exists()
    steps = sorted(int(d.name.split("-")[1]) for d in (out / "checkpoints").glob("checkpoint-*"))
    assert steps and steps[-1] == step - 1, steps  # the last good one; the diverged step is not saved
    newest = out / "checkpoints" / f"checkpoint-{steps[-1]}"
    assert f"checkpoint-{steps[-1]}" in said[0]
    for f in newest.glob("*.safetensors"):
        assert all(t.isfinite().all() for t in load_file(f).values()), f
    rows = [strict_json(line) for line in metrics_path(out).read_text().splitlines()]
    assert rows and all(r["step"] < step for r in rows)
    assert all(math.isfinite(r["loss"]) for r in rows if r.get("loss") is not None)
    return step


@pytest.mark.parametrize("procs", [1, 2])
def test_distill_stops_when_it_diverges(tiny_teacher, synth_train, tmp_path, procs):
    out = tmp_path / "student"
    launch = ["--launch", "ddp", "--nproc", "2"] if procs == 2 else []
    proc = rlt("distill", "--model", tiny_teacher, "--data", synth_train, "--out", out, "--preset", "tiny",
               "--max-steps", 12, "--batch-size", 16, "--device", "cpu", *DIVERGING, *launch, env=ONE_THREAD)
    assert_stopped(proc, out)


def test_teach_stops_when_it_diverges(tiny_teacher, tiny_student, synth_train, tmp_path):
    out = tmp_path / "teacher"
    proc = rlt("teach", "--teacher", tiny_teacher, "--student", tiny_student, "--data", synth_train, "--out", out,
               "--preset", "tiny", "--max-steps", 8, "--max-new-tokens", 16, "--device", "cpu", "--lr", "1e6",
               "save_steps=1", env=ONE_THREAD)
    assert_stopped(proc, out)
