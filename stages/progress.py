"""One progress display per stage on stderr: done/total, rates, ETA and the stage's key metric.

    with progress(total=len(rows), desc="generate") as bar:
        bar.advance(rows=8, tokens=1024)
        bar.metric("format_ok", 0.93)

    trainer.add_callback(training_progress("distill", metric="loss"))   # steps/s, tokens/s, ETA, loss

On a terminal the bar redraws in place. When stderr is a file or a pipe (a
cluster job's log) a plain line is printed every `RLT_PROGRESS_SECONDS`
seconds (default 30), whether or not a batch finished in between, and once at
the end:

    generate: 120/2,000 rows (6 %), 2.31 rows/s, 1,234 tok/s, elapsed 0:52, eta 13:33
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from contextlib import contextmanager

INTERVAL_ENV = "RLT_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 30.0


def plural(n: float, word: str, many: str | None = None) -> str:
    """`1 row`, `2 rows`, `1,000 rows` (`many` for irregular plurals)."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


def with_article(word: str) -> str:
    """`an eval`, `a traces`, `an unknown`: the word after the article English gives it (by its first letter)."""
    return f"{'an' if str(word)[:1].lower() in 'aeio' else 'a'} {word}"


def clock(seconds: float) -> str:
    """`12 s`, or m:ss / h:mm:ss past a minute."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def interval() -> float:
    """Seconds between plain progress lines (`RLT_PROGRESS_SECONDS`, default 30); ValueError if not a number > 0."""
    text = os.environ.get(INTERVAL_ENV, "")
    try:
        value = float(text) if text.strip() else DEFAULT_INTERVAL
    except ValueError:
        value = math.nan
    if not value > 0:
        raise ValueError(f"{INTERVAL_ENV} must be a number of seconds > 0, got {text!r}")
    return value


class _Bar:
    """Counts of one display: `advance(rows, tokens)`, `metric(name, value)`; drawn by rich or as plain lines."""

    def __init__(self, desc: str, total: int, unit: str, done: int, prog=None, task=None):
        self.desc, self.total, self.unit, self.prog, self.task = desc, total, unit, prog, task
        self.start_done = self.done = done
        self.rows = self.tokens = 0  # advanced in this process (the rates count these)
        self.t0 = time.time()
        self.shown = ""
        self.stopped = False  # ended before its total by an interrupt or an error: the last line says so

    def advance(self, rows: int = 1, tokens: int = 0) -> None:
        self.rows += rows
        self.tokens += tokens
        self.done += rows
        self._refresh(advance=rows)

    def metric(self, name: str, value: float | None) -> None:
        """Show `name=value` (the stage's key metric) next to the rates."""
        self.shown = "" if value is None else f"{name}={value:.4g}"
        self._refresh()

    def rates(self) -> str:
        dt = max(time.time() - self.t0, 1e-9)
        rate = f"{self.rows / dt:.2f} {self.unit}/s" + (f", {self.tokens / dt:,.0f} tok/s" if self.tokens else "")
        return ", ".join(filter(None, (rate, self.shown)))

    def line(self, final: bool = False) -> str:
        """The plain progress line: done/total, share, rates, elapsed time and ETA (or, at the end, the time it
        took, or `stopped after` it when it ended early)."""
        elapsed = time.time() - self.t0
        share = f" ({100 * self.done / self.total:.0f} %)" if self.total else ""
        speed = self.rows / max(elapsed, 1e-9)
        left = max(self.total - self.done, 0)
        when = f"{'stopped after' if self.stopped else 'took'} {clock(elapsed)}" if final else \
            f"elapsed {clock(elapsed)}, eta {clock(left / speed) if speed > 0 else '?'}"
        return f"{self.desc}: {self.done:,}/{self.total:,} {self.unit}{share}, {self.rates()}, {when}"

    def _refresh(self, **kw) -> None:
        if self.prog is not None:
            self.prog.update(self.task, rate=self.rates().replace(", ", " "), **kw)


def console(stderr: bool = False):
    """A rich console on stdout or stderr; lines are not cut at 80 columns when it is a file or a pipe."""
    from rich.console import Console

    con = Console(stderr=stderr)
    if not con.is_terminal:
        con.width = 160
    return con


@contextmanager
def progress(total: int, desc: str, unit: str = "rows", done: int = 0):
    """A progress display on stderr; yields a `_Bar` (`advance(rows, tokens)`, `metric(name, value)`).

    `total` counts everything (`done` of it finished before this process started, e.g. by a run
    that was interrupted). A terminal gets a rich bar; a file or pipe a plain line every
    `interval()` seconds and one at the end.
    """
    con = console(stderr=True)
    if not con.is_terminal:
        with _plain(_Bar(desc, total, unit, done)) as bar:
            yield bar
        return
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
    with Progress(*columns, console=con) as prog:
        yield _Bar(desc, total, unit, done, prog, prog.add_task(desc, total=total, completed=done, rate=""))


@contextmanager
def _plain(bar: _Bar):
    """Print `bar.line()` every `interval()` seconds from a background thread, and a last line at the end."""
    stop = threading.Event()
    every = interval()

    def tick():
        while not stop.wait(every):
            _write(bar.line())

    thread = threading.Thread(target=tick, name=f"progress-{bar.desc}", daemon=True)
    thread.start()
    try:
        yield bar
    except BaseException:
        bar.stopped = True
        raise
    finally:
        stop.set()
        thread.join()
        if bar.rows:
            _write(bar.line(final=True))


def _write(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


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
            if self._bar is not None and state.global_step < state.max_steps:  # a graceful stop ends it early
                self._bar.stopped = True
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
        if getattr(callback, "_bar", None) is not None:  # still open: training ended before on_train_end
            callback._bar.stopped = True
        if hasattr(callback, "close_progress"):
            callback.close_progress()


def display_names(models: list[str]) -> dict[str, str]:
    """Short labels of models in tables (eval's, report's, inspect's): the last path component of each
    when those are unique, else the full names."""
    from pathlib import Path

    short = {m: Path(m.rstrip("/")).name or m for m in models}
    return short if len(set(short.values())) == len(short) else {m: m for m in models}
