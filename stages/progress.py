"""Progress bars for long loops (rows/s, tokens/s, ETA) on stderr.

    with progress(total=len(rows), desc="generate") as bar:
        bar.advance(rows=8, tokens=1024)
"""

from __future__ import annotations

import time
from contextlib import contextmanager


class _Bar:
    def __init__(self, prog, task, unit: str):
        self.prog, self.task, self.unit = prog, task, unit
        self.rows = self.tokens = 0
        self.t0 = time.time()

    def advance(self, rows: int = 1, tokens: int = 0) -> None:
        self.rows += rows
        self.tokens += tokens
        dt = max(time.time() - self.t0, 1e-9)
        rate = f"{self.rows / dt:.2f} {self.unit}/s" + (f" {self.tokens / dt:,.0f} tok/s" if self.tokens else "")
        self.prog.update(self.task, advance=rows, rate=rate)


@contextmanager
def progress(total: int, desc: str, unit: str = "rows"):
    """A rich progress bar; yields an object with `advance(rows, tokens)`."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True)) as prog:
        yield _Bar(prog, prog.add_task(desc, total=total, rate=""), unit)
