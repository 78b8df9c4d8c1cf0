"""Artifacts as the data ecosystem reads them: directory readers, compaction, old layout, lifecycle states."""

import json
import shutil
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stages import artifacts as A
from stages.artifacts import compaction as C
from stages.artifacts import layout as L
from stages.artifacts.state import output_state, require
from stages.commands import compact as compact_command
from stages.config import opt
from stages.errors import UserError


@dataclass
class Cfg:
    out: str = opt("", "out", hash=False)
    seed: int = opt(0, "seed")


def kind_rows(kind: str, n: int, start: int = 0) -> list[dict]:
    """n rows of an artifact kind with every required column."""
    out = []
    for i in range(start, start + n):
        r = {"id": A.row_id(f"q{i}", f"s{i}"), "question": f"q{i}", "solution": f"s{i}"}
        if kind == "traces":
            r |= {"sample": 0, "explanation": f"e{i}", "text": f"t{i}", "reward": i / 10}
        if kind == "eval":
            r |= {"sample": 0, "answer": str(i), "response": f"r{i}", "extracted": str(i), "correct": i % 2 == 0,
                  "model": "m"}
        out.append(r)
    return out


KEYS = {"dataset": ("id",), "traces": ("id", "sample"), "eval": ("model", "id", "sample")}


def make(out, kind="dataset", batches=(3, 2, 4), finish=True, cfg=None, inputs=None):
    """An artifact written batch by batch, like a stage does; eval and training records included."""
    start = 0
    with A.ArtifactWriter(out, kind, cfg or Cfg(), inputs=inputs, key=KEYS[kind]) as w:
        for n in batches:
            w.write(kind_rows(kind, n, start))
            start += n
        L.metrics_path(out).write_text('{"step": 1, "loss": 1.0}\n')  # metadata of every sort, hidden
        if kind == "eval":
            L.summary_path(out).write_text(json.dumps({"models": {}}))
        if finish:
            w.finish()
    return out


def expected(kind, n=9):
    return [r[k] for r in kind_rows(kind, n) for k in ("id",)]


# ----------------------------------------------------------------------------- readers


@pytest.mark.parametrize("kind", ["dataset", "traces", "eval"])
def test_every_reader_sees_exactly_the_rows(tmp_path, kind):
    import pandas as pd
    import pyarrow.dataset as ds

    out = make(tmp_path / kind, kind)
    assert L.meta_path(out, "metrics.jsonl").is_file() and L.manifest_path(out).is_file()
    want = expected(kind)
    assert pd.read_parquet(out)["id"].tolist() == want
    assert ds.dataset(out).to_table()["id"].to_pylist() == want
    assert [r["id"] for r in A.read_rows(out, kind)] == want


