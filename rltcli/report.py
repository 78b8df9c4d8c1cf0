"""`rlt report RUN... --out D` (logic in stages/report.py)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rltcli.common import call_stage


def report(runs: Annotated[list[str], typer.Argument(help="Run directories (runs/NAME) or step artifacts.")],
           out: Annotated[Optional[str], typer.Option("--out", help="Output directory for report.md and PNGs.", show_default=False)] = None) -> None:
    """Markdown report with plots: teacher reward per step, loss curves, accuracy with intervals."""
    result = call_stage("report", "ReportConfig", runs=runs, out=out)
    if result:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="accuracy (95 % interval)")
        for col in ("eval step", "model", "benchmark", "n", "accuracy %", "95 % CI"):
            table.add_column(col)
        for r in result["accuracy"]:
            table.add_row(r["step"], r["model"], r["benchmark"], str(r["n"]), f"{100 * r['accuracy']:.1f}",
                          f"{100 * r['ci95'][0]:.1f}-{100 * r['ci95'][1]:.1f}")
        Console().print(table)
        typer.echo(f"report: {result['path']}")
