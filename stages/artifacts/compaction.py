"""Compaction: a finished artifact's small parts merged into few files of bounded size.

    rlt data compact runs/demo/traces-rl     # also converts a schema-version-1 artifact in place

While a stage runs it writes one small part per batch (a kill loses at most one
batch); `ArtifactWriter.finish` then calls `compact`, which streams the parts in
part order into `data-<first>-<last>.parquet` files of about `max_file_mb` each
(one part in memory at a time), so rows keep the order an uninterrupted run
writes. Each merged file is written under a hidden temp name and renamed into
place, and only then are the parts it covers deleted; a file whose part range
lies inside a wider file's is superseded (`layout.split_superseded`), so a kill
at any moment leaves every row counted exactly once: in its parts or in the
merged file, never both, never neither. `drop_superseded` finishes the cleanup.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from stages.artifacts import layout
from stages.errors import UserError

log = logging.getLogger(__name__)

MAX_FILE_MB = 256  # merged file size bound (compressed bytes of the parts it takes)
ROW_GROUP_MB = 64  # rows buffered before a row group is written (the memory bound)


def drop_superseded(out: str | Path) -> int:
    """Delete data files a wider merged file already holds (and stray temp files); returns how many."""
    _, superseded = layout.split_superseded(layout.all_data_files(out))
    for f in superseded:
        f.unlink(missing_ok=True)
    for tmp in Path(out).glob(".data-*.tmp"):
        tmp.unlink(missing_ok=True)
    return len(superseded)


def _groups(files: list[Path], max_bytes: int, remerge: bool) -> list[list[Path]]:
    """Consecutive runs of files whose sizes add up to at most `max_bytes` (a bigger file alone).

    Without `remerge` a merged file stays alone, so the parts left after a kill group as they
    would have in an uninterrupted run.
    """
    groups, size = [[]], 0
    for f in files:
        n = f.stat().st_size
        after_merged = bool(groups[-1]) and groups[-1][-1].name.startswith("data-")
        alone = not remerge and (f.name.startswith("data-") or after_merged)
        if groups[-1] and (alone or size + n > max_bytes):
            groups.append([])
            size = 0
        groups[-1].append(f)
        size += n
    return [g for g in groups if g]


def _schema(files: list[Path]) -> pa.Schema:
    schemas = [pq.read_schema(f).remove_metadata() for f in files]
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except pa.ArrowException as e:
        raise UserError(f"parts of {files[0].parent} disagree on a column type: {e}") from None


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The table with every column of `schema` (absent ones null) in its order and types."""
    cols = [table.column(f.name).cast(f.type) if f.name in table.column_names
            else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def _name(group: list[Path]) -> str:
    return f"data-{layout.span(group[0])[0]:06d}-{layout.span(group[-1])[1]:06d}.parquet"


def _merge(group: list[Path], out: Path) -> Path:
    """Stream `group` (in order) into one merged file; temp name, then rename."""
    final = out / _name(group)
    if len(group) == 1:  # one part: renamed, not rewritten (a rename is atomic)
        os.replace(group[0], final)
        return final
    tmp = out / f".{final.name}.tmp"
    schema, buf, buf_bytes = _schema(group), [], 0
    with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
        for f in group:
            t = _conform(pq.read_table(f), schema)
            buf.append(t)
            buf_bytes += t.nbytes
            if buf_bytes >= ROW_GROUP_MB << 20:
                w.write_table(pa.concat_tables(buf))
                buf, buf_bytes = [], 0
        if buf:
            w.write_table(pa.concat_tables(buf))
    os.replace(tmp, final)  # from here the merged file counts and its parts are superseded
    for f in group:
        f.unlink()
    return final


def compact(out: str | Path, max_file_mb: float | None = None, remerge: bool = False) -> list[Path]:
    """Merge the parts of `out` into files of at most `max_file_mb` MiB (the parts' on-disk size;
    one bigger part stays alone); with `remerge` earlier merged files are merged further too.

    Returns the data files in part order. Safe to rerun at any point (after a kill it finishes
    the job). Raises UserError when two parts disagree on a column's type.
    """
    out = Path(out)
    drop_superseded(out)
    max_bytes = int((max_file_mb or MAX_FILE_MB) * (1 << 20))
    for group in _groups(layout.data_files(out), max_bytes, remerge):
        if len(group) > 1 or group[0].name.startswith("part-"):
            _merge(group, out)
    return layout.data_files(out)


# ----------------------------------------------------------------------------- rlt data compact


