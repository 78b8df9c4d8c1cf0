"""One rule for rows sharing an id, everywhere (schemas.REPEATED_IDS): every row is kept, rows after the first
of an id are renamed <id>#<n>, counted and said in one line; `--map` typos are refused naming the nearest name."""

from __future__ import annotations

import json

import pytest

from stages.artifacts.layout import manifest_path
from stages.artifacts.read import read_rows
from stages.artifacts.schemas import distinct_ids
from stages.commands.data import ImportConfig, import_
from tests.conftest import rlt


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def q(i: int, **kw) -> dict:
    return {"question": f"What is {i} + {i}?", "solution": f"{i} + {i} = {2 * i}. \\boxed{{{2 * i}}}", **kw}


def test_distinct_ids_keeps_every_row_in_order():
    rows = [{"id": "a"}, {"id": "b"}, {"id": "a"}, {"id": "a#2"}, {"id": "a"}]
    assert distinct_ids(rows, "x") == 2
    assert [r["id"] for r in rows] == ["a", "b", "a#3", "a#2", "a#4"]  # an id already taken is skipped
    assert distinct_ids([{"id": "a"}, {"id": "b"}], "x") == 0


def test_import_keeps_repeated_rows_and_counts_them(tmp_path, caplog):
    src = write_jsonl(tmp_path / "src.jsonl", [q(1), q(2), q(1), q(3), q(2), q(4), q(1)])  # 3 repeats
    out = import_(ImportConfig(src=str(src), out=str(tmp_path / "d")))
    rows = read_rows(out, "dataset")
    assert [r["question"] for r in rows] == [q(i)["question"] for i in (1, 2, 1, 3, 2, 4, 1)]
    assert len({r["id"] for r in rows}) == 7
    m = json.loads(manifest_path(out).read_text())
    assert m["rows"] == 7 and m["repeated_ids"] == 3 and m["skipped_rows"] == 0
    assert any("3 of 7 rows share an id" in r.getMessage() for r in caplog.records)


def test_different_questions_sharing_an_id_stay_two_and_traces_of_one_question_all_stay(tmp_path):
    src = write_jsonl(tmp_path / "src.jsonl", [
        q(1, id="a"), q(2, id="a"),                                   # two questions, one id
        q(5, reasoning_trace="add the ones"), q(5, reasoning_trace="add the tens first"),  # two traces
        {"question": "bad row"}])                                     # no solution, no answer: skipped
    out = import_(ImportConfig(src=str(src), out=str(tmp_path / "d")))
    rows = read_rows(out, "dataset")
    assert [(r["id"], r["question"]) for r in rows[:2]] == [("a", q(1)["question"]), ("a#2", q(2)["question"])]
    assert [r["reasoning_trace"] for r in rows[2:]] == ["add the ones", "add the tens first"]
    m = json.loads(manifest_path(out).read_text())
    assert m["rows"] == 4 and m["repeated_ids"] == 2 and m["skipped_rows"] == 1


def test_a_dataset_file_read_by_any_stage_keeps_rows_sharing_an_id(tmp_path):
    src = write_jsonl(tmp_path / "eval.jsonl", [{"id": 7, "question": "A?", "answer": "1"},
                                                {"id": 7, "question": "B?", "answer": "2"},
                                                {"question": "A?", "answer": "1"}, {"question": "A?", "answer": "1"}])
    rows = read_rows(src, "dataset", required=("question", "answer"))
    assert [r["question"] for r in rows] == ["A?", "B?", "A?", "A?"]
    assert rows[0]["id"] == "7" and rows[1]["id"] == "7#2" and rows[3]["id"] == rows[2]["id"] + "#2"


@pytest.mark.parametrize(("mapping", "said"), [
    ("trace=cot", "unknown destination column 'trace' (did you mean 'reasoning_trace'?)"),
    ("question=promt", "the input has no column 'promt' (did you mean 'prompt'?)"),
])
def test_map_typos_are_refused_in_one_line(tmp_path, mapping, said):
    src = write_jsonl(tmp_path / "src.jsonl", [{"prompt": "What is 1 + 1?", "response": "2. \\boxed{2}", "cot": "x"}])
    out = tmp_path / "d"
    proc = rlt("data", "import", src, "--out", out, "--map", mapping, "--map", "solution=response")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlt: error: ") and said in lines[0], proc.stderr
    assert not out.exists()
