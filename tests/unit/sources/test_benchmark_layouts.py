"""Every published layout of the paper's benchmarks imports with the right task (stages/commands/data.py).

The fixtures are written here in the shape of the public files: GPQA-Diamond's
released CSV (78 columns, quoted multi-line cells, larger than one CSV read
block), GPQA pre-formatted as JSONL (two variants), MATH-500 (HuggingFaceH4),
AIME 2024/2025 (`id, problem, solution, answer, url`, answers like `070`).
"""

from __future__ import annotations

import csv
import json

import pytest

from stages import verify
from stages.artifacts.layout import read_manifest
from stages.artifacts.read import read_rows
from stages.artifacts.schemas import EVAL_REQUIRED
from stages.commands.data import ImportConfig, import_
from stages.errors import UserError
from tests.conftest import rlt

_MAIN = ["Pre-Revision Question", "Pre-Revision Correct Answer", "Pre-Revision Incorrect Answer 1",
         "Pre-Revision Incorrect Answer 2", "Pre-Revision Incorrect Answer 3", "Pre-Revision Explanation",
         "Self-reported question-writing time (minutes)", "Question", "Correct Answer", "Incorrect Answer 1",
         "Incorrect Answer 2", "Incorrect Answer 3", "Explanation", "Revision Comments (from Question Writer)",
         "Subdomain", "Writer's Difficulty Estimate", "Extra Revised Question", "Extra Revised Explanation",
         "Extra Revised Correct Answer", "Extra Revised Incorrect Answer 1", "Extra Revised Incorrect Answer 2",
         "Extra Revised Incorrect Answer 3", "Non-Expert Validator Accuracy", "Majority Non-Expert Vals Incorrect",
         "Expert Validator Accuracy", "Record ID", "High-level domain", "Question Writer"]
_PER_VALIDATOR = ["Feedback", "Validator Revision Suggestion", "Is First Validation", "Post hoc agreement",
                  "Sufficient Expertise?", "Understand the question?", "Question Difficulty",
                  "Validator Answered Correctly", "Self-reported time (minutes)", "Probability Correct",
                  "Manual Correctness Adjustment", "Expert Validator"]
GPQA_COLUMNS = (_MAIN + [f"{c}_EV_{k}" for k in (1, 2) for c in _PER_VALIDATOR]
                + [f"{c}_NEV_{k}" for k in (1, 2, 3) for c in _PER_VALIDATOR[:9]])[:78]
LETTERS = "ABCD"


def _long(text: str, i: int) -> str:
    """A multi-line cell with quotes and commas, long enough that the file spans several read blocks."""
    para = f'Line one of {text} {i}, with "quotes", commas and $x^2$.\nLine two.\n\nLine four.'
    return "\n".join([para] * 60)


@pytest.fixture(scope="module")
def gpqa_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpqa") / "gpqa_diamond.csv"
    assert len(GPQA_COLUMNS) == 78
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=GPQA_COLUMNS)
        w.writeheader()
        for i in range(198):
            row = {c: _long(c, i) for c in GPQA_COLUMNS}
            row.update({"Question": f"What is the spin of particle {i}?\nAssume\nthree lines.",
                        "Correct Answer": f"right {i}", "Incorrect Answer 1": f"wrong a {i}",
                        "Incorrect Answer 2": f"wrong b\n{i}", "Incorrect Answer 3": f"wrong, c {i}",
                        "Record ID": f"rec{i}"})
            w.writerow(row)
    assert path.stat().st_size > 2 * 2**20  # more than one pyarrow CSV block
    return path


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _import(src, out, **kw):
    """The imported rows, read as an eval set (rows without a solution are eval rows)."""
    return read_rows(import_(ImportConfig(src=str(src), out=str(out), **kw)), "dataset", required=EVAL_REQUIRED)


def test_gpqa_released_csv_with_multiline_cells(gpqa_csv, tmp_path):
    rows = _import(gpqa_csv, tmp_path / "g", format="gpqa")
    assert len(rows) == 198
    assert {r["task"] for r in rows} == {"choice"} and {r["answer"] for r in rows} <= set(LETTERS)
    for r in rows:
        i = int(r["question"].split("particle ")[1].split("?")[0])
        assert f"{r['answer']}) right {i}" in r["question"]
        assert verify.check("choice", f"The correct answer is **{r['answer']}. right {i}**", r["answer"]).correct


def _formatted(i: int, letter: str) -> str:
    opts = {L: (f"right {i}" if L == letter else f"wrong {L} {i}") for L in LETTERS}
    return f"Which is right for {i}?\n\n" + "\n".join(f"{L}. {o}" for L, o in opts.items())


GPQA_JSONL = [{"question": _formatted(i, LETTERS[i % 4]), "answer": LETTERS[i % 4]} for i in range(8)]
GPQA_JSONL_OPTIONS = [
    {"question": f"Which is right for {i}?", "options": [f"o{i}{k}" for k in range(4)], "answer": LETTERS[i % 4],
     "correct_answer": f"o{i}{i % 4}", "correct_option_index": i % 4} for i in range(8)]


