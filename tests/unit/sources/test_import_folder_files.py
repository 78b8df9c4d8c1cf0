"""`rlt data import FOLDER` says in one line which files it read, and which it left out and why."""

import json
import logging

import pytest

from stages.sources.files import folder_files, load_source
from tests.conftest import rlt


def _jsonl(path, questions):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"question": q, "solution": f"\\boxed{{{i}}}"}) + "\n"
                            for i, q in enumerate(questions)))


def _parquet(path, questions):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"question": questions, "solution": ["\\boxed{1}"] * len(questions)}), path)


def test_the_line_names_every_file_read(tmp_path, caplog):
    _jsonl(tmp_path / "a.jsonl", ["q0", "q1"])
    _jsonl(tmp_path / "sub" / "b.jsonl", ["q2"])
    _jsonl(tmp_path / "._a.jsonl", ["resource fork"])
    _jsonl(tmp_path / "_tmp" / "c.jsonl", ["scratch"])
    with caplog.at_level(logging.INFO):
        rows = load_source(str(tmp_path), "train")
    assert sorted(r["question"] for r in rows) == ["q0", "q1", "q2"]
    lines = [r.getMessage() for r in caplog.records if "reading" in r.getMessage()]
    assert lines == [(f"{tmp_path}: reading 2 files: a.jsonl, sub/b.jsonl; left out: ._a.jsonl, _tmp/c.jsonl "
                      "(names starting with . or _)")]


def test_jsonl_beside_parquet_is_said_to_be_left_out(tmp_path, caplog):
    _parquet(tmp_path / "train.parquet", ["p0"])
    _jsonl(tmp_path / "notes.jsonl", ["n0"])
    with caplog.at_level(logging.INFO):
        assert [f.name for f in folder_files(tmp_path)] == ["train.parquet"]
    assert f"{tmp_path}: reading 1 file: train.parquet; left out: notes.jsonl (the folder has .parquet files: " \
        "those are read)" in caplog.text


def test_many_files_are_named_up_to_ten(tmp_path, caplog):
    for i in range(13):
        _jsonl(tmp_path / f"shard-{i:02d}.jsonl", [f"q{i}"])
    with caplog.at_level(logging.INFO):
        folder_files(tmp_path)
    assert "reading 13 files: shard-00.jsonl, shard-01.jsonl" in caplog.text
    assert "shard-09.jsonl and 3 more" in caplog.text and "shard-10" not in caplog.text


@pytest.mark.parametrize("verbose", [False, True])
def test_the_cli_says_it(tmp_path, verbose):
    _jsonl(tmp_path / "src" / "a.jsonl", ["q0"])
    _jsonl(tmp_path / "src" / "b.jsonl", ["q1"])
    proc = rlt("data", "import", tmp_path / "src", "--out", tmp_path / "d", *(["-v"] if verbose else []))
    assert proc.returncode == 0, proc.stderr
    said = [line for line in proc.stderr.splitlines() if "reading 2 files" in line]
    assert len(said) == 1 and said[0].endswith(f"{tmp_path / 'src'}: reading 2 files: a.jsonl, b.jsonl")
    assert "warning" not in said[0]
