"""`rlt inspect --row ID` shows every row of one id whole; `--where COLUMN=VALUE` keeps the rows that match (the
wrong answers of an eval); a column or id that is not there is named in one line with the nearest."""

import json

import pytest

from stages import artifacts as A
from stages.commands import inspect as I
from tests.conftest import rlt
from tests.unit.artifacts.test_layout import Cfg

LONG = "step one\n" + "x" * 300 + "\nso the answer is 12"


@pytest.fixture
def evals(tmp_path):
    """An eval artifact of two models (by path) on 6 questions: even ids right, odd ones wrong; q3's response
    long and on several lines."""
    rows = [{"id": f"q{i}", "sample": 0, "question": f"What is {i}?", "answer": str(i), "model": f"/m/{model}",
             "response": LONG if i == 3 else f"r{i}", "extracted": str(i), "correct": i % 2 == 0,
             "response_tokens": 10 * i}
            for model in ("base", "student") for i in range(6)]
    out = tmp_path / "eval"
    with A.ArtifactWriter(out, "eval", Cfg(), key=("model", "id", "sample")) as w:
        w.write(rows)
        w.finish()
    return out


def test_where_keeps_the_rows_that_match_every_condition(evals):
    info = I.run(I.InspectConfig(path=str(evals), where=["correct=false"], rows=100))
    assert info["matched"] == 6 and info["rows"] == 12
    assert {(r["model"], r["id"]) for r in info["head"]} == {(f"/m/{m}", f"q{i}") for m in ("base", "student")
                                                              for i in (1, 3, 5)}
    # a model by the name eval's tables give it; numbers and booleans as the column's type
    info = I.run(I.InspectConfig(path=str(evals), where=["correct=no", "model=student", "response_tokens=50"]))
    assert [(r["model"], r["id"]) for r in info["head"]] == [("/m/student", "q5")]
    info = I.run(I.InspectConfig(path=str(evals), where=["model=/m/base", "correct=true"], rows=2))
    assert info["matched"] == 3 and len(info["head"]) == 2  # --rows still bounds what is shown
    assert I.run(I.InspectConfig(path=str(evals), where=["id=q9"]))["matched"] == 0


def test_row_shows_every_row_of_the_id_whole(evals):
    proc = rlt("inspect", evals, "--row", "q3", "width=10", env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "2 of 12 rows with id=q3" in out and "row 1 of 2" in out and "row 2 of 2" in out
    assert "x" * 300 in out and out.count("so the answer is 12") == 2  # nothing cut, whatever --width says
    assert "  model: /m/base" in out and "  model: /m/student" in out
    proc = rlt("inspect", evals, "--row", "q3", "--where", "model=base", "--json")
    info = json.loads(proc.stdout)
    assert info["matched"] == 1 and info["head"][0]["response"] == LONG


@pytest.mark.parametrize("args, line", [
    (["--where", "corect=false"], "rlt: error: --where: no column 'corect' in {p} (did you mean 'correct'? has: id, "),
    (["--where", "correct"], "rlt: error: --where expects COLUMN=VALUE, got 'correct'"),
    (["--row", "q33"], "rlt: error: no row with id 'q33' in {p} (did you mean 'q3'?)"),
])
def test_what_is_not_there_is_named_in_one_line(evals, args, line):
    proc = rlt("inspect", evals, *args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(line.format(p=evals)) and len(proc.stderr.strip().splitlines()) == 1


def test_a_plain_file_without_ids_and_a_checkpoint(tmp_path, tiny_student):
    f = tmp_path / "x.jsonl"
    f.write_text(json.dumps({"question": "q", "solution": "s"}) + "\n")
    assert I.run(I.InspectConfig(path=str(f), where=["solution=s"]))["matched"] == 1
    proc = rlt("inspect", f, "--row", "a")
    assert proc.returncode == 2 and f"--row: no column 'id' in {f}" in proc.stderr
    proc = rlt("inspect", tiny_student, "--where", "a=b")
    assert proc.returncode == 2 and "is a checkpoint artifact: it has no rows for --row or --where" in proc.stderr
