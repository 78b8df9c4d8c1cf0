"""`--launch ddp --nproc 2` on CPU (gloo): distill and teach with two processes on the tiny models.

Checked against one process: the same global batch arithmetic (and so the same
losses), one artifact written once, each metrics row once, the promised steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stages.artifacts.layout import manifest_path, meta_path, metrics_path
from tests.conftest import ONE_THREAD, rlt

pytestmark = pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the CPU path (no GPU visible)")
FILES = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
         "chat_template.jinja", ".rlt"}  # .rlt/: manifest.json, metrics.jsonl


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def _distill(model, data, out, *extra):
    return rlt("distill", "--model", model, "--data", data, "--out", out, "--max-steps", 3, "--batch-size", 2,
               "--device", "cpu", "global_batch=8", "lr=0.003", "logging_steps=1", "save_steps=2", *extra,
               env=ONE_THREAD)


def test_distill_two_processes_train_like_one(tiny_teacher, synth_train, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for out, extra in ((one, []), (two, ["--launch", "ddp", "--nproc", 2])):
        proc = _distill(tiny_teacher, synth_train, out, *extra)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p.name for p in two.iterdir()} == FILES  # one artifact, no lock or progress file left
    m1, m2 = (json.loads(manifest_path(d).read_text()) for d in (one, two))
    assert (m1["processes"], m2["processes"]) == (1, 2)
    assert m1["rows_per_step"] == m2["rows_per_step"] == 8  # global_batch: 2 rows x 4 accum x 1 = 2 x 2 x 2
    assert m1["global_step"] == m2["global_step"] == 3 == m2["config"]["max_steps"]
    r1, r2 = (_jsonl(metrics_path(d)) for d in (one, two))
    assert [r["step"] for r in r2] == [1, 2, 3]  # each row once, by rank 0
    assert [r["epoch"] for r in r1] == [r["epoch"] for r in r2] == [0.125, 0.25, 0.375]  # 8 of 64 rows a step
    # the same rows per step, gradients averaged over the processes: the same training
    assert [r["loss"] for r in r2] == pytest.approx([r["loss"] for r in r1], rel=1e-3)


def test_teach_two_processes_split_the_completions(tiny_teacher, tiny_student, synth_train, tmp_path):
    out = tmp_path / "teach"
    proc = rlt("teach", "--teacher", tiny_teacher, "--student", tiny_student, "--data", synth_train, "--out", out,
               "--max-steps", 2, "--device", "cpu", "--launch", "ddp", "--nproc", 2, "prompts_per_step=2",
               "num_generations=2", "max_new_tokens=12", "samples_per_log=2", "save_steps=5",
               env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 CPU processes" in " ".join(proc.stderr.split())
    training = json.loads(manifest_path(out).read_text())["training"]
    assert training["processes"] == 2 and training["global_step"] == 2
    assert training["completions_per_step"] == 2 * 2 and training["per_device_batch"] == 2  # 4 over 2 processes
    assert [r["step"] for r in _jsonl(metrics_path(out))] == [1, 2]
    assert [s["step"] for s in _jsonl(meta_path(out, "samples.jsonl"))] == [1, 1, 2, 2]
    assert not meta_path(out, "lock").exists() and (out / "model.safetensors").is_file()