@pytest.mark.parametrize("kind", ["dataset", "traces", "eval"])
def test_datasets_load_dataset_reads_the_directory(tmp_path, kind, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    out = make(tmp_path / kind, kind)
    got = datasets.load_dataset("parquet", data_dir=str(out), split="train", cache_dir=str(tmp_path / "cache"))
    assert got["id"] == expected(kind)


def test_an_interrupted_artifact_reads_its_rows_so_far_too(tmp_path):
    """While a stage runs (progress, lock, parts) a directory reader still opens only data."""
    import pandas as pd

    out = make(tmp_path / "a", "traces", finish=False)
    A.acquire_lock(out)
    assert {p.name for p in (out / ".rlt").iterdir()} == {"progress.json", "lock", "metrics.jsonl"}
    assert len(pd.read_parquet(out)) == 9


def test_duckdb_reads_the_directory(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    out = make(tmp_path / "a", "traces")
    got = duckdb.sql(f"select id from read_parquet('{out}/*.parquet')").fetchall()
    assert [r[0] for r in got] == expected("traces")


# ----------------------------------------------------------------------------- compaction


def test_finish_compacts_parts_into_one_file_in_part_order(tmp_path):
    out = make(tmp_path / "a", "traces", batches=(2,) * 12)
    files = sorted(out.glob("*.parquet"))
    assert [f.name for f in files] == ["data-000000-000011.parquet"]
    assert pq.read_table(files[0])["id"].to_pylist() == expected("traces", 24)
    assert L.read_manifest(out)["data_files"] == [files[0].name]


def test_compaction_bounds_file_size_and_keeps_order(tmp_path):
    out = make(tmp_path / "a", "traces", batches=(5,) * 10, finish=False)
    part_size = max(f.stat().st_size for f in out.glob("part-*.parquet"))
    files = C.compact(out, max_file_mb=3.5 * part_size / (1 << 20))  # 3 parts fit, a 4th does not
    assert [L.span(f) for f in files] == [(0, 2), (3, 5), (6, 8), (9, 9)]
    assert not list(out.glob("part-*")) and not list(out.glob(".*.tmp"))
    got = pa.concat_tables([pq.read_table(f) for f in files])["id"].to_pylist()
    assert got == expected("traces", 50)
    assert all(f.stat().st_size <= 3.5 * part_size for f in files)
    assert C.compact(out, max_file_mb=1000) == files  # merged files stay as they are
    assert C.compact(out, max_file_mb=1000, remerge=True) == [out / "data-000000-000009.parquet"]


def test_new_parts_after_compaction_continue_the_numbering(tmp_path):
    out = make(tmp_path / "a", "dataset", batches=(2, 2), finish=False)
    C.compact(out)
    with A.ArtifactWriter(out, "dataset", Cfg(), key=("id",)) as w:
        assert len(w.done) == 4
        w.write(kind_rows("dataset", 3, 4))
        assert [L.span(f) for f in L.data_files(out)] == [(0, 1), (2, 2)]
        w.finish()
    assert [r["id"] for r in A.read_rows(out, "dataset")] == expected("dataset", 7)


def test_superseded_files_count_once(tmp_path):
    """A kill between a merged file's rename and its parts' removal: the rows count once."""
    out = make(tmp_path / "a", "dataset", batches=(2, 2, 2), finish=False)
    parts = L.data_files(out)
    merged = out / "data-000000-000001.parquet"
    pq.write_table(pa.concat_tables([pq.read_table(p) for p in parts[:2]]), merged)
    assert L.data_files(out) == [merged, parts[2]]
    assert output_state(out).rows == 6
    with A.ArtifactWriter(out, "dataset", Cfg(), key=("id",)) as w:  # resume removes the superseded parts
        assert len(w.done) == 6 and not any(p.exists() for p in parts[:2])
        w.finish()
    assert [r["id"] for r in A.read_rows(out, "dataset")] == expected("dataset", 6)


# ----------------------------------------------------------------------------- the older layout


def legacy(out, kind="traces", batches=(3, 2, 4)):
    """An artifact in schema version 1: parts, manifest.json and summary.json beside them."""
    out.mkdir(parents=True)
    start, names = 0, []
    for i, n in enumerate(batches):
        names.append(f"part-{i:05d}-4242-{100 + i:09d}.parquet")
        pq.write_table(A.to_table(kind_rows(kind, n, start), kind), out / names[-1], compression="zstd")
        start += n
    (out / "summary.json").write_text("{}")
    manifest = {"kind": kind, "schema_version": 1, "rows": start, "config": {"seed": 0},
                "config_hash": "0123456789abcdef", "inputs": {}, "data_hash": L.sha_files(out / n for n in names),
                "rlt_version": "0.1.0", "created": "2026-01-01T00:00:00", "timings": {"seconds": 1.0}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_old_layout_still_reads(tmp_path):
    out = legacy(tmp_path / "old")
    state = output_state(out)
    assert state.complete and state.rows == 9 and L.read_manifest(out)["schema_version"] == 1
    assert [r["id"] for r in A.read_rows(out, "traces")] == expected("traces")
    assert L.find_meta(out, L.SUMMARY) == out / "summary.json"
    assert A.input_hash(out) == L.read_manifest(out)["data_hash"]


def test_compact_command_converts_old_layout_in_place(tmp_path):
    import pandas as pd

    out = legacy(tmp_path / "old")
    before = L.read_manifest(out)
    info = compact_command.run(compact_command.CompactConfig(path=str(out)))
    assert info["files_before"] == 3 and info["files_after"] == 1
    assert sorted(p.name for p in out.iterdir()) == [".rlt", "data-000000-000002.parquet"]
    assert sorted(p.name for p in (out / ".rlt").iterdir()) == ["manifest.json", "summary.json"]
    after = L.read_manifest(out)
    assert after["schema_version"] == L.SCHEMA_VERSION and after["data_hash"] == before["data_hash"]
    same = ("schema_version", "data_files", "compacted")
    assert {k: v for k, v in after.items() if k not in same} == {k: v for k, v in before.items() if k not in same}
    assert pd.read_parquet(out)["id"].tolist() == expected("traces")
    compact_command.run(compact_command.CompactConfig(path=str(out)))  # a second run changes nothing
    assert sorted(p.name for p in out.iterdir()) == [".rlt", "data-000000-000002.parquet"]


def test_compact_refuses_what_it_cannot_convert(tmp_path):
    with pytest.raises(UserError, match="not an rlt artifact"):
        compact_command.run(compact_command.CompactConfig(path=str(tmp_path / "nothing")))
    out = make(tmp_path / "a", finish=False)
    with pytest.raises(UserError, match="incomplete"):
        compact_command.run(compact_command.CompactConfig(path=str(out)))
    with pytest.raises(UserError, match="positive"):
        compact_command.run(compact_command.CompactConfig(path=str(out), max_file_mb=0))


def test_compact_names_a_damaged_data_file_and_keeps_the_rows(tmp_path):
    out = legacy(tmp_path / "old")
    part = sorted(out.glob("part-*.parquet"))[1]
    part.write_bytes(part.read_bytes()[:-40])  # footer cut
    with pytest.raises(UserError, match=f"cannot compact {out}"):
        compact_command.run(compact_command.CompactConfig(path=str(out)))
    assert len(list(out.glob("part-*.parquet"))) == 3 and L.read_manifest(out)["schema_version"] == 1


def test_a_finished_artifact_reads_without_its_inputs(tmp_path):
    """Reading looks at the artifact, not at what it was made from (a damaged or removed input)."""
    upstream = make(tmp_path / "a")
    out = make(tmp_path / "b", inputs={"data": upstream})
    want = [r["id"] for r in kind_rows("dataset", 9)]
    L.manifest_path(upstream).write_text("{not json")
    assert [r["id"] for r in A.read_rows(out, "dataset")] == want
    shutil.rmtree(upstream)
    assert [r["id"] for r in A.read_rows(out, "dataset")] == want
    assert output_state(out).status == "conflicting"  # rlt inspect and the stages still say the input changed


# ----------------------------------------------------------------------------- lifecycle


def test_lifecycle_states(tmp_path):
    data = tmp_path / "in.jsonl"
    data.write_text('{"question": "q", "solution": "s"}\n')
    out = tmp_path / "a"
    assert output_state(out).status == "missing"
    make(out, finish=False, inputs={"data": data})
    state = output_state(out, "dataset", Cfg(), {"data": data})
    assert (state.status, state.rows, state.finished) == ("interrupted", 9, False)
    assert "9 rows so far" in state.describe()
    with A.ArtifactWriter(out, "dataset", Cfg(), inputs={"data": data}, key=("id",)) as w:
        w.finish()
    assert output_state(out, "dataset", Cfg(), {"data": data}).complete
    other = output_state(out, "dataset", Cfg(seed=1), {"data": data})
    assert other.status == "conflicting" and other.finished and other.differs == ("config changed (seed)",)
    assert output_state(out, "traces", Cfg(), {"data": data}).differs[0] == "it is a dataset artifact, not a traces artifact"
    data.write_text('{"question": "q2", "solution": "s"}\n')
    changed = output_state(out)  # no config given: the recorded inputs against themselves now
    assert changed.status == "conflicting" and changed.differs == (f"input data ({data}) changed",)
    with pytest.raises(UserError, match=r"another config or inputs \(input data .* changed\); use --force"):
        require(out, "dataset", Cfg(), {"data": data})
    assert require(out, "dataset", Cfg(), {"data": data}, force=True).status == "missing"


def test_a_damaged_part_is_not_counted(tmp_path):
    out = make(tmp_path / "a", finish=False)
    (out / f"part-{L.next_part_number(out):06d}-1-1.parquet").write_bytes(b"cut by a kill")
    assert output_state(out).rows == 9


def test_rank_zero_writer_writes_once_and_waits_twice(tmp_path, monkeypatch):
    from stages.training import launch
    from stages.training import rankzero as lifecycle

    waits = []
    monkeypatch.setattr(lifecycle, "barrier", lambda: waits.append(launch.rank()))
    out = tmp_path / "a"
    monkeypatch.setenv("RANK", "1")  # a follower: computes, writes nothing, waits for rank 0
    with lifecycle.RankZeroWriter(out, "dataset", Cfg(), key=("id",)) as w:
        assert not w.complete
        w.write(kind_rows("dataset", 2))
        assert w.finish() == {} and not out.exists()
    monkeypatch.setenv("RANK", "0")
    with lifecycle.RankZeroWriter(out, "dataset", Cfg(), key=("id",)) as w:
        w.write(kind_rows("dataset", 2))
        assert w.finish()["rows"] == 2
    monkeypatch.setenv("RANK", "1")  # rank 0 finished: a follower sees the same complete output
    with lifecycle.RankZeroWriter(out, "dataset", Cfg(), key=("id",)) as w:
        assert w.complete
    assert waits == [1, 1, 0, 0, 1]


def test_compact_converts_an_old_checkpoint_keeping_the_model_directory(tmp_path):
    out = tmp_path / "ckpt"
    out.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (out / name).write_text("{}")
    (out / "metrics.jsonl").write_text('{"step": 1}\n')
    (out / "manifest.json").write_text(json.dumps({"kind": "checkpoint", "schema_version": 1, "rows": 4,
                                                   "inputs": {}, "data_hash": "abc"}))
    assert output_state(out).complete and L.find_meta(out, L.METRICS) == out / "metrics.jsonl"
    compact_command.run(compact_command.CompactConfig(path=str(out)))
    assert sorted(p.name for p in out.iterdir()) == [".rlt", "config.json", "model.safetensors", "tokenizer.json"]
    assert sorted(p.name for p in (out / ".rlt").iterdir()) == ["manifest.json", "metrics.jsonl"]
    assert L.read_manifest(out)["data_hash"] == "abc" and L.read_manifest(out)["schema_version"] == 2
