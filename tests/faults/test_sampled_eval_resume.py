"""A sampled eval seeds each batch from its rows' ids (as generate does): a killed and resumed sampled eval
equals an uninterrupted one row for row, and questions in different batches are separate draws."""

from __future__ import annotations

import json

from stages.artifacts.layout import summary_path
from stages.artifacts.read import read_rows
from tests.conftest import rlt
from tests.faults.conftest import ONE_THREAD, comparable, kill_loop, parts

SAMPLED = ["--batch-size", 2, "--num-generations", 2, "--temperature", 1.0, "--max-new-tokens", 16,
           "engine.device=cpu", "seed=5"]


def test_a_killed_sampled_eval_resumes_to_the_uninterrupted_rows(tiny_teacher, synth_test, tmp_path, rng):
    args = ["eval", "--model", tiny_teacher, "--data", synth_test, *SAMPLED]
    ref = tmp_path / "ref"
    rlt(*args, "--out", ref, check=True, env=ONE_THREAD)
    out = tmp_path / "eval"
    assert kill_loop([*args, "--out", out], out, parts, rng, 2, max_delay=0.02) >= 1
    rlt(*args, "--out", out, check=True, env=ONE_THREAD)
    key = ("model", "id", "sample")
    assert comparable(read_rows(out, "eval"), key) == comparable(read_rows(ref, "eval"), key)
    assert json.loads(summary_path(out).read_text()) == json.loads(summary_path(ref).read_text())


def test_each_batch_is_its_own_draw(tiny_teacher, tmp_path):
    """The same question under four ids, one per batch: four seeds, so not one response repeated four times."""
    data = tmp_path / "same.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "question": "What is 12 + 30?", "answer": "42"}) + "\n"
                            for i in range(4)))
    out = tmp_path / "eval"
    rlt("eval", "--model", tiny_teacher, "--data", data, "--out", out, "--batch-size", 1, "--temperature", 1.0,
        "--max-new-tokens", 24, "engine.device=cpu", check=True, env=ONE_THREAD)
    responses = [r["response"] for r in read_rows(out, "eval")]
    assert len(responses) == 4 and len(set(responses)) > 1, responses
