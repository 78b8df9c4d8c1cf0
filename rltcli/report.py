"""`rlt report RUN... --out D` (logic in stages/report.py)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rltcli.common import call_stage


def report(runs: Annotated[list[str], typer.Argument(help="Run directories (runs/NAME) or step artifacts.")],
           out: Annotated[Optional[str], typer.Option("--out", help="Output directory for report.md and PNGs.", show_default=False)] = None) -> None:
    """Markdown report with plots: teacher reward per step, loss curves, accuracy with intervals."""
    path = call_stage("report", "ReportConfig", runs=runs, out=out)
    if path:
        typer.echo(f"report: {path}")