@pytest.mark.parametrize("rows", [GPQA_JSONL, GPQA_JSONL_OPTIONS], ids=["lettered", "with-options"])
def test_gpqa_preformatted_jsonl(rows, tmp_path):
    got = _import(_jsonl(tmp_path / "gpqa.jsonl", rows), tmp_path / "g", format="gpqa")
    assert [r["answer"] for r in got] == [r["answer"] for r in rows]
    assert {r["task"] for r in got} == {"choice"} and {r["source"] for r in got} == {"gpqa"}
    for r in got:
        assert all(f"\n{L}. " in r["question"] for L in LETTERS)


def test_gpqa_option_columns(tmp_path):
    rows = [{"question": "Q0?", "A": "a", "B": "b", "C": "c", "D": "d", "answer": "(B)"},
            {"question": "Q1?", "choice1": "w", "choice2": "x", "choice3": "y", "choice4": "z", "answer": "D"}]
    got = _import(_jsonl(tmp_path / "g.jsonl", rows), tmp_path / "g", format="gpqa")
    assert [r["answer"] for r in got] == ["B", "D"]
    assert "\nB. b" in got[0]["question"] and "\nD. z" in got[1]["question"]


def test_gpqa_options_variant_without_letter_uses_index_or_text(tmp_path):
    rows = [{"question": "Q0?", "options": ["a", "b", "c", "d"], "correct_option_index": 2},
            {"question": "Q1?", "options": ["a", "b", "c", "d"], "correct_answer": "d"}]
    assert [r["answer"] for r in _import(_jsonl(tmp_path / "g.jsonl", rows), tmp_path / "g", format="gpqa")] == \
        ["C", "D"]


def test_columns_import_with_task(tmp_path):
    src = _jsonl(tmp_path / "gpqa.jsonl", GPQA_JSONL)
    got = _import(src, tmp_path / "c", format="columns", map={"solution": "answer"}, task="choice")
    assert {r["task"] for r in got} == {"choice"}
    assert verify.check(got[0]["task"], "Answer: A", got[0]["answer"]).correct
    plain = _import(src, tmp_path / "m", format="columns", map={"solution": "answer"})
    assert {r["task"] for r in plain} == {None}  # graded as math unless told


def test_task_must_be_known(tmp_path):
    with pytest.raises(UserError, match="unknown task 'mcq'.*choice"):
        import_(ImportConfig(src=str(tmp_path / "x.jsonl"), out=str(tmp_path / "o"), task="mcq"))


MATH500 = [{"problem": f"What is {i} dollars and 90 cents?", "solution": f"$\\boxed{{\\${i}.90}}$",
            "answer": f"\\${i}.90", "subject": "Prealgebra", "level": 1, "unique_id": f"test/prealgebra/{i}.json"}
           for i in range(3)] + [
    {"problem": "Total cost?", "solution": "\\boxed{\\$32,\\!348}", "answer": "\\$32,\\!348", "subject": "Algebra",
     "level": 2, "unique_id": "test/algebra/1.json"}]


def test_math500_keeps_escaped_dollar_golds(tmp_path):
    got = _import(_jsonl(tmp_path / "test.jsonl", MATH500), tmp_path / "m", format="math500")
    assert [r["answer"] for r in got] == [r["answer"] for r in MATH500]
    assert {r["task"] for r in got} == {"math"}
    assert verify.check("math", "\\boxed{32348}", got[3]["answer"]).correct


@pytest.mark.parametrize("rows", [
    [{"id": 60, "problem": "P1", "solution": "... $\\boxed{070}$", "answer": "070",
      "url": "https://artofproblemsolving.com/wiki/index.php/2024_AIME_I_Problems/Problem_1"},
     {"id": 61, "problem": "P2", "solution": "s", "answer": "204", "url": "u"}],
    [{"problem": "P1", "answer": 70, "id": "0"}, {"problem": "P2", "answer": 204, "id": "1"}],
], ids=["aime24", "aime25"])
def test_aime_layouts(rows, tmp_path):
    got = _import(_jsonl(tmp_path / "aime.jsonl", rows), tmp_path / "a", format="aime")
    assert [r["answer"] for r in got] == ["70", "204"]
    assert {r["task"] for r in got} == {"integer"}
    assert verify.check("integer", "\\boxed{070}", got[0]["answer"]).correct


def test_unparseable_file_is_one_line_naming_file_row_and_reason(tmp_path):
    src = _jsonl(tmp_path / "broken.jsonl", [{"question": "Q?\nA. a\nB. b", "answer": "Z"}])
    proc = rlt("data", "import", src, "--format", "gpqa", "--out", tmp_path / "o", timeout=300)
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "broken.jsonl" in line and "row 0" in line and "'Z'" in line
    assert not (tmp_path / "o").exists()


def test_some_rows_bad_are_counted_with_reasons(tmp_path):
    rows = [{"problem": "P", "answer": "7"}, {"problem": "P2", "answer": "seven"}]
    out = import_(ImportConfig(src=str(_jsonl(tmp_path / "a.jsonl", rows)), out=str(tmp_path / "a"), format="aime"))
    manifest = read_manifest(out)
    assert manifest["skipped_rows"] == 1
    assert manifest["skipped_examples"] == [{"row": 1, "reason": "answer 'seven' is not an integer"}]
