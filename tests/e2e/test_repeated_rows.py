"""Rows sharing an id through generate and eval (schemas.REPEATED_IDS): each is its own question, never dropped
and never an extra sample of another."""

from __future__ import annotations

import json

from stages.artifacts.read import read_rows
from tests.conftest import ONE_THREAD, rlt


def test_generate_and_eval_keep_repeated_rows_apart(tiny_teacher, synth_test, tmp_path):
    base = read_rows(synth_test, "dataset")[:4]
    rows = [base[0], base[1], base[0], base[2], base[1], base[3], base[0]]  # 7 rows, 3 repeated on purpose
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps({k: r[k] for k in ("id", "question", "solution", "answer", "task")}) + "\n"
                           for r in rows))
    gen = rlt("generate", "--teacher", tiny_teacher, "--data", src, "--out", tmp_path / "gen", "--max-new-tokens", 4,
              "--temperature", 0, "--device", "cpu", check=True, env=ONE_THREAD)
    assert "3 of 7 rows share an id" in gen.stderr
    traces = read_rows(tmp_path / "gen", "traces")
    assert len(traces) == 7 and len({t["id"] for t in traces}) == 7
    assert sorted(t["question"] for t in traces) == sorted(r["question"] for r in rows)

    rlt("eval", "--model", tiny_teacher, "--data", src, "--out", tmp_path / "eval", "--max-new-tokens", 4,
        "--device", "cpu", check=True, env=ONE_THREAD)
    graded = read_rows(tmp_path / "eval", "eval")
    assert len(graded) == 7 and {g["sample"] for g in graded} == {0}  # seven questions, one sample each
    manifest = json.loads((tmp_path / "eval" / ".rlt" / "manifest.json").read_text())
    assert manifest["config"]["num_generations"] == 1
