"""An artifact opens in pandas and pyarrow while it is being written, whatever its parts hold (explicit part
schemas, stages/artifacts/schemas.py `to_table`), and a CSV file with a cell of megabytes reads as pandas reads
it (stages/artifacts/read.py)."""

from __future__ import annotations

import csv
from dataclasses import dataclass

import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from stages.artifacts.read import read_rows
from stages.artifacts.writer import ArtifactWriter


@dataclass
class Cfg:
    n: int = 1


def _eval_row(i: int, **extra) -> dict:
    return {"id": str(i), "sample": 0, "question": f"q{i}", "answer": "1", "task": "math", "model": "m",
            "response": "r", "extracted": "1", "correct": True, "response_tokens": 3, "truncated": False, **extra}


def _open_everywhere(out):
    """The rows as pandas, a pyarrow dataset and pyarrow's read_table see them (all parts, no manifest)."""
    return pd.read_parquet(out), ds.dataset(out).to_table(), pq.read_table(out)


@pytest.mark.parametrize("kind,first,later", [
    # a grouping column, the benchmark name and a column of the user's: empty in the first part, text later
    ("eval", {"level": None, "subject": None, "source": None, "notes": None},
     {"level": "3", "subject": "Algebra", "source": "math500", "notes": "hard"}),
    ("eval", {"level": 1, "source": None}, {"level": 2, "source": "aime"}),  # a level given as a number: text
    ("traces", {"format_ok": None, "student_tokens": None, "reward": None}, {"format_ok": True, "student_tokens": 7,
                                                                             "reward": 0.5}),
])
def test_an_artifact_being_written_opens_in_pandas_and_pyarrow(tmp_path, kind, first, later):
    out = tmp_path / "a"
    with ArtifactWriter(out, kind, Cfg()) as w:
        if kind == "traces":
            base = [{"id": str(i), "sample": 0, "question": "q", "solution": "s", "explanation": "e", "text": "t"}
                    for i in range(4)]
            w.write([{**r, **first} for r in base[:2]])
            w.write([{**r, **later} for r in base[2:]])
        else:
            w.write([_eval_row(0, **first), _eval_row(1, **first)])
            w.write([_eval_row(2, **later), _eval_row(3, **later)])
        frame, dataset, table = _open_everywhere(out)  # still being written: two parts, no manifest
        assert len(frame) == dataset.num_rows == table.num_rows == 4
        for column in later:
            want = [first[column]] * 2 + [later[column]] * 2
            if kind == "eval":  # every extra column of an eval row is text
                want = [v if v is None else str(v) for v in want]
            assert dataset.column(column).to_pylist() == [None if pd.isna(v) else v for v in frame[column]] == want
        w.finish()
    assert len(pd.read_parquet(out)) == 4


def test_a_csv_cell_of_megabytes_reads_as_pandas_reads_it(tmp_path):
    path = tmp_path / "data.csv"
    long = "step 1 " * 500_000  # 3.5 MB in one cell, over pyarrow's default block of 1 MiB
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "question", "solution"])
        w.writerows([["a", "first?", long], ["b", "second?", "two\nlines"], ["c", "third?", "3"]])
    rows = read_rows(path, "dataset")
    frame = pd.read_csv(path, dtype=str)
    assert [r["solution"] for r in rows] == frame["solution"].tolist()
    assert len(rows[0]["solution"]) == len(long)
