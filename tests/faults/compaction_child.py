"""Child process of the compaction kill tests: finish (or `rlt data compact`) an artifact, and SIGKILL
itself just before the K-th file operation (rename or delete) of that step.

    python -m tests.faults.compaction_child finish|convert OUT K MAX_FILE_MB

K = 0 runs to the end and prints how many file operations the step made.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from stages.artifacts import compaction as compact
from stages.artifacts import layout
from stages.artifacts.schemas import row_id, to_table
from stages.artifacts.writer import ArtifactWriter
from stages.commands import compact as compact_command
from stages.config import opt

KEY = ("id", "sample")


@dataclass
class Cfg:
    out: str = opt("", "Output.", hash=False)
    seed: int = opt(0, "Seed.")


def rows(n: int, start: int = 0) -> list[dict]:
    return [{"id": row_id(f"q{i}", f"s{i}"), "sample": 0, "question": f"q{i}", "solution": f"s{i}",
             "explanation": f"e{i}" * 50, "text": f"t{i}"} for i in range(start, start + n)]


def build_interrupted(out: Path, batches: list[int]) -> None:
    """Parts written batch by batch, no manifest (the state just before `finish`)."""
    with ArtifactWriter(out, "traces", Cfg(), key=KEY) as w:
        start = 0
        for n in batches:
            w.write(rows(n, start))
            start += n


def build_legacy(out: Path, batches: list[int]) -> None:
    """A complete artifact in schema version 1 (manifest.json and summary.json beside the parts)."""
    out.mkdir(parents=True)
    start, names = 0, []
    for i, n in enumerate(batches):
        names.append(f"part-{i:05d}-77-{i:09d}.parquet")
        pq.write_table(to_table(rows(n, start), "traces"), out / names[-1], compression="zstd")
        start += n
    (out / "summary.json").write_text("{}")
    (out / "manifest.json").write_text(json.dumps({
        "kind": "traces", "schema_version": 1, "rows": start, "config": {}, "config_hash": "x", "inputs": {},
        "data_hash": layout.sha_files(out / n for n in names)}))


def _arm(k: int) -> list[int]:
    """Count renames and deletes; die by SIGKILL just before the k-th."""
    calls = [0]
    real = {"replace": os.replace, "unlink": os.unlink}

    def wrap(name):
        def op(*a, **kw):
            calls[0] += 1
            if calls[0] == k:
                os.kill(os.getpid(), signal.SIGKILL)
            return real[name](*a, **kw)
        return op

    os.replace, os.unlink = wrap("replace"), wrap("unlink")
    return calls


def main(mode: str, out: str, k: int, max_file_mb: float) -> None:
    compact.MAX_FILE_MB = max_file_mb
    if mode == "finish":
        with ArtifactWriter(out, "traces", Cfg(), key=KEY) as w:
            calls = _arm(k)
            w.finish()
            n = calls[0]
    else:
        calls = _arm(k)
        compact_command.run(compact_command.CompactConfig(path=out, max_file_mb=max_file_mb))
        n = calls[0]
    print(n)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
