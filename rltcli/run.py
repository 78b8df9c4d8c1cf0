"""`rlt run [NAME]` (logic in stages/pipeline.py)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rltcli.common import call_stage


def run(name: Annotated[Optional[str], typer.Argument(help="Pipeline name (default: demo).", show_default=False)] = None,
        file: Annotated[Optional[str], typer.Option("--file", help="Pipelines file (default pipelines.yaml).", show_default=False)] = None,
        runs: Annotated[Optional[str], typer.Option("--runs", help="Runs directory (default runs).", show_default=False)] = None,
        start: Annotated[Optional[str], typer.Option("--from", help="Re-run from this step on.", show_default=False)] = None,
        until: Annotated[Optional[str], typer.Option("--until", help="Stop after this step.", show_default=False)] = None,
        force: Annotated[bool, typer.Option("--force", help="Re-run steps even when up to date.")] = False,
        plan: Annotated[bool, typer.Option("--plan", help="Print what would run and why; run nothing.")] = False) -> None:
    """Run a named pipeline of stages; completed, unchanged steps are skipped."""
    records = call_stage("pipeline", "RunConfig", name=name, file=file, runs=runs, start=start, until=until,
                         force=force or None, plan=plan or None)
    if records:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="plan" if plan else "pipeline")
        for col in ("step", "command", "action", "reason", "seconds"):
            table.add_column(col)
        for r in records:
            table.add_row(r["step"], r["command"], r["action"], r["reason"], str(r.get("seconds", "")))
        Console().print(table)
