"""One progress display per stage on stderr: done/total, rates, ETA and the stage's key metric.

    with progress(total=len(rows), desc="generate") as bar:
        bar.advance(rows=8, tokens=1024)
        bar.metric("format_ok", 0.93)

    trainer.add_callback(training_progress("distill", metric="loss"))   # steps/s, tokens/s, ETA, loss

On a terminal the bar redraws in place; when stderr is a file or a pipe it is
printed once, in its final state, so logs stay short.
"""

from __future__ import annotations

import time
from contextlib import contextmanager


class _Bar:
    def __init__(self, prog, task, unit: str):
        self.prog, self.task, self.unit = prog, task, unit
        self.rows = self.tokens = 0
        self.t0 = time.time()
        self.shown = ""

    def advance(self, rows: int = 1, tokens: int = 0) -> None:
        self.rows += rows
        self.tokens += tokens
        self._refresh(advance=rows)

    def metric(self, name: str, value: float | None) -> None:
        """Show `name=value` (the stage's key metric) next to the rates."""
        self.shown = "" if value is None else f"{name}={value:.4g}"
        self._refresh()

    def _refresh(self, **kw) -> None:
        dt = max(time.time() - self.t0, 1e-9)
        rate = f"{self.rows / dt:.2f} {self.unit}/s" + (f" {self.tokens / dt:,.0f} tok/s" if self.tokens else "")
        self.prog.update(self.task, rate=" ".join(filter(None, (rate, self.shown))), **kw)


def console(stderr: bool = False):
    """A rich console on stdout or stderr; lines are not cut at 80 columns when it is a file or a pipe."""
    from rich.console import Console

    con = Console(stderr=stderr)
    if not con.is_terminal:
        con.width = 160
    return con


@contextmanager
def progress(total: int, desc: str, unit: str = "rows", done: int = 0):
    """A rich progress bar on stderr; yields a `_Bar` (`advance(rows, tokens)`, `metric(name, value)`)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("[bold]{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    with Progress(*columns, console=console(stderr=True)) as prog:
        yield _Bar(prog, prog.add_task(desc, total=total, completed=done, rate=""), unit)


def training_progress(desc: str, metric: str):
    """A transformers TrainerCallback showing optimizer steps, steps/s, tokens/s, ETA and `metric` from the logs.

    Only the main process draws; it starts at the resumed step.
    """
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def __init__(self):
            self._cm = self._bar = None

        def on_train_begin(self, args, state, control, **kw):
            if state.is_world_process_zero and state.max_steps > 0:
                self._cm = progress(total=state.max_steps, desc=desc, unit="steps", done=state.global_step)
                self._bar, self._step, self._tokens = self._cm.__enter__(), state.global_step, state.num_input_tokens_seen

        def on_step_end(self, args, state, control, **kw):
            if self._bar is not None:
                tokens = state.num_input_tokens_seen or 0
                self._bar.advance(rows=state.global_step - self._step, tokens=max(tokens - (self._tokens or 0), 0))
                self._step, self._tokens = state.global_step, tokens

        def on_log(self, args, state, control, logs=None, **kw):
            if self._bar is not None and logs and metric in logs:
                self._bar.metric(metric, logs[metric])

        def on_train_end(self, args, state, control, **kw):
            self.close_progress()

        def close_progress(self):
            if self._cm is not None:
                self._cm.__exit__(None, None, None)
                self._cm = self._bar = None

    return Progress()


def close_training_progress(trainer) -> None:
    """Close the progress display of `trainer` also when training raised (Ctrl-C, an error).

    `on_train_end` is not called then, and a live display would keep the cursor hidden.
    """
    for callback in trainer.callback_handler.callbacks:
        if hasattr(callback, "close_progress"):
            callback.close_progress()
