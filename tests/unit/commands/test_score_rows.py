"""`rlt score` input rows without a model: ids and samples filled, raw completions accepted, clashes refused."""

import json

import pytest


def test_load_rows_fills_ids_samples_and_accepts_completions(tmp_path):
    from stages.artifacts.schemas import row_id
    from stages.commands.score import load_rows
    from stages.errors import UserError

    path = tmp_path / "gen.jsonl"
    rows = [{"question": "q", "solution": "s", "completion": "a<|end_of_explanation|>"},
            {"question": "q", "solution": "s", "completion": "b"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = load_rows(str(path))
    assert [(r["id"], r["sample"]) for r in got] == [(row_id("q", "s"), 0), (row_id("q", "s"), 1)]

    dup = tmp_path / "dup.jsonl"
    dup.write_text("".join(json.dumps({**r, "sample": 3}) + "\n" for r in rows))
    with pytest.raises(UserError, match="sample 3"):
        load_rows(str(dup))


def test_load_rows_scores_a_datasets_reasoning_trace(tmp_path):
    from stages.commands.data import SynthConfig, synth
    from stages.commands.score import load_rows
    from stages.method.tasks import synth_rows

    out = synth(SynthConfig(out=str(tmp_path / "d"), n=5, min_digits=2, max_digits=2, unhelpful=0.4))
    got = load_rows(str(out))
    want = {r["id"]: r["reasoning_trace"] for r in synth_rows(5, 0, "train", 2, 2, unhelpful=0.4)}
    assert {r["id"]: r["explanation"] for r in got} == want
