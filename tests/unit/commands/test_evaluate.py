"""`rlt eval` without a model: pass@k, Wilson intervals, the summary, reading items, refusing bad options."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from stages.commands import evaluate
from stages.commands.evaluate import EvalConfig
from stages.errors import UserError
from stages.progress import display_names

# ----------------------------------------------------------------------------- statistics (pure)


@pytest.mark.parametrize("n,c,k,expected", [
    (5, 0, 1, 0.0), (5, 5, 3, 1.0), (5, 2, 1, 0.4), (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2)
    (10, 3, 5, 1 - math.comb(7, 5) / math.comb(10, 5)), (3, 1, 3, 1.0),
])
def test_pass_at_k_unbiased(n, c, k, expected):
    assert evaluate.pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_needs_enough_samples():
    with pytest.raises(ValueError):
        evaluate.pass_at_k(2, 1, 3)


def test_wilson_interval():
    lo, hi = evaluate.wilson(0.5, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    lo, hi = evaluate.wilson(0.0, 16)
    assert lo == 0.0 and hi == pytest.approx(0.1936, abs=1e-4)
    lo, hi = evaluate.wilson(1.0, 30)
    assert hi == pytest.approx(1.0) and 0.88 < lo < 0.89


def _row(model, qid, sample, correct, source="b1", tokens=10, truncated=False):
    return {"model": model, "id": qid, "sample": sample, "correct": correct, "source": source,
            "task": "math", "response_tokens": tokens, "truncated": truncated}


def test_summarize_per_model_and_benchmark():
    rows = [_row("m1", "q1", 0, True), _row("m1", "q1", 1, False), _row("m1", "q2", 0, False),
            _row("m1", "q2", 1, False, tokens=30, truncated=True),
            _row("m1", "q3", 0, True, "b2"), _row("m1", "q3", 1, True, "b2"),
            _row("m2", "q1", 0, False), _row("m2", "q1", 1, False)]
    s = evaluate.summarize(rows)["models"]
    assert set(s) == {"m1", "m2"}
    m1 = s["m1"]
    assert m1["overall"]["accuracy"] == pytest.approx(3 / 6) and m1["overall"]["n"] == 3
    assert m1["benchmarks"]["b1"]["accuracy"] == pytest.approx(1 / 4)
    assert m1["benchmarks"]["b1"]["pass@2"] == pytest.approx(0.5)  # q1 solved once in 2, q2 never
    assert m1["benchmarks"]["b2"]["pass@2"] == 1.0
    assert m1["benchmarks"]["b1"]["truncation_rate"] == 0.25
    assert m1["benchmarks"]["b1"]["mean_response_tokens"] == 15
    assert m1["overall"]["pass@1"] == m1["overall"]["accuracy"]
    lo, hi = m1["overall"]["ci95"]
    assert lo < 0.5 < hi
    assert s["m2"]["overall"]["accuracy"] == 0.0


def test_display_names():
    assert display_names(["a/x", "b/y/"]) == {"a/x": "x", "b/y/": "y"}
    assert display_names(["a/x", "b/x"]) == {"a/x": "a/x", "b/x": "b/x"}


# ----------------------------------------------------------------------------- inputs


def _dataset(tmp_path: Path, rows: list[dict]) -> str:
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_items_gold_task_and_source(tmp_path):
    data = _dataset(tmp_path, [
        {"question": "q1", "solution": "so \\boxed{\\frac{1}{2}}"},
        {"question": "q2", "solution": "s", "answer": "C", "task": "choice", "source": "gpqa"},
    ])
    items = evaluate.load_items(EvalConfig(models=["m"], data=data, out="o"))
    assert [(i["answer"], i["task"], i["source"]) for i in items] == [
        ("\\frac{1}{2}", "math", "math"), ("C", "choice", "gpqa")]


@pytest.mark.parametrize("row,message", [
    ({"question": "q", "solution": "s", "answer": "1", "task": "chess"}, "unknown task 'chess'"),
    ({"question": "q", "solution": "no box"}, "no answer"),
    ({"question": "q", "solution": "s", "answer": "E", "task": "choice"}, "cannot be read by the choice checker"),
    ({"question": "q", "solution": "s", "answer": "x", "task": "integer"}, "cannot be read by the integer checker"),
])
def test_bad_rows_are_user_errors(tmp_path, row, message):
    with pytest.raises(UserError, match=message):
        evaluate.load_items(EvalConfig(models=["m"], data=_dataset(tmp_path, [row]), out="o"))


@pytest.mark.parametrize("kw,message", [
    ({"models": []}, "--model"),
    ({"num_generations": 3}, "temperature"),
    ({"num_generations": 0}, "at least 1"),
    ({"models": ["a", "a"]}, "twice"),
])
def test_bad_options(kw, message):
    cfg = EvalConfig(**{"models": ["m"], "data": "d", "out": "o", **kw})
    with pytest.raises(UserError, match=message):
        evaluate.validate_config(cfg)
