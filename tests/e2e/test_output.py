"""What a person (and a cluster log) reads: progress lines during a long run, one set of lines from a 2-process run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.conftest import ONE_THREAD, ROOT, rlt


def test_a_long_run_off_a_terminal_prints_progress_before_its_end(tiny_teacher, synth_train, tmp_path):
    """stderr to a pipe: plain lines at RLT_PROGRESS_SECONDS, each with rate and ETA, while the run still runs."""
    out = tmp_path / "traces"
    env = {**os.environ, **ONE_THREAD, "RLT_PROGRESS_SECONDS": "0.3"}
    proc = subprocess.Popen([sys.executable, "-m", "rltcli", "generate", "--teacher", str(tiny_teacher),
                             "--data", str(synth_train), "--out", str(out), "--limit", "24", "--batch-size", "1",
                             "--max-new-tokens", "24", "--device", "cpu"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen_while_running = []
    try:
        for line in proc.stderr:
            if line.startswith("generate: ") and proc.poll() is None:
                seen_while_running.append((time.time(), line.strip()))
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    partial = [line for _, line in seen_while_running if not line.startswith("generate: 24/24")]
    assert partial, seen_while_running  # progress showed before the end, not once at the end
    assert all("explanations/s" in line and "eta " in line for line in partial), partial
    assert seen_while_running[-1][1].startswith("generate: 24/24 explanations (100 %)")


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the CPU path (no GPU visible)")
def test_a_two_process_run_prints_one_set_of_lines(tiny_teacher, synth_train, tmp_path):
    """`--launch ddp --nproc 2`: each line once, from rank 0; no internal launch line; the result once."""
    out = tmp_path / "o"
    proc = rlt("distill", "--model", tiny_teacher, "--data", synth_train, "--out", out, "--role", "teacher",
               "--preset", "tiny", "--max-steps", 3, "--batch-size", 4, "--launch", "ddp", "--nproc", 2,
               env={**ONE_THREAD, "RLT_PROGRESS_SECONDS": "600"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    stdout, stderr = proc.stdout.splitlines(), proc.stderr.splitlines()
    assert stdout == [f"checkpoint artifact: {out}"]
    repeated = [line for line, n in Counter(stderr).items() if n > 1]
    assert not repeated, proc.stderr
    assert not [line for line in stderr if "launching" in line or "rlt-launch-" in line or "Traceback" in line]
    assert [line for line in stderr if line.startswith("distill (teacher): 3/3 steps")], proc.stderr
    assert [line for line in stderr if line.startswith("trained 3 steps")], proc.stderr
    # the lines a user reads: the CPU note, one progress line, the result line; nothing per rank
    assert len(stderr) <= 4, proc.stderr
