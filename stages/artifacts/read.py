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
from stages.artifacts.schemas import NUMBER_TEXT, REQUIRED, distinct_ids, row_id, validate
from stages.artifacts.state import require_finished
from stages.errors import UserError

log = logging.getLogger(__name__)
CSV_BLOCK = 1 << 30  # the largest block a CSV file is parsed in (bytes): a row of up to this size reads


def _read_file(p: Path) -> pa.Table:
    """One data file as a table; every column that holds text is read as text (see `_json_table`)."""
    suffix = p.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(p)
        if suffix in (".jsonl", ".json"):
            return _json_table(p, lines=suffix == ".jsonl")
        if suffix == ".csv":
            import csv

            import pyarrow.csv as pcsv

            with open(p, newline="", encoding="utf-8-sig") as f:
                header = next(csv.reader(f), [])
            # every cell as text: pyarrow infers a column's type from its first block and fails on a later
            # block's text; quoted cells may hold newlines (GPQA's CSV): without this, blocks split inside one.
            # A row must fit in one block (pyarrow refuses one that straddles two, 1 MiB by default), and one
            # cell may hold megabytes (a long trace): the file is one block, up to CSV_BLOCK bytes.
            block = max(1 << 20, min(p.stat().st_size + 1, CSV_BLOCK))
            return pcsv.read_csv(p, read_options=pcsv.ReadOptions(block_size=block),
                                 parse_options=pcsv.ParseOptions(newlines_in_values=True),
                                 convert_options=pcsv.ConvertOptions(strings_can_be_null=False,
                                                                     column_types=dict.fromkeys(header, pa.string())))
    except (pa.ArrowException, ValueError, OSError, UnicodeDecodeError) as e:
        if suffix != ".parquet" and (where := _not_utf8(p)):
            raise UserError(f"{p} is not UTF-8 text ({where}): save it as UTF-8 (e.g. iconv -f latin1 -t utf-8 "
                            f"{p.name} > fixed{p.suffix})") from None
        raise UserError(f"cannot read {p}: {str(e).splitlines()[0][:200]}") from None
    raise UserError(f"unsupported file type {p} (use .parquet, .jsonl, .json or .csv)")


