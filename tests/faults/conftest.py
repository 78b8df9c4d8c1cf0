"""Helpers of the fault suite: run the CLI, kill it at seeded moments, snapshot and compare artifacts."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stages.artifacts.layout import manifest_path
from tests.conftest import ROOT

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # tiny models on a shared CPU
TIMING = ("second", "time", "created")  # column names that may differ between two identical runs


def spawn(args, env: dict | None = None) -> subprocess.Popen:
    """Start `rlt ARGS` in the background (stderr captured to a pipe-less temp file by the caller)."""
    _default_sigint()
    return subprocess.Popen([sys.executable, "-m", "rltcli", *map(str, args)], cwd=ROOT,
                            env={**os.environ, **ONE_THREAD, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _default_sigint() -> None:
    # A shell running the suite in the background starts it with SIGINT ignored, children inherit that, and
    # Python keeps an ignored SIGINT ignored. A handled SIGINT is reset to the default at exec, so handle it
    # here: the command then gets Ctrl-C as in a terminal, and the Ctrl-C tests test Ctrl-C.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def parts(out: Path) -> int:
    return len(list(Path(out).glob("part-*.parquet")))


def checkpoints(out: Path) -> int:
    """Highest step of a complete intermediate checkpoint (trainer_state.json is written last)."""
    steps = [int(d.name.split("-")[-1]) for d in (Path(out) / "checkpoints").glob("checkpoint-*")
             if (d / "trainer_state.json").is_file()]
    return max(steps, default=0)


def wait_for(cond: Callable[[], bool], proc: subprocess.Popen, timeout: float = 300) -> bool:
    """Poll until `cond()` or the process ends; True when `cond()` held while it still ran."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return proc.poll() is None
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    raise AssertionError("timed out waiting for progress")


def kill_loop(args, out: Path, progress: Callable[[Path], int], rng: random.Random, kills: int,
              max_delay: float, sig: int = signal.SIGKILL, env: dict | None = None) -> int:
    """Start the command, SIGKILL it after 1-2 more units of progress plus a seeded random delay; repeat.

    Returns how many kills landed on a live, unfinished run.
    """
    landed = 0
    for _ in range(kills + 3):
        if landed == kills or manifest_path(Path(out)).exists():
            break
        proc, killed = spawn(args, env), False
        try:
            start, step = progress(out), rng.randint(1, 2)
            alive = wait_for(lambda start=start, step=step: progress(out) >= start + step, proc)
            if alive:
                time.sleep(rng.uniform(0, max_delay))
            if proc.poll() is None:
                os.kill(proc.pid, sig)
                killed = True
        finally:
            _, err = proc.communicate(timeout=120)
        # a kill counts only when it cut a live run short (not one already past its manifest)
        landed += killed and proc.returncode == -sig and not manifest_path(Path(out)).exists()
        assert proc.returncode in (0, -sig), f"rlt {args[0]} failed ({proc.returncode}):\n{err[-3000:]}"
    return landed


def comparable(rows: list[dict], key: tuple[str, ...]) -> list[dict]:
    """Rows sorted by key, without timing-like columns."""
    keep = [{k: v for k, v in r.items() if not any(t in k for t in TIMING)} for r in rows]
    return sorted(keep, key=lambda r: tuple(r[k] for k in key))


def manifest(out: Path) -> dict:
    return json.loads(manifest_path(Path(out)).read_text())


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative path -> bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


@pytest.fixture
def rng(request) -> random.Random:
    """A RNG seeded by the test's name: kill moments are random but reproducible."""
    return random.Random(request.node.name)
