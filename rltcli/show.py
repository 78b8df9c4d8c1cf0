"""How a command's result is shown on the console (stdout): one renderer per command, a default for the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from stages.progress import console


def _table(title: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*map(str, row))
    console().print(table)


def artifact(path: Any) -> None:
    """`<kind> artifact: <path>`, the kind read from the manifest."""
    from stages.artifacts.layout import read_manifest

    manifest = read_manifest(Path(path)) if Path(path).is_dir() else None
    kind = (manifest or {}).get("kind", "output")
    click.echo(f"{kind} artifact: {path}")


def eval_summary(path: Any) -> None:
    from stages.commands.evaluate import read_summary, summary_table

    console().print(summary_table(read_summary(path)))
    artifact(path)


def report(result: dict) -> None:
    rows = [(r["step"], r["model"], r["benchmark"], r["n"], f"{100 * r['accuracy']:.1f}",
             f"{100 * r['ci95'][0]:.1f}-{100 * r['ci95'][1]:.1f}") for r in result["accuracy"]]
    _table("accuracy (95 % interval)", ("eval step", "model", "benchmark", "n", "accuracy %", "95 % CI"), rows)
    click.echo(f"report: {result['path']}")


def pipeline(records: list[dict], plan: bool) -> None:
    rows = [(r["step"], r["command"], r["action"], r["reason"], r.get("seconds", "")) for r in records]
    _table("plan" if plan else "pipeline", ("step", "command", "action", "reason", "seconds"), rows)


def show(command: str, cfg: Any, result: Any) -> None:
    """Print `result` of `command` (nothing for None)."""
    if not result:
        return
    if command == "eval":
        eval_summary(result)
    elif command == "report":
        report(result)
    elif command == "run":
        pipeline(result, cfg.plan)
    elif isinstance(result, (str, Path)):
        artifact(result)
