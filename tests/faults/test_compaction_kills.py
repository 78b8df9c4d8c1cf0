"""SIGKILL at every file operation of a compaction: each row stays counted exactly once, and a rerun finishes.

Compaction runs when a stage finishes (`ArtifactWriter.finish`) and in `rlt data compact`, which
also converts a schema-version-1 artifact. The child process kills itself just before its K-th
rename or delete, for every K, so every on-disk state a kill can leave is checked.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stages.artifacts import compaction as compact
from stages.artifacts import layout
from stages.artifacts.read import read_rows
from stages.artifacts.state import output_state
from stages.artifacts.writer import ArtifactWriter
from stages.commands import compact as compact_command
from tests.conftest import ROOT
from tests.faults.compaction_child import KEY, Cfg, build_interrupted, build_legacy, rows

BATCHES = [3, 2, 4]  # 9 rows in 3 parts: two merged, one renamed
WANT = [r["id"] for r in rows(sum(BATCHES))]


def child(mode: str, out, k: int, max_file_mb: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.faults.compaction_child", mode, str(out), str(k),
                           str(max_file_mb)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def counted_ids(out) -> list[str]:
    """Ids in the files the lifecycle counts, in part order."""
    return pa.concat_tables([pq.read_table(f) for f in layout.data_files(out)])["id"].to_pylist()


def _file_mb(out) -> float:
    """A bound that fits two parts but not three, so the parts compact into several files."""
    return 2.5 * max(f.stat().st_size for f in layout.data_files(out)) / (1 << 20)


@pytest.mark.parametrize("mode", ["finish", "convert"])
def test_kill_at_every_compaction_step(tmp_path, mode):
    base = tmp_path / "base"
    (build_interrupted if mode == "finish" else build_legacy)(base, BATCHES)
    mb = _file_mb(base)
    ref = tmp_path / "ref"
    shutil.copytree(base, ref)
    done = child(mode, ref, 0, mb)
    assert done.returncode == 0, done.stderr
    steps = int(done.stdout.split()[-1])
    assert steps >= len(BATCHES) and [layout.span(f) for f in layout.data_files(ref)] == [(0, 1), (2, 2)]
    for k in range(1, steps + 1):
        out = tmp_path / f"k{k}"
        shutil.copytree(base, out)
        proc = child(mode, out, k, mb)
        assert proc.returncode == -signal.SIGKILL, (k, proc.stderr[-2000:])
        ids = counted_ids(out)
        assert ids == WANT, f"kill before step {k}: {Counter(ids).most_common(1)} rows counted"
        assert output_state(out).rows == len(WANT)
        _rerun(mode, out, mb)
        if mode == "finish":  # the parts left group as in an uninterrupted run
            assert sorted(p.name for p in out.glob("*.parquet")) == sorted(p.name for p in ref.glob("*.parquet"))
        assert all(p.name.startswith("data-") for p in out.glob("*.parquet"))
        assert pd.read_parquet(out)["id"].tolist() == WANT, k
        assert [r["id"] for r in read_rows(out, "traces")] == WANT
        assert not list(out.glob(".*.tmp")) and sorted(p.name for p in (out / ".rlt").iterdir()) == \
            sorted(p.name for p in (ref / ".rlt").iterdir())


def _rerun(mode: str, out, mb: float) -> None:
    """What the user does after the kill: the same command again."""
    compact.MAX_FILE_MB, saved = mb, compact.MAX_FILE_MB
    try:
        if mode == "finish":
            with ArtifactWriter(out, "traces", Cfg(), key=KEY) as w:
                if not w.complete:
                    w.finish()
        else:
            compact_command.run(compact_command.CompactConfig(path=str(out), max_file_mb=mb))
    finally:
        compact.MAX_FILE_MB = saved
