"""Compaction at finish: many small parts vs the compacted artifact, and compaction's memory bound.

Writes a traces artifact through `ArtifactWriter` one part per batch, as `rlt generate`
does (default: the demo's 2000 rows in batches of 16 = 125 parts), then, in a fresh
process, finishes it (streaming compaction + manifest) and reports the seconds, the
file count before and after, and the peak Arrow memory and peak RSS of that process
next to the artifact's uncompressed size. Reading times: `pd.read_parquet` of the
125 parts vs of the compacted directory, with the ratio.

    .venv/bin/python benchmarks/compact.py                      # the demo's shape
    .venv/bin/python benchmarks/compact.py --rows 1700 --chars 64000 --max-file-mb 64   # long traces
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FINISH = """
import json, resource, sys, time
import pyarrow as pa
from stages import compact
from stages.artifacts.writer import ArtifactWriter
from benchmarks.compact import Cfg
compact.MAX_FILE_MB = float(sys.argv[2])
with ArtifactWriter(sys.argv[1], "traces", Cfg()) as w:  # resuming reads the parts' keys (not timed)
    t0 = time.perf_counter()
    w.finish()
print(json.dumps({"seconds": time.perf_counter() - t0, "arrow_peak_mb": pa.default_memory_pool().max_memory() / 2**20,
                  "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _cfg_class():
    from dataclasses import dataclass

    from stages.config import opt

    @dataclass
    class Cfg:
        out: str = opt("", "Output.", hash=False)

    return Cfg


Cfg = _cfg_class()


def build(out: Path, rows: int, batch: int, chars: int, seed: int = 0) -> float:
    """Write `rows` traces rows in parts of `batch`; returns their uncompressed size in MiB."""
    from stages.artifacts.schemas import row_id, to_table
    from stages.artifacts.writer import ArtifactWriter

    rng = random.Random(seed)
    words = ["carry", "the", "digit", "sum", "column", "so", "we", "add", "then", "write", "7", "12", "+"]
    size = 0
    with ArtifactWriter(out, "traces", Cfg()) as w:
        for start in range(0, rows, batch):
            batch_rows = []
            for i in range(start, min(rows, start + batch)):
                text = " ".join(rng.choice(words) for _ in range(chars // 5))[:chars]
                batch_rows.append({"id": row_id(f"q{i}", f"s{i}"), "sample": 0, "question": f"q{i}",
                                   "solution": f"s{i}", "explanation": text, "text": text, "reward": rng.random()})
            size += to_table(batch_rows, "traces").nbytes
            w.write(batch_rows)
    return size / 2**20


def _read_seconds(target) -> float:
    import pandas as pd

    t0 = time.perf_counter()
    pd.read_parquet(target)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--chars", type=int, default=2000, help="characters of each explanation (and text)")
    ap.add_argument("--max-file-mb", type=float, default=256)
    a = ap.parse_args()
    from stages.artifacts import layout

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "traces"
        mb = build(out, a.rows, a.batch, a.chars)
        parts = layout.data_files(out)
        before = _read_seconds([str(p) for p in parts])
        proc = subprocess.run([sys.executable, "-c", FINISH, str(out), str(a.max_file_mb)], cwd=ROOT,
                              capture_output=True, text=True, check=True)
        stats = json.loads(proc.stdout.strip().splitlines()[-1])
        files = layout.data_files(out)
        after = _read_seconds(str(out))
        print(f"{a.rows} rows, {a.chars} chars per explanation, {mb:.0f} MiB uncompressed")
        print(f"parts {len(parts)} -> data files {len(files)} "
              f"({', '.join(f'{f.stat().st_size / 2**20:.1f} MiB' for f in files)})")
        print(f"finish (compaction + manifest): {stats['seconds']:.2f} s, peak Arrow memory "
              f"{stats['arrow_peak_mb']:.0f} MiB, peak RSS {stats['rss_peak_mb']:.0f} MiB")
        print(f"pd.read_parquet: {len(parts)} parts {before:.3f} s, compacted dir {after:.3f} s, "
              f"ratio {before / after:.1f}x")


if __name__ == "__main__":
    main()
