"""Where an artifact keeps its files: data in view, rlt's records in `.rlt/`.

Layout (schema version 2), for an artifact directory A:

    A/data-000000-000124.parquet   finished data: rows of parts 0..124, in part order
    A/part-000125-<pid>-<ms>.parquet   a part written while the stage runs (one batch)
    A/.rlt/manifest.json            written last: its presence means complete
    A/.rlt/progress.json            kind, config and inputs of an unfinished run
    A/.rlt/lock                     the writing process
    A/.rlt/summary.json, metrics.jsonl, samples.jsonl   per-kind records (eval, training)

Parquet readers skip names that start with `.` (pyarrow, pandas, DuckDB) and
`datasets` skips hidden files and folders too, while a leading `_` is skipped by
pyarrow but opened as data by `datasets` (checked with the pinned versions), so
every record rlt keeps lives under the hidden `.rlt/` folder and
`pd.read_parquet(A)`, `pyarrow.dataset.dataset(A)` and
`datasets.load_dataset("parquet", data_dir=A)` read exactly the rows.

Schema version 1 (older artifacts) kept `manifest.json`, `summary.json` and
`metrics.jsonl` beside the parts, `.rlt-progress.json` and `.lock`; every reader
here falls back to those names, and `rlt data compact A` converts one in place.

Each data file covers a range of part numbers (a part: its own number; a merged
file: the range in its name). A file whose range lies inside a larger file's is
superseded: that is how a compaction cut short by a kill is counted once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from stages.errors import UserError

SCHEMA_VERSION = 2
META_DIR = ".rlt"
MANIFEST = "manifest.json"
PROGRESS = "progress.json"
LOCK = "lock"
SUMMARY = "summary.json"
METRICS = "metrics.jsonl"
SAMPLES = "samples.jsonl"
# Schema version 1 names, beside the data.
LEGACY = {MANIFEST: "manifest.json", PROGRESS: ".rlt-progress.json", LOCK: ".lock",
          SUMMARY: "summary.json", METRICS: "metrics.jsonl", SAMPLES: "samples.jsonl"}

_PART = re.compile(r"^part-(\d+)(-.*)?\.parquet$")
_DATA = re.compile(r"^data-(\d+)-(\d+)\.parquet$")


def meta_path(out: str | Path, name: str) -> Path:
    """Where record `name` (MANIFEST, PROGRESS, LOCK, SUMMARY, METRICS, SAMPLES) is written."""
    return Path(out) / META_DIR / name


def find_meta(out: str | Path, name: str) -> Path | None:
    """The existing file of record `name`: the current layout first, then schema version 1."""
    for p in (meta_path(out, name), Path(out) / LEGACY.get(name, name)):
        if p.is_file():
            return p
    return None


def manifest_path(out: str | Path) -> Path:
    """Path of the manifest a finishing writer writes (`A/.rlt/manifest.json`)."""
    return meta_path(out, MANIFEST)


def metrics_path(out: str | Path) -> Path:
    """Path of a training stage's per-step metrics (`A/.rlt/metrics.jsonl`)."""
    return meta_path(out, METRICS)


def summary_path(out: str | Path) -> Path:
    """Path of an eval artifact's summary (`A/.rlt/summary.json`)."""
    return meta_path(out, SUMMARY)


def read_json(path: Path | None) -> dict | None:
    """A JSON record, None when absent; UserError naming the file when damaged."""
    if path is None:
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise UserError(f"{path} is not valid JSON: the artifact is damaged") from None


def read_manifest(out: str | Path) -> dict | None:
    """The manifest of a complete artifact (either layout), or None."""
    return read_json(find_meta(out, MANIFEST)) if Path(out).is_dir() else None


def read_progress(out: str | Path) -> dict | None:
    """Kind, config hash and inputs of an unfinished run, or None (a damaged one counts as absent)."""
    try:
        return read_json(find_meta(out, PROGRESS)) if Path(out).is_dir() else None
    except UserError:
        return None


def is_artifact_dir(out: str | Path) -> bool:
    """True when rlt wrote (or is writing) this directory, in either layout."""
    p = Path(out)
    return (p / META_DIR).is_dir() or any((p / LEGACY[n]).exists() for n in (MANIFEST, PROGRESS, LOCK))


# ----------------------------------------------------------------------------- data files


def span(path: Path) -> tuple[int, int] | None:
    """(first, last) part number a data file covers; None for any other file."""
    if m := _DATA.match(path.name):
        return int(m.group(1)), int(m.group(2))
    if m := _PART.match(path.name):
        return int(m.group(1)), int(m.group(1))
    return None


def all_data_files(out: str | Path) -> list[Path]:
    """Every part and merged file on disk, superseded ones included, in part order."""
    p = Path(out)
    files = [f for f in p.iterdir() if f.is_file() and span(f)] if p.is_dir() else []
    # widest range first among equal starts; a merged file before a part of the same range
    return sorted(files, key=lambda f: (span(f)[0], -span(f)[1], f.name.startswith("part-"), f.name))


def split_superseded(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """(counted files in part order, files whose rows a wider file already holds)."""
    counted, superseded, end = [], [], -1
    for f in files:
        first, last = span(f)
        if first <= end:
            superseded.append(f)
        else:
            counted.append(f)
            end = last
    return counted, superseded


def data_files(out: str | Path) -> list[Path]:
    """The data files whose rows count, in part order (each row exactly once)."""
    return split_superseded(all_data_files(out))[0]


def next_part_number(out: str | Path) -> int:
    """Number of the next part: after every part number in use."""
    return 1 + max((span(f)[1] for f in all_data_files(out)), default=-1)


# ----------------------------------------------------------------------------- hashing


def sha_files(paths: Iterable[Path]) -> str:
    """sha256 (16 hex) over file names and bytes, in the given order."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def input_hash(path: str | Path) -> str:
    """Hash identifying an input: an artifact's data hash, a file's bytes, or a hub id."""
    p = Path(path)
    manifest = read_manifest(p) if p.is_dir() else None
    if manifest is not None:
        return manifest.get("data_hash", "")
    if p.is_file():
        return sha_files([p])
    if p.is_dir():  # a model directory we did not write: names, sizes and times are enough
        h = hashlib.sha256()
        for f in sorted(p.iterdir()):
            if f.is_file():
                st = f.stat()
                h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
        return h.hexdigest()[:16]
    return hashlib.sha256(str(path).encode()).hexdigest()[:16]


def input_record(path: str) -> dict:
    """What a manifest records of an input: the path as given, its hash and, for a local path, its absolute
    path, so that `rlt inspect` finds it from any working directory (state.recorded_input_hash)."""
    record = {"path": path, "hash": input_hash(path)}
    if Path(path).exists():
        record["absolute"] = str(Path(path).resolve())
    return record


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a hidden temp name in the same folder, then rename into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
