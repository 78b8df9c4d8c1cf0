"""Artifact contract: schemas, temp+rename parts, manifest last, resume, locks, readers."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pyarrow.parquet as pq
import pytest

from stages import artifacts as A
from stages.config import opt
from stages.errors import UserError


@dataclass
class Cfg:
    out: str = opt("", "out", hash=False)
    seed: int = opt(0, "seed")


def rows(n, start=0):
    return [{"id": A.row_id(f"q{i}", f"s{i}"), "question": f"q{i}", "solution": f"s{i}"} for i in range(start, n)]


def test_row_id_is_stable_and_distinct():
    assert A.row_id("q", "s") == A.row_id("q", "s")
    assert A.row_id("q", "s") != A.row_id("q", "s2") != A.row_id("q\x00", "s")
    assert len(A.row_id("q", "s")) == 16


def test_write_read_manifest(tmp_path):
    out = tmp_path / "a"
    with A.ArtifactWriter(out, "dataset", Cfg(), key=("id",)) as w:
        w.write(rows(3))
        w.write(rows(5, 3))
        m = w.finish()
    # the two parts were compacted into one file; rlt's records are under .rlt/, the manifest only
    assert sorted(p.name for p in out.iterdir()) == [".rlt", "data-000000-000001.parquet"]
    assert [p.name for p in (out / ".rlt").iterdir()] == ["manifest.json"]
    assert m["rows"] == 5 and m["kind"] == "dataset" and m["schema_version"] == A.SCHEMA_VERSION == 2
    assert {"config", "config_hash", "inputs", "rlt_version", "timings", "data_hash", "data_files"} <= set(m)
    assert m == json.loads(A.manifest_path(out).read_text()) == A.read_manifest(out)
    (data,) = out.glob("data-*.parquet")
    t = pq.read_table(data)
    assert t.schema.equals(A.SCHEMAS["dataset"]) and pq.ParquetFile(data).metadata.row_group(0).column(0).compression == "ZSTD"
    got = A.read_rows(out, "dataset")
    assert [r["question"] for r in got] == [f"q{i}" for i in range(5)]


def test_resume_skips_done_rows(tmp_path):
    out = tmp_path / "a"
    with A.ArtifactWriter(out, "dataset", Cfg(), key=("id",)) as w:
        w.write(rows(3))  # interrupted: no finish
    assert A.read_manifest(out) is None and A.output_state(out).status == "interrupted"
    with pytest.raises(UserError, match="incomplete"):
        A.read_table(out)
    with A.ArtifactWriter(out, "dataset", Cfg(), key=("id",)) as w:
        assert len(w.done) == 3 and not w.complete
        w.write(rows(5))
        w.finish()
    assert len(A.read_rows(out, "dataset")) == 5
    with A.ArtifactWriter(out, "dataset", Cfg(), key=("id",)) as w:
        assert w.complete


def test_other_config_refused_unless_force(tmp_path):
    out = tmp_path / "a"
    with A.ArtifactWriter(out, "dataset", Cfg(), key=("id",)) as w:
        w.write(rows(2))
        w.finish()
    before = {str(p): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(UserError, match="--force"):
        A.ArtifactWriter(out, "dataset", Cfg(seed=1), key=("id",)).__enter__()
    with pytest.raises(UserError, match="--force"):
        A.ArtifactWriter(out, "traces", Cfg()).__enter__()
    assert {str(p): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    with A.ArtifactWriter(out, "dataset", Cfg(seed=1), key=("id",), force=True) as w:
        assert not w.done
        w.write(rows(1))
        w.finish()
    assert len(A.read_rows(out, "dataset")) == 1


def test_output_is_a_file_or_foreign_dir(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(UserError, match="is a file"):
        A.ArtifactWriter(f, "dataset", Cfg())
    d = tmp_path / "d"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not an rlt artifact"):
        A.ArtifactWriter(d, "dataset", Cfg())


def test_failed_run_leaves_no_directory(tmp_path):
    out = tmp_path / "a"
    with pytest.raises(UserError), A.ArtifactWriter(out, "dataset", Cfg(), key=("id",)):
        raise UserError("bad input found late")
    assert not out.exists()


def test_lock_refuses_live_holder_and_takes_over_stale(tmp_path):
    out = tmp_path / "a"
    A.meta_path(out, A.LOCK).parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        A.meta_path(out, A.LOCK).write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename}))
        with pytest.raises(UserError, match=f"process {holder.pid}"):
            A.ArtifactWriter(out, "dataset", Cfg()).__enter__()
    finally:
        holder.kill()
        holder.wait()
    with A.ArtifactWriter(out, "dataset", Cfg(), key=("id",)) as w:  # holder is dead: stale lock
        w.write(rows(1))
        w.finish()
    assert not A.meta_path(out, A.LOCK).exists()


def test_readers_name_the_problem(tmp_path):
    import pyarrow as pa

    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({"question": ["a", None], "solution": ["b", "c"]}), p)
    with pytest.raises(UserError, match="row 1 has no value in column 'question'"):
        A.read_rows(p, "dataset")
    pq.write_table(pa.table({"question": ["a"]}), p)
    with pytest.raises(UserError, match="missing column solution"):
        A.read_rows(p, "dataset")
    pq.write_table(pa.table({"question": [1], "solution": ["b"]}), p)
    with pytest.raises(UserError, match="column 'question' must be string"):
        A.read_rows(p, "dataset")
    pq.write_table(pa.table({"question": pa.array([], pa.string()), "solution": pa.array([], pa.string())}), p)
    with pytest.raises(UserError, match="no rows"):
        A.read_rows(p, "dataset")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(UserError, match="cannot read"):
        A.read_rows(bad, "dataset")


def test_jsonl_and_csv_inputs_get_stable_ids(tmp_path):
    j = tmp_path / "d.jsonl"
    j.write_text('{"question": "q0", "solution": "s0"}\n{"question": "q1", "solution": "s1"}\n')
    c = tmp_path / "d.csv"
    c.write_text("question,solution\nq0,s0\nq1,s1\n")
    assert [r["id"] for r in A.read_rows(j, "dataset")] == [r["id"] for r in rows(2)]
    assert [r["id"] for r in A.read_rows(c, "dataset")] == [r["id"] for r in rows(2)]


def test_shards_partition_rows():
    rs = rows(50)
    parts = [A.select_shard(rs, f"{i}/3") for i in range(3)]
    assert sorted(r["id"] for p in parts for r in p) == sorted(r["id"] for r in rs)
    assert A.select_shard(rs, None) == rs
    for bad in ("3/2", "a/b", "1/0", "-1/2"):
        with pytest.raises(UserError, match="--shard"):
            A.parse_shard(bad)