def _not_utf8(p: Path) -> str | None:
    """`line N, byte 0xE9` where a text file first stops being UTF-8, None when all of it is UTF-8."""
    with open(p, "rb") as f:
        for number, line in enumerate(f, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as e:
                return f"line {number}, byte {line[e.start]:#04x}"
    return None


def _json_records(p: Path, lines: bool) -> list[dict]:
    """The objects of a JSON Lines file, or of a JSON file holding a list of objects, a mapping of
    columns to lists or to {index: value} (pandas' `to_json`), or JSON Lines under a .json name.
    Numbers with a fraction or exponent are read as `_Fraction` (their text), so it survives exactly."""
    import json

    text = p.read_text(encoding="utf-8-sig")
    if not lines:
        try:
            data = json.loads(text, parse_float=_Fraction)
        except json.JSONDecodeError as e:
            if not e.msg.startswith("Extra data"):
                raise ValueError(f"not JSON ({e})") from None
            lines = True  # JSON Lines named .json (as many hub exports are)
        else:
            if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
                data = [dict(zip(data, vals)) for vals in zip(*data.values())]
            elif isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
                index = list(dict.fromkeys(k for v in data.values() for k in v))
                data = [{c: v.get(k) for c, v in data.items()} for k in index]
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                raise ValueError("a JSON file must hold a list of objects or a mapping of columns")
            return data
    records = []
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                obj = json.loads(line, parse_float=_Fraction)
            except json.JSONDecodeError as e:
                raise ValueError(f"line {i} is not JSON ({e})") from None
            if not isinstance(obj, dict):
                raise ValueError(f"line {i} is not a JSON object")
            records.append(obj)
    return records


class _Fraction(str):
    """A JSON number with a fraction or exponent, kept as the text the file spells it with (`0.30`, `1e-5`)."""


def _json_text(value) -> str:
    """A JSON value in a text column as text: a string as is, a number as written, anything else as JSON."""
    import json

    if isinstance(value, str):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return json.dumps(_plain(value), ensure_ascii=False)


def _plain(value):
    """_Fraction -> float, inside lists and objects too."""
    if isinstance(value, _Fraction):
        return float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _json_table(p: Path, lines: bool) -> pa.Table:
    """JSON (Lines) rows as a table, column by column: a column holding any string is a text column and
    its numbers and other values become their JSON text (`5`, `0.30`, `true`), as pandas would keep them
    as objects; other columns keep their numbers, lists and objects (one that pyarrow cannot type, such
    as a list of mixed values, is read as JSON text)."""
    records = _json_records(p, lines)
    names = list(dict.fromkeys(k for r in records for k in r))
    columns = {}
    for name in names:
        values = [r.get(name) for r in records]
        if any(isinstance(v, str) and not isinstance(v, _Fraction) for v in values):
            columns[name] = pa.array([None if v is None else _json_text(v) for v in values], pa.string())
            continue
        try:
            columns[name] = pa.array([_plain(v) for v in values])
        except (pa.ArrowException, TypeError, OverflowError):
            columns[name] = pa.array([None if v is None else _json_text(v) for v in values], pa.string())
    return pa.table(columns) if columns else pa.table({})


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
    """Read and validate rows of `kind` (`required`: the columns that must hold a value, default
    schemas.REQUIRED[kind]; eval reads datasets with EVAL_REQUIRED); dataset rows without an `id` get the
    stable one, and rows sharing an id are kept apart (`schemas.distinct_ids`); `id` and `answer` stored as
    numbers read as text. UserError naming the column or row."""
    required = None if required is None else tuple(required)
    table = as_text(read_table(path))
    if kind == "dataset" and table.num_rows and ("id" not in table.column_names or table.column("id").null_count):
        need = REQUIRED[kind] if required is None else required
        for c in ("question", "solution"):
            if (c == "question" or c in need) and c not in table.column_names:
                raise UserError(f"{path}: missing column {c} (has: {', '.join(table.column_names)})")
        # a row without an id (no column, or an empty cell) gets the stable one, as `rlt data import` gives it
        questions = table.column("question").to_pylist()
        solutions = table.column("solution").to_pylist() if "solution" in table.column_names else [None] * len(questions)
        given = table.column("id").to_pylist() if "id" in table.column_names else [None] * len(questions)
        ids = [i if i is not None else row_id(str(q), None if s is None else str(s))
               for i, q, s in zip(given, questions, solutions)]
        column = pa.array(ids, pa.string())
        table = table.set_column(table.column_names.index("id"), "id", column) if "id" in table.column_names \
            else table.append_column("id", column)
    validate(table, kind, str(path), required)
    rows = table.to_pylist()
    if kind == "dataset":
        distinct_ids(rows, str(path))
    return rows


def as_text(table: pa.Table) -> pa.Table:
    """`table` with the text columns whose values a file may store as numbers (`schemas.NUMBER_TEXT`: an
    AIME answer `70`, a row id `3`) cast to their text; other columns keep their types (a number where
    a question belongs is still refused by `validate`)."""
    for i, field in enumerate(table.schema):
        if field.name in NUMBER_TEXT and (pa.types.is_integer(field.type) or pa.types.is_floating(field.type)):
            table = table.set_column(i, field.name, table.column(i).cast(pa.string()))
    return table


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


def select_shard(rows: list[dict], spec: str | None) -> list[dict]:
    """Deterministic slice of rows by a hash of their id, so n machines split the work."""
    shard = parse_shard(spec)
    if shard is None:
        return rows
    i, n = shard
    return [r for r in rows if int(hashlib.sha256(str(r["id"]).encode()).hexdigest()[:8], 16) % n == i]
