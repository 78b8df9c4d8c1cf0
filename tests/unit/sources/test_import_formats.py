"""`rlt data import --format math500|aime|gpqa` on small files in the real public layouts."""

from __future__ import annotations

import csv
import json
import re

import pytest

from stages import verify
from stages.artifacts.layout import read_manifest
from stages.artifacts.read import read_rows
from stages.commands.data import ImportConfig, import_
from stages.errors import UserError
from stages.sources.layouts import RowError, convert_row

MATH500 = [
    {"problem": "Convert the point $(0,3)$ in rectangular coordinates to polar coordinates.",
     "solution": "We have $r = 3$ and $\\theta = \\frac{\\pi}{2}$, so $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$.",
     "answer": "\\left( 3, \\frac{\\pi}{2} \\right)", "subject": "Precalculus", "level": 2,
     "unique_id": "test/precalculus/807.json"},
    {"problem": "What is $\\frac{1}{2} + \\frac{1}{4}$?", "solution": "It is $\\boxed{\\frac{3}{4}}$.",
     "answer": "\\frac{3}{4}", "subject": "Prealgebra", "level": 1, "unique_id": "test/prealgebra/1.json"},
]
AIME = [
    {"ID": "2024-I-1", "Problem": "Every morning Aya goes for a 9-kilometer-long walk ...",
     "Solution": "... so the walk takes $\\boxed{204}$ minutes.", "Answer": 204},
    {"ID": "2024-II-4", "Problem": "Let $x,y$ and $z$ be positive real numbers ...",
     "Solution": "... giving $\\boxed{033}$.", "Answer": 33},
]
GPQA_COLUMNS = ["Pre-Revision Question", "Pre-Revision Correct Answer", "Pre-Revision Incorrect Answer 1",
                "Pre-Revision Incorrect Answer 2", "Pre-Revision Incorrect Answer 3", "Pre-Revision Explanation",
                "Self-reported question-writing time (minutes)", "Question", "Correct Answer",
                "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3", "Explanation",
                "Revision Comments (from Question Writer)", "Subdomain", "Writer's Difficulty Estimate",
                "Extra Revised Question", "Record ID", "High-level domain"]


def _gpqa_row(i: int) -> dict:
    row = {c: f"junk {c} {i}" for c in GPQA_COLUMNS}
    row.update({"Question": f"\nWhich particle is number {i}?\n", "Correct Answer": f"right {i}",
                "Incorrect Answer 1": f"wrong-a {i}", "Incorrect Answer 2": f"wrong-b {i}",
                "Incorrect Answer 3": f"wrong-c {i}", "Explanation": f"Because of physics {i}.",
                "Record ID": f"rec{i}", "High-level domain": "Physics"})
    return row


@pytest.fixture()
def gpqa_csv(tmp_path):
    path = tmp_path / "gpqa_diamond.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=GPQA_COLUMNS)
        w.writeheader()
        for i in range(12):
            w.writerow(_gpqa_row(i))
    return path


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _options(question: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-D])\) (.*)$", question, re.MULTILINE))


def test_math500(tmp_path):
    out = import_(ImportConfig(src=str(_jsonl(tmp_path / "test.jsonl", MATH500)), out=str(tmp_path / "m"),
                               format="math500"))
    rows = read_rows(out, "dataset")
    assert [r["question"] for r in rows] == [r["problem"] for r in MATH500]
    assert [r["answer"] for r in rows] == [r["answer"] for r in MATH500]
    assert {r["task"] for r in rows} == {"math"} and {r["source"] for r in rows} == {"math500"}
    assert rows[1]["solution"] == MATH500[1]["solution"]
    # the imported gold checks its own solution
    for r in rows:
        assert verify.check(r["task"], r["solution"], r["answer"]).correct


def test_aime_2024_layout(tmp_path):
    src = tmp_path / "aime_2024.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(AIME), src)
    rows = read_rows(import_(ImportConfig(src=str(src), out=str(tmp_path / "a"), format="aime")), "dataset")
    assert [r["answer"] for r in rows] == ["204", "33"]
    assert {r["task"] for r in rows} == {"integer"} and {r["source"] for r in rows} == {"aime"}
    assert rows[0]["question"].startswith("Every morning Aya")
    assert all(verify.check("integer", r["solution"], r["answer"]).correct for r in rows)


def test_aime_lowercase_columns_and_bad_answer_counted(tmp_path):
    src = _jsonl(tmp_path / "aime.jsonl", [{"id": 1, "problem": "P1", "solution": "s", "answer": "7"},
                                           {"id": 2, "problem": "P2", "solution": "s", "answer": "seven"}])
    out = import_(ImportConfig(src=str(src), out=str(tmp_path / "a"), format="aime"))
    rows = read_rows(out, "dataset")
    assert [r["answer"] for r in rows] == ["7"]
    assert read_manifest(out)["skipped_rows"] == 1


def test_gpqa_letters_map_to_the_correct_answer(gpqa_csv, tmp_path):
    rows = read_rows(import_(ImportConfig(src=str(gpqa_csv), out=str(tmp_path / "g"), format="gpqa")), "dataset")
    assert len(rows) == 12
    letters = set()
    for i, r in enumerate(rows):
        opts = _options(r["question"])
        assert sorted(opts) == list("ABCD")
        assert opts[r["answer"]] == f"right {i}"
        assert sorted(opts.values()) == sorted([f"right {i}", f"wrong-a {i}", f"wrong-b {i}", f"wrong-c {i}"])
        assert r["question"].startswith(f"Which particle is number {i}?")
        assert "junk" not in r["question"] and "\\boxed{}" in r["question"]
        assert r["task"] == "choice" and r["source"] == "gpqa"
        assert verify.check("choice", r["solution"], r["answer"]).correct
        letters.add(r["answer"])
    assert len(letters) > 1  # the correct option is not always in the same place


def test_gpqa_shuffle_is_deterministic_by_seed(gpqa_csv, tmp_path):
    def load(seed, name):
        return read_rows(import_(ImportConfig(src=str(gpqa_csv), out=str(tmp_path / name), format="gpqa",
                                              seed=seed)), "dataset")

    a, b, c = load(0, "a"), load(0, "b"), load(1, "c")
    assert [r["question"] for r in a] == [r["question"] for r in b]
    assert [r["answer"] for r in a] == [r["answer"] for r in b]
    assert [r["id"] for r in a] == [r["id"] for r in b]
    assert [r["question"] for r in a] != [r["question"] for r in c]


def test_gpqa_row_order_does_not_change_letters():
    rows = [_gpqa_row(i) for i in range(5)]
    fwd = [convert_row(r, "gpqa", {}, 0, i)["answer"] for i, r in enumerate(rows)]
    back = [convert_row(r, "gpqa", {}, 0, i)["answer"] for i, r in reversed(list(enumerate(rows)))]
    assert fwd == back[::-1]


def test_gpqa_missing_option_is_skipped():
    row = _gpqa_row(0)
    row["Incorrect Answer 3"] = None
    with pytest.raises(RowError, match="Incorrect Answer"):
        convert_row(row, "gpqa", {}, 0, 0)


def test_nothing_parses_is_a_user_error(tmp_path):
    src = _jsonl(tmp_path / "x.jsonl", [{"question": "q"}])
    with pytest.raises(UserError, match="no row parsed as format math500"):
        import_(ImportConfig(src=str(src), out=str(tmp_path / "o"), format="math500"))
    assert not (tmp_path / "o").exists()
