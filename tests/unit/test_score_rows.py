"""`rlt score` input rows without a model: ids and samples filled, raw completions accepted, clashes refused."""

import json

import pytest


def test_load_rows_fills_ids_samples_and_accepts_completions(tmp_path):
    from stages.artifacts import row_id
    from stages.errors import UserError
    from stages.score import load_rows

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
