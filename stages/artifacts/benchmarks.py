"""Raw benchmark files as published: which `rlt data import` command reads one.

A stage that reads datasets (`rlt eval`, `rlt data decontaminate --against`) names
the import command when it is given a benchmark file as released instead of an
imported dataset (MATH-500's `problem`, GPQA's `Question`, a Stratos
`conversations` file), so the user is told what to run, not only which column is
missing. The layouts are those of stages/sources/layouts.py.

    import_hint("MATH-500/test.jsonl", ["problem", "solution", "answer", "subject", "level", "unique_id"])
    # -> "it is a raw MATH-500 file: import it first with `rlt data import MATH-500/test.jsonl
    #     --format math500 --out DIR` and pass DIR"
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from stages.errors import UserError

_MATH500_MARKS = {"unique_id", "subject", "level", "type"}


def raw_format(columns: Iterable[str], path: str | Path = "") -> tuple[str, str] | None:
    """(import format, what the file is) of a file with these columns that is no dataset, or None."""
    cols = {c.lower() for c in columns}
    if "question" in cols and "solution" in cols:
        return None
    if {"question", "correct answer", "incorrect answer 1"} <= cols:
        return "gpqa", "GPQA (released CSV)"
    if "conversations" in cols:
        return "stratos", "Bespoke-Stratos (conversations)"
    if "problem" in cols and "answer" in cols:
        if cols & _MATH500_MARKS:
            return "math500", "MATH-500"
        if "aime" in str(path).lower() or "url" in cols:
            return "aime", "AIME"
        return "math500", "MATH-style (problem, answer)"
    return None


def import_hint(path: str | Path, columns: Iterable[str]) -> str | None:
    """The sentence naming the import command of a raw benchmark file, or None when it is none."""
    columns = list(columns)
    found = raw_format(columns, path)
    if found is not None:
        fmt, what = found
        return (f"it is a raw {what} file: import it first with `rlt data import {path} --format {fmt} "
                "--out DIR` and pass DIR")
    lower = {c.lower(): c for c in columns}
    if "question" not in lower:
        source = next((lower[c] for c in ("problem", "prompt", "input", "query") if c in lower), "COLUMN")
        return (f"import it first with `rlt data import {path} --format columns --map question={source} "
                "--out DIR` (--map answer=COLUMN for the gold) and pass DIR")
    return None


def with_import_hint(error: UserError, path: str | Path) -> UserError:
    """`error` (a dataset that could not be read) with the import command of `path` added when it is a raw
    benchmark file; `error` itself otherwise."""
    from stages.artifacts.read import read_table

    try:
        columns = read_table(path).column_names
    except UserError:
        return error
    hint = import_hint(path, columns)
    return UserError(f"{error}; {hint}") if hint else error
