"""Row schemas of the artifact kinds, the stable row id, and the schema check readers run.

Explicit pyarrow schema per kind (dataset, traces, eval); absent columns are
written as nulls, extra columns are kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pyarrow as pa

from stages import reward_record
from stages.errors import UserError

KINDS = ("dataset", "traces", "eval", "checkpoint", "metrics")

_S, _I, _F, _B = pa.string(), pa.int64(), pa.float64(), pa.bool_()
SCHEMAS: dict[str, pa.Schema] = {
    "dataset": pa.schema([
        ("id", _S), ("question", _S), ("solution", _S), ("reasoning_trace", _S),
        ("answer", _S), ("task", _S), ("source", _S),
    ]),
    "traces": pa.schema([
        ("id", _S), ("sample", _I), ("question", _S), ("solution", _S), ("explanation", _S),
        ("text", _S), ("answer", _S), ("task", _S), ("teacher", _S), ("student", _S),
        *reward_record.arrow_fields(), ("truncated", _B),  # the reward's columns: stages/reward_record.py
        # provenance: the sampling settings of generated rows and the KL estimator used to score them
        ("temperature", _F), ("top_p", _F), ("kl_estimator", _S),
    ]),
    "eval": pa.schema([
        ("id", _S), ("sample", _I), ("question", _S), ("answer", _S), ("task", _S),
        ("model", _S), ("response", _S), ("extracted", _S), ("correct", _B),
        ("response_tokens", _I), ("truncated", _B),
    ]),
}
# The key that identifies a row of each kind: resume skips, merge collapses and decontamination
# keeps rows by it (an eval row is one model's answer, so the model is part of its key).
ROW_KEYS: dict[str, tuple[str, ...]] = {"dataset": ("id",), "traces": ("id", "sample"), "eval": ("model", "id", "sample")}
# Optional text columns of a benchmark's rows by which eval and report give accuracy per group
# (MATH-500's level and subject, GPQA's high-level domain and subdomain); import keeps them and eval
# copies them into its rows, as extra columns (`to_table` keeps those).
GROUP_COLUMNS = ("level", "subject", "domain", "subdomain")
# Columns a reader insists on (non-null text) per kind. A dataset row without a solution is an
# eval set's row (question + answer): eval reads datasets with EVAL_REQUIRED, training with these.
REQUIRED = {
    "dataset": ("id", "question", "solution"),
    "traces": ("id", "sample", "question", "solution", "explanation", "text"),
    "eval": ("id", "sample", "question", "answer", "response", "extracted", "correct"),
}
# Columns rlt's stages write beside a kind's schema, with their types. Every part of an artifact then
# has one schema, and readers that take one part's schema for all of them (pyarrow datasets, pandas,
# DuckDB) read an artifact still being written even where such a column is null in a whole part.
EXTRA_TYPES: dict[str, pa.DataType] = {
    "source": _S, **dict.fromkeys(GROUP_COLUMNS, _S), "format_ok": _B,
    **dict.fromkeys(("generated_tokens", "explanation_tokens", "solution_tokens", "student_tokens"), _I),
}
EVAL_REQUIRED = ("id", "question")  # a dataset to evaluate: its gold is the answer (or the solution's box)
# Text columns a file may hold as numbers (an AIME answer 70, a row id 3): readers take their text.
NUMBER_TEXT = ("id", "answer")


REPEATED_IDS = ("every row is kept: rows sharing an id (repeated rows, several traces of one question, different "
                "questions given one id) stay separate rows, each after the first renamed <id>#<n>")


def distinct_ids(rows: list[dict], source: str) -> int:
    """The one rule for dataset rows sharing an id (import, generate, distill, teach, eval): REPEATED_IDS.

    In place: the n-th row (n >= 2) of an id gets the id `<id>#<n>` (the next free one if a row already
    has it), so no row is dropped or merged and each is its own question, in order; says so in one
    warning line. Returns how many rows were renamed (the manifest's `repeated_ids`)."""
    import logging

    taken = {str(r["id"]) for r in rows}
    seen: dict[str, int] = {}
    renamed = 0
    for r in rows:
        key = str(r["id"])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 1:
            continue
        n = seen[key]
        while f"{key}#{n}" in taken:
            n += 1
        r["id"] = f"{key}#{n}"
        taken.add(r["id"])
        renamed += 1
    if renamed:
        logging.getLogger(__name__).warning("%s: %d of %d rows share an id with an earlier row; %s", source,
                                            renamed, len(rows), REPEATED_IDS)
    return renamed


def row_id(question: str, solution: str | None) -> str:
    """Stable row id: sha256 of question and solution (so resume and merge work by key); a row
    without a solution (an eval set's) hashes as an empty one."""
    return hashlib.sha256(f"{question}\x00{solution or ''}".encode()).hexdigest()[:16]


def validate(table: pa.Table, kind: str, source: str, required: Iterable[str] | None = None) -> None:
    """Check required columns exist, are text/ints as the schema says, and are non-null."""
    if table.num_rows == 0:
        raise UserError(f"{source} has no rows")
    cols = table.column_names
    need = list(required if required is not None else REQUIRED[kind])
    missing = [c for c in need if c not in cols]
    if missing:
        raise UserError(f"{source}: missing column(s) {', '.join(missing)} (has: {', '.join(cols)})")
    schema = SCHEMAS.get(kind)
    for c in cols:
        if schema is None or c not in schema.names:
            continue
        want, got = schema.field(c).type, table.schema.field(c).type
        if pa.types.is_null(got) and c not in need:
            continue
        ok = (pa.types.is_string(want) and (pa.types.is_string(got) or pa.types.is_large_string(got))) or \
             (pa.types.is_integer(want) and pa.types.is_integer(got)) or \
             (pa.types.is_floating(want) and (pa.types.is_floating(got) or pa.types.is_integer(got))) or \
             (pa.types.is_boolean(want) and pa.types.is_boolean(got))
        if not ok:
            raise UserError(f"{source}: column '{c}' must be {want}, got {got}")
    for c in need:
        col = table.column(c)
        if col.null_count:
            i = col.is_null().to_pylist().index(True)
            why = " (an eval set's row: question + answer; training needs a solution)" \
                if kind == "dataset" and c == "solution" else ""
            raise UserError(f"{source}: row {i} has no value in column '{c}'{why}")


def to_table(rows: list[dict], kind: str) -> pa.Table:
    """Rows -> table with the kind's explicit schema (absent columns null); extra columns kept, typed by
    `EXTRA_TYPES`, else by their values, and text where every value is null (never pyarrow's null type,
    which no reader can unify with a later part's text)."""
    schema = SCHEMAS[kind]
    extra = [k for k in (rows[0] if rows else {}) if k not in schema.names]
    arrays = {n: pa.array([r.get(n) for r in rows], schema.field(n).type) for n in schema.names}
    for k in extra:
        arrays[k] = _extra_array([r.get(k) for r in rows], EXTRA_TYPES.get(k))
    return pa.table(arrays)


def _extra_array(values: list, type_: pa.DataType | None) -> pa.Array:
    if type_ == _S:
        values = [v if v is None or isinstance(v, str) else str(v) for v in values]  # a level given as 1
    array = pa.array(values, type_)
    return array.cast(_S) if pa.types.is_null(array.type) else array
