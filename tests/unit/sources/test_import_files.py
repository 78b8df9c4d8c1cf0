"""Files as they come (issue 26, items 8 and 9): every text column read as text, hidden files in
folders skipped as Parquet readers skip them, eval-only benchmarks (question + answer) imported
without a made-up solution, benchmarks' grouping columns kept, and raw benchmark files given to a
stage that reads datasets answered with the import command that reads them
(stages/artifacts/read.py, stages/commands/data.py, stages/artifacts/benchmarks.py)."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stages import verify
from stages.artifacts.benchmarks import import_hint, raw_format
from stages.artifacts.layout import read_manifest
from stages.artifacts.read import read_rows, read_table
from stages.artifacts.schemas import EVAL_REQUIRED
from stages.commands.data import ImportConfig, import_
from stages.commands.decontaminate import DecontaminateConfig
from stages.commands.decontaminate import run as decontaminate
from stages.commands.evaluate import EvalConfig, load_items
from stages.errors import UserError
from stages.sources.files import hidden, load_source
from tests.conftest import rlt


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _raw_jsonl(path: Path, lines: list[str]) -> Path:
    """JSON Lines written as text, so numbers keep the exact spelling of the file (`0.30`)."""
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _import(src, out, **kw) -> list[dict]:
    return read_rows(import_(ImportConfig(src=str(src), out=str(out), **kw)), "dataset", required=EVAL_REQUIRED)


# ----------------------------------------------------------------------------- every text column as text

MIXED_LINES = [
    '{"question": "What is 2 + 3?", "solution": "It is \\\\boxed{5}.", "answer": 5}',
    '{"question": "Half of one?", "solution": "\\\\boxed{\\\\frac{1}{2}}", "answer": "\\\\frac{1}{2}"}',
    '{"question": "Three tenths?", "solution": "\\\\boxed{0.30}", "answer": 0.30}',
    '{"question": "Minus seven?", "solution": "\\\\boxed{-7}", "answer": -7}',
    '{"question": "A big one?", "solution": "\\\\boxed{12345678901234567890}", "answer": 12345678901234567890}',
    '{"question": "Scientific?", "solution": "\\\\boxed{1e-5}", "answer": 1e-5}',
    '{"question": "Nothing?", "solution": "\\\\boxed{0}", "answer": null}',
]
MIXED_TEXT = ["5", "\\frac{1}{2}", "0.30", "-7", "12345678901234567890", "1e-5", None]


def test_a_jsonl_answer_column_mixing_numbers_and_strings_is_read_as_text(tmp_path):
    table = read_table(_raw_jsonl(tmp_path / "mixed.jsonl", MIXED_LINES))
    assert table.schema.field("answer").type == pa.string()
    assert table.column("answer").to_pylist() == MIXED_TEXT  # numbers as the file spells them


def test_the_mixed_jsonl_imports_and_every_gold_checks_its_solution(tmp_path):
    rows = _import(_raw_jsonl(tmp_path / "mixed.jsonl", MIXED_LINES), tmp_path / "d")
    assert [r["answer"] for r in rows] == MIXED_TEXT
    for r in rows:
        assert verify.check("math", r["solution"], verify.gold_from_row(r)).correct, r


def test_the_mixed_jsonl_is_evaluable_as_a_file(tmp_path):
    items = load_items(EvalConfig(models=["m"], data=str(_raw_jsonl(tmp_path / "mixed.jsonl", MIXED_LINES)),
                                  out="o"))
    assert [it["answer"] for it in items] == ["5", "\\frac{1}{2}", "0.30", "-7", "12345678901234567890", "1e-5", "0"]


@pytest.mark.parametrize("lines,column,want", [
    (['{"a": 1, "b": true}', '{"a": "x", "b": false}'], "b", [True, False]),     # a bool column stays bool
    (['{"a": 1, "b": true}', '{"a": "x", "b": "yes"}'], "b", ["true", "yes"]),   # a bool among text: JSON text
    (['{"a": [1, 2]}', '{"a": "two"}'], "a", ["[1, 2]", "two"]),                 # a list among text
    (['{"a": {"k": 1}}', '{"a": "obj"}'], "a", ['{"k": 1}', "obj"]),
    (['{"a": 1}', '{"a": 2.5}'], "a", [1.0, 2.5]),                                # all numbers stay numbers
    (['{"a": 1}', '{"b": 2}'], "a", [1, None]),                                   # a key missing from a row
    (['{"a": [1, "x"]}', '{"a": [2]}'], "a", ['[1, "x"]', "[2]"]),                # no arrow type: JSON text
])
def test_json_columns_by_kind(tmp_path, lines, column, want):
    assert read_table(_raw_jsonl(tmp_path / "x.jsonl", lines)).column(column).to_pylist() == want


def test_integer_ids_and_answers_read_as_text(tmp_path):
    src = _jsonl(tmp_path / "aime.jsonl", [{"id": 60, "question": "P1", "answer": 70},
                                           {"id": 61, "question": "P2", "answer": 204}])
    rows = read_rows(src, "dataset", required=EVAL_REQUIRED)
    assert [(r["id"], r["answer"]) for r in rows] == [("60", "70"), ("61", "204")]
    with pytest.raises(UserError, match="column 'question' must be string"):  # a number question is no question
        read_rows(_jsonl(tmp_path / "q.jsonl", [{"question": 3, "solution": "s"}]), "dataset")


def test_json_file_layouts(tmp_path):
    records = [{"question": "q1", "answer": 1}, {"question": "q2", "answer": "x"}]
    (tmp_path / "records.json").write_text(json.dumps(records))
    (tmp_path / "columns.json").write_text(json.dumps({"question": ["q1", "q2"], "answer": [1, "x"]}))
    (tmp_path / "pandas.json").write_text(json.dumps({"question": {"0": "q1", "1": "q2"},
                                                      "answer": {"0": 1, "1": "x"}}))
    (tmp_path / "lines.json").write_text("".join(json.dumps(r) + "\n" for r in records))  # JSON Lines named .json
    for name in ("records", "columns", "pandas", "lines"):
        table = read_table(tmp_path / f"{name}.json")
        assert table.to_pylist() == [{"question": "q1", "answer": "1"}, {"question": "q2", "answer": "x"}], name


def test_broken_json_is_one_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q"}\n{"question": \n')
    with pytest.raises(UserError, match="cannot read .*bad.jsonl: line 2"):
        read_table(bad)


def test_a_csv_column_with_text_after_the_first_block_is_text(tmp_path):
    path = tmp_path / "late.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["question", "solution", "answer"])
        for i in range(60000):  # several pyarrow read blocks of integers, then text
            w.writerow([f"What is {i} + 0?", f"\\boxed{{{i}}}", i])
        w.writerow(["Half?", "\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"])
    table = read_table(path)
    assert table.schema.field("answer").type == pa.string()
    assert table.column("answer").to_pylist()[-2:] == ["59999", "\\frac{1}{2}"]


# ----------------------------------------------------------------------------- folders as Parquet readers see them


def _parquet(path: Path, questions: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"question": questions, "solution": [f"\\boxed{{{i}}}" for i in range(len(questions))]}),
                   path)


@pytest.fixture()
def folder(tmp_path):
    """Six real rows beside the hidden files a Mac, Jupyter, Spark and Hadoop leave."""
    d = tmp_path / "src"
    _parquet(d / "train-0.parquet", ["q0", "q1"])
    _parquet(d / "train-1.parquet", ["q2", "q3"])
    _parquet(d / "more" / "train-2.parquet", ["q4", "q5"])
    _parquet(d / ".ipynb_checkpoints" / "train-0-checkpoint.parquet", ["old0", "old1", "old2"])
    (d / "._train-0.parquet").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")  # not Parquet at all
    (d / "more" / "._train-2.parquet").write_bytes(b"\x00\x05\x16\x07")
    _parquet(d / "_temporary" / "0" / "part-0.parquet", ["tmp0"])
    _parquet(d / "more" / ".cache" / "x.parquet", ["cached"])
    _parquet(d / "_metadata_rows.parquet", ["meta"])
    (d / "_SUCCESS").write_text("")
    return d


def test_import_of_a_folder_skips_hidden_and_underscored_names_at_every_depth(folder, tmp_path):
    rows = _import(folder, tmp_path / "d")
    assert sorted(r["question"] for r in rows) == [f"q{i}" for i in range(6)]


def test_the_folder_reads_as_pyarrow_and_pandas_read_it(folder):
    import pandas as pd
    import pyarrow.dataset as ds

    ours = sorted(r["question"] for r in load_source(str(folder), "train"))
    theirs = sorted(ds.dataset(str(folder), format="parquet", exclude_invalid_files=False)
                    .to_table().column("question").to_pylist())
    assert ours == theirs == sorted(pd.read_parquet(folder)["question"])


@pytest.mark.parametrize("rel,skipped", [
    ("a.parquet", False), ("sub/a.parquet", False), ("._a.parquet", True), (".ipynb_checkpoints/a.parquet", True),
    ("sub/.hidden/a.parquet", True), ("_SUCCESS", True), ("_temporary/0/a.parquet", True), ("sub/_x/a.parquet", True),
    ("a_b.parquet", False), ("sub.d/a.parquet", False),
])
def test_hidden_names(tmp_path, rel, skipped):
    assert hidden(tmp_path / rel, tmp_path) is skipped


def test_a_folder_with_only_hidden_files_says_so(tmp_path):
    _parquet(tmp_path / "src" / ".ipynb_checkpoints" / "a.parquet", ["x"])
    with pytest.raises(UserError, match="holds no dataset.*skipped"):
        load_source(str(tmp_path / "src"), "train")


def test_cli_imports_the_folder(folder, tmp_path):
    proc = rlt("data", "import", folder, "--out", tmp_path / "d", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert read_manifest(tmp_path / "d")["rows"] == 6


# ----------------------------------------------------------------------------- eval-only benchmarks

QA = [{"question": "What is 2 + 2?", "answer": "4"}, {"question": "What is half of 1?", "answer": "\\frac{1}{2}"},
      {"question": "What is 10 - 3?", "answer": 7}]


def test_a_question_and_answer_file_imports_as_an_eval_set(tmp_path):
    rows = _import(_jsonl(tmp_path / "qa.jsonl", QA), tmp_path / "d")
    assert [(r["answer"], r["solution"]) for r in rows] == [("4", None), ("\\frac{1}{2}", None), ("7", None)]
    manifest = read_manifest(tmp_path / "d")
    assert (manifest["rows_without_solution"], manifest["rows_without_answer"]) == (3, 0)
    items = load_items(EvalConfig(models=["m"], data=str(tmp_path / "d"), out="o"))
    assert [it["answer"] for it in items] == ["4", "\\frac{1}{2}", "7"]


def test_a_mapped_answer_column_imports_as_an_eval_set(tmp_path):
    src = _jsonl(tmp_path / "qa.jsonl", [{"prompt": q["question"], "gold": q["answer"]} for q in QA])
    rows = _import(src, tmp_path / "d", map={"question": "prompt", "answer": "gold"})
    assert [r["answer"] for r in rows] == ["4", "\\frac{1}{2}", "7"] and {r["solution"] for r in rows} == {None}


def test_training_refuses_an_eval_set_naming_why(tmp_path):
    _import(_jsonl(tmp_path / "qa.jsonl", QA), tmp_path / "d")
    with pytest.raises(UserError, match="no value in column 'solution'.*eval set.*training needs a solution"):
        read_rows(tmp_path / "d", "dataset")


def test_a_bare_answer_mapped_to_the_solution_is_a_training_row_without_gold(tmp_path, caplog):
    src = _jsonl(tmp_path / "qa.jsonl", [{"question": "What is 2 + 2?", "ans": "4"}])
    _import(src, tmp_path / "d", map={"solution": "ans"})
    assert read_manifest(tmp_path / "d")["rows_without_answer"] == 1
    assert "--map answer=" in caplog.text
    with pytest.raises(UserError, match="has no answer.*--map answer="):
        load_items(EvalConfig(models=["m"], data=str(tmp_path / "d"), out="o"))


def test_a_row_with_neither_solution_nor_answer_says_what_is_needed(tmp_path):
    src = _jsonl(tmp_path / "q.jsonl", [{"question": "What?", "notes": "x"}])
    with pytest.raises(UserError, match="solution \\(a training set\\) or answer \\(an eval set\\)"):
        import_(ImportConfig(src=str(src), out=str(tmp_path / "d")))


@pytest.mark.parametrize("fmt,row", [
    ("math500", {"problem": "What is 2 + 2?", "answer": "4", "subject": "Prealgebra", "level": 1,
                 "unique_id": "test/prealgebra/1.json"}),
    ("aime", {"problem": "Find N.", "answer": "070"}),
    ("gpqa", {"Question": "Which?", "Correct Answer": "r", "Incorrect Answer 1": "a", "Incorrect Answer 2": "b",
              "Incorrect Answer 3": "c"}),
])
def test_a_benchmark_row_without_a_solution_gets_none_made_up(tmp_path, fmt, row, caplog):
    caplog.set_level(logging.INFO)
    rows = _import(_jsonl(tmp_path / "b.jsonl", [row]), tmp_path / "d", format=fmt)
    assert rows[0]["solution"] is None and rows[0]["answer"]
    assert read_manifest(tmp_path / "d")["rows_without_solution"] == 1
    assert "no solution" in caplog.text


def test_a_math500_row_with_a_solution_keeps_it(tmp_path):
    row = {"problem": "What is 2 + 2?", "solution": "Add: $\\boxed{4}$.", "answer": "4"}
    assert _import(_jsonl(tmp_path / "b.jsonl", [row]), tmp_path / "d", format="math500")[0]["solution"] == \
        row["solution"]


# ----------------------------------------------------------------------------- grouping columns

def test_math500_keeps_subject_level_and_unique_id(tmp_path):
    rows = [{"problem": f"P{i}", "solution": f"\\boxed{{{i}}}", "answer": str(i), "subject": s, "level": lv,
             "unique_id": f"test/{s.lower()}/{i}.json"}
            for i, (s, lv) in enumerate([("Algebra", 1), ("Geometry", 5), ("Algebra", 3)])]
    got = _import(_jsonl(tmp_path / "m.jsonl", rows), tmp_path / "d", format="math500")
    assert [(r["subject"], r["level"], r["unique_id"]) for r in got] == [
        ("Algebra", "1", "test/algebra/0.json"), ("Geometry", "5", "test/geometry/1.json"),
        ("Algebra", "3", "test/algebra/2.json")]


def test_gpqa_keeps_domain_subdomain_and_record_id(tmp_path):
    path = tmp_path / "gpqa.csv"
    cols = ["Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3",
            "Explanation", "Subdomain", "High-level domain", "Record ID"]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        w.writerow(["Q0?", "r", "a", "b", "c", "Because.", "Quantum Mechanics", "Physics", "rec0"])
        w.writerow(["Q1?", "r", "a", "b", "c", "Because.", "Organic Chemistry", "Chemistry", "rec1"])
    got = _import(path, tmp_path / "d", format="gpqa")
    assert [(r["domain"], r["subdomain"], r["record_id"]) for r in got] == [
        ("Physics", "Quantum Mechanics", "rec0"), ("Chemistry", "Organic Chemistry", "rec1")]


def test_columns_keep_grouping_columns_present_in_some_rows(tmp_path):
    rows = [{"question": "q0", "answer": "1"}, {"question": "q1", "answer": "2", "level": 4}]
    got = _import(_jsonl(tmp_path / "c.jsonl", rows), tmp_path / "d")
    assert [r.get("level") for r in got] == [None, "4"]


# ----------------------------------------------------------------------------- raw benchmark files


MATH500_RAW = {"problem": "What is 2 + 2?", "solution": "$\\boxed{4}$", "answer": "4", "subject": "Algebra",
               "level": 1, "unique_id": "test/algebra/1.json"}


@pytest.mark.parametrize("columns,fmt", [
    (list(MATH500_RAW), "math500"),
    (["Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"], "gpqa"),
    (["conversations", "system"], "stratos"),
    (["id", "problem", "solution", "answer", "url"], "aime"),
    (["question", "solution"], None),
])
def test_raw_formats(columns, fmt):
    found = raw_format(columns, "data/x.jsonl")
    assert (found[0] if found else None) == fmt


def test_a_file_of_other_columns_is_told_to_map_its_question():
    assert "--format columns --map question=prompt" in import_hint("x.jsonl", ["prompt", "completion"])
    assert import_hint("x.jsonl", ["question", "answer"]) is None


def test_eval_on_a_raw_math500_file_names_the_import_command(tmp_path):
    src = _jsonl(tmp_path / "test.jsonl", [MATH500_RAW])
    proc = rlt("eval", "--model", tmp_path / "m", "--data", src, "--out", tmp_path / "o", timeout=300)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "question" in line and f"rlt data import {src} --format math500" in line
    assert not (tmp_path / "o").exists()


def test_decontaminate_against_a_raw_gpqa_csv_names_the_import_command(tmp_path):
    path = tmp_path / "gpqa_diamond.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"])
        w.writerow(["Q?", "r", "a", "b", "c"])
    train = _jsonl(tmp_path / "t.jsonl", [{"question": "q", "solution": "s"}])
    with pytest.raises(UserError, match="--format gpqa"):
        decontaminate(DecontaminateConfig(src=str(train), against=[str(path)], out=str(tmp_path / "o")))


def test_decontaminate_against_an_eval_only_benchmark(tmp_path):
    bench = _import(_jsonl(tmp_path / "qa.jsonl", QA), tmp_path / "bench")
    assert bench
    train = _jsonl(tmp_path / "t.jsonl", [{"id": "copy", "question": "What is 2 + 2?", "solution": "4"},
                                          {"id": "other", "question": "What is 5 + 5?", "solution": "10"}])
    out = decontaminate(DecontaminateConfig(src=str(train), against=[str(tmp_path / "bench")], out=str(tmp_path / "o")))
    assert [r["id"] for r in read_rows(out, "dataset")] == ["other"]


def test_a_raw_benchmark_file_imported_as_columns_names_its_format(tmp_path):
    src = _jsonl(tmp_path / "test.jsonl", [MATH500_RAW])
    with pytest.raises(UserError, match="missing column.*question.*--format math500"):
        import_(ImportConfig(src=str(src), out=str(tmp_path / "d")))
