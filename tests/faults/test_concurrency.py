"""Two writers of one output: the second is refused while the first holds the lock (naming its PID);
a lock left by a killed process is detected as stale and taken over, and the run completes."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter

from stages.artifacts.layout import manifest_path, meta_path
from stages.artifacts.read import read_rows
from tests.conftest import rlt
from tests.faults.conftest import ONE_THREAD, manifest, parts, spawn, wait_for


def test_second_writer_refused_then_stale_lock_taken_over(tiny_teacher, synth_train, tmp_path):
    out = tmp_path / "gen"
    args = ["generate", "--teacher", tiny_teacher, "--data", synth_train, "--out", out, "--limit", 24,
            "--batch-size", 2, "--max-new-tokens", 16, "--temperature", 0, "--device", "cpu"]
    first = spawn(args)
    try:
        assert wait_for(lambda: parts(out) >= 1, first), "the first writer ended early"
        os.kill(first.pid, signal.SIGSTOP)  # a stalled writer: alive, holding the lock, making no progress
        assert json.loads(meta_path(out, "lock").read_text())["pid"] == first.pid
        second = rlt(*args, env=ONE_THREAD)
        assert second.returncode == 2, second.stderr[-2000:]
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"being written by process {first.pid}" in lines[0], second.stderr
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.communicate(timeout=120)
    lock = json.loads(meta_path(out, "lock").read_text())  # left behind by the killed writer
    assert lock["pid"] == first.pid and not manifest_path(out).exists()

    third = rlt(*args, check=True, env=ONE_THREAD)
    assert "stale lock" in third.stderr and f"process {first.pid} is gone" in " ".join(third.stderr.split())
    rows = read_rows(out, "traces")
    assert manifest(out)["rows"] == len(rows) == 24 and not meta_path(out, "lock").exists()
    assert max(Counter((r["id"], r["sample"]) for r in rows).values()) == 1
