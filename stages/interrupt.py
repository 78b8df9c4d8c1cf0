"""Graceful stops: Ctrl-C, SIGTERM and the scheduler's warning signal end a stage at its next boundary, resumable.

A scheduler (Slurm at a time limit, a preemption, `scancel`, `scontrol requeue`) sends
SIGTERM, and SIGKILL some seconds later; Slurm also sends a warning signal (SIGUSR2, see
`WARNING`) before a time limit; a user presses Ctrl-C (SIGINT). While a command runs (`handled()`,
entered by `stages.commands.call`), each of these signals asks for a stop:

- inside a `graceful()` region (a stage's compute loop, a training run), the request is only
  recorded; the loop finishes the batch or optimizer step in flight, writes it and raises
  `GracefulStop` at its next boundary (`check()`, `stoppable()`; training:
  `stages.training.stopping`);
- anywhere else (loading a model, compacting) `GracefulStop` is raised at once: nothing
  computed is lost there.

`GracefulStop` is a KeyboardInterrupt, so every path that cleans up after Ctrl-C cleans up
after it, and the CLI ends with exit code 130 ("interrupted; rerun the same command to
resume"). Further SIGTERM and warning signals after the first are ignored (Slurm signals every
process of a job, a launcher may pass the same signal on); a second Ctrl-C stops at once
(KeyboardInterrupt), without waiting for the boundary. So Ctrl-C keeps what SIGTERM keeps: a
training run saves a checkpoint at the next optimizer step. A SIGINT the process was started
ignoring (a `&` job of a non-interactive shell, `nohup`) stays ignored.

    with interrupt.graceful():
        for batch in interrupt.stoppable(batches):   # raises GracefulStop before the next batch
            write(compute(batch))

Processes started by a launcher read the request of the process that started them from a
stop file (`relay(path)` in the parent, `STOP_FILE_ENV` in the children), so a `kill -TERM`
of `rlt distill --launch ddp` stops every rank at the same step.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

WARNING = signal.SIGUSR2  # Slurm's warning before a time limit (`--signal=USR2@90`, submitit's default)
SIGNALS = (signal.SIGTERM, WARNING)
INTERRUPT = signal.SIGINT  # Ctrl-C: a graceful stop too; a second one stops at once
STOP_FILE_ENV = "RLT_STOP_FILE"  # set for launched processes: the file whose presence asks them to stop
EXIT_CODE = 130  # the CLI's exit code for an interrupted command (Ctrl-C and a graceful stop alike)


class GracefulStop(KeyboardInterrupt):
    """A stop asked by a signal, raised at a boundary where everything finished is written."""


_state = {"depth": 0, "regions": 0, "signal": None, "previous": {}, "relays": []}
_lock = threading.Lock()


def _name(signum: int | None) -> str:
    return signal.Signals(signum).name if signum else "a stop request"


def _on_signal(signum, frame) -> None:
    if _state["signal"] is not None:
        if signum == INTERRUPT:  # Ctrl-C again: the user will not wait for the boundary
            raise KeyboardInterrupt
        return  # already stopping
    _state["signal"] = signum
    for path in list(_state["relays"]):
        _touch(path)
    if _state["regions"] == 0:
        raise GracefulStop(f"stopped on {_name(signum)}")
    if os.environ.get("RANK", "0") == "0":  # one line from a multi-process run
        again = "; Ctrl-C again stops at once" if signum == INTERRUPT else ""
        sys.stderr.write(f"rlt: {_name(signum)}: stopping at the next boundary (the work in flight is kept{again})\n")
        sys.stderr.flush()


def _touch(path: str | Path) -> None:
    try:
        Path(path).touch()
    except OSError:
        pass


@contextmanager
def handled():
    """While a command runs: SIGTERM, the warning signal and Ctrl-C ask for a graceful stop (nestable).

    The previous handlers come back afterwards. Outside the main thread nothing is installed; an
    ignored SIGINT stays ignored.
    """
    main = threading.current_thread() is threading.main_thread()
    outer = main and _state["depth"] == 0
    if outer:
        _state["signal"] = None
        wanted = SIGNALS + ((INTERRUPT,) if signal.getsignal(INTERRUPT) is signal.default_int_handler else ())
        _state["previous"] = {s: signal.signal(s, _on_signal) for s in wanted}
    _state["depth"] += main
    try:
        yield
    finally:
        _state["depth"] -= main
        if outer:
            for s, h in _state["previous"].items():
                signal.signal(s, h if h is not None else signal.SIG_DFL)
            _state["previous"], _state["signal"] = {}, None  # the next command starts afresh


@contextmanager
def graceful():
    """A region where a stop request is only recorded: the code inside checks it at its boundaries."""
    with _lock:
        _state["regions"] += 1
    try:
        yield
    finally:
        with _lock:
            _state["regions"] -= 1


def requested() -> str | None:
    """The name of the signal that asked this process (or the process that launched it) to stop, else None."""
    if _state["signal"] is not None:
        return _name(_state["signal"])
    stop_file = os.environ.get(STOP_FILE_ENV)
    if stop_file and os.path.exists(stop_file):
        return "the launching process's stop request"
    return None


def check(what: str = "the work in flight is written") -> None:
    """Raise GracefulStop when a stop was asked (call it where everything finished is written)."""
    why = requested()
    if why:
        raise GracefulStop(f"stopped on {why}: {what}; rerun the same command to resume")


def stoppable(items: Iterable, what: str = "every finished batch is written") -> Iterator:
    """`items` inside a graceful region, with a `check()` before each item (none after the last one: a stop
    asked during the last item lets the stage finish)."""
    with graceful():
        for item in items:
            check(what)
            yield item


@contextmanager
def relay(path: str | Path):
    """While inside, a stop request (or one already asked) also creates `path`: the stop file of launched children.

    Inside, signals are recorded (a graceful region): the children stop at their own boundaries
    and the caller raises afterwards (`check()`).
    """
    path = str(path)
    _state["relays"].append(path)
    if _state["signal"] is not None:
        _touch(path)
    try:
        with graceful():
            yield
    finally:
        _state["relays"].remove(path)
