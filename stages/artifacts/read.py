"""Artifacts: reading any artifact or data file, and the names every stage imports.

An artifact is a directory any Parquet reader opens as data (layout: stages/artifacts/layout.py);
stages write one with `ArtifactWriter` (stages/artifacts/writer.py), ask its state with
`output_state`/`require` (stages/artifacts/state.py) and read one with `read_rows`:

    rows = read_rows("runs/demo/data", "dataset")     # validated, UserError naming the bad column/row
    pd.read_parquet("runs/demo/data")                 # the same rows, from any Parquet reader
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from stages.artifacts.layout import (
    data_files,
)
from stages.artifacts.schemas import row_id, validate
from stages.artifacts.state import require_finished
from stages.errors import UserError

log = logging.getLogger(__name__)


def _read_file(p: Path) -> pa.Table:
    suffix = p.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(p)
        if suffix in (".jsonl", ".json"):
            import pandas as pd

            df = pd.read_json(p, lines=suffix == ".jsonl", dtype=False)
            return pa.Table.from_pandas(df, preserve_index=False)
        if suffix == ".csv":
            import pyarrow.csv as pcsv

            # quoted cells may hold newlines (GPQA's CSV): without this, blocks split inside a cell
            return pcsv.read_csv(p, parse_options=pcsv.ParseOptions(newlines_in_values=True),
                                 convert_options=pcsv.ConvertOptions(strings_can_be_null=False))
    except (pa.ArrowException, ValueError, OSError) as e:
        raise UserError(f"cannot read {p}: {str(e).splitlines()[0][:200]}") from None
    raise UserError(f"unsupported file type {p} (use .parquet, .jsonl, .json or .csv)")


def parts_of(path: str | Path) -> list[Path]:
    """The data files of an artifact that count, in part order (parts and merged files)."""
    return data_files(path)


def read_table(path: str | Path) -> pa.Table:
    """Read an artifact directory (must be complete) or a bare Parquet/JSONL/JSON/CSV file."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"input not found: {p}")
    if p.is_file():
        return _read_file(p)
    require_finished(p)
    parts = parts_of(p)
    if not parts:
        return pa.table({})
    try:
        return pa.concat_tables([pq.read_table(x) for x in parts], promote_options="permissive")
    except (pa.ArrowException, OSError) as e:
        raise UserError(f"cannot read {p}: {str(e).splitlines()[0][:200]}") from None


def read_rows(path: str | Path, kind: str, required: Iterable[str] | None = None) -> list[dict]:
    """Read and validate rows of `kind`; dataset rows without an `id` get the stable one."""
    table = read_table(path)
    if kind == "dataset" and "id" not in table.column_names and table.num_rows:
        for c in ("question", "solution"):
            if c not in table.column_names:
                raise UserError(f"{path}: missing column {c} (has: {', '.join(table.column_names)})")
        ids = [row_id(str(q), str(s)) for q, s in zip(table.column("question").to_pylist(),
                                                      table.column("solution").to_pylist())]
        table = table.append_column("id", pa.array(ids, pa.string()))
    validate(table, kind, str(path), required)
    return table.to_pylist()


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """'i/n' (0 <= i < n) -> (i, n); None passes through."""
    if not spec:
        return None
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise UserError(f"--shard must look like i/n, got {spec!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise UserError(f"--shard {spec}: need 0 <= i < n")
    return i, n


SHARD_HELP = "i/n: work on slice i of n of the rows (split by a hash of their id, after --limit)."
LIMIT_HELP = "Use only the first N rows of the data (--shard then splits those N rows)."


def select_rows(rows: list[dict], shard: str | None, limit: int | None) -> list[dict]:
    """The rows a run works on: the first `limit` rows, then shard i/n of those (by a hash of the id).

    `--limit N` cuts the data, `--shard i/n` splits what is left, in every command: the n shards of
    a run with `--limit N` together hold exactly its first N rows.
    """
    return select_shard(rows[:limit], shard)


SHARD_HELP = "i/n: work on slice i of n of the rows (split by a hash of their id, after --limit)."
LIMIT_HELP = "Use only the first N rows of the data (--shard then splits those N rows)."


def select_rows(rows: list[dict], shard: str | None, limit: int | None) -> list[dict]:
    """The rows a run works on: the first `limit` rows, then shard i/n of those (by a hash of the id).

    `--limit N` cuts the data, `--shard i/n` splits what is left, in every command: the n shards of
    a run with `--limit N` together hold exactly its first N rows.
    """
    return select_shard(rows[:limit], shard)


def select_shard(rows: list[dict], spec: str | None) -> list[dict]:
    """Deterministic slice of rows by a hash of their id, so n machines split the work."""
    shard = parse_shard(spec)
    if shard is None:
        return rows
    i, n = shard
    return [r for r in rows if int(hashlib.sha256(str(r["id"]).encode()).hexdigest()[:8], 16) % n == i]
