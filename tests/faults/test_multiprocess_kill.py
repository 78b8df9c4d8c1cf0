"""SIGKILL of a whole `--launch ddp --nproc 2` process group mid-run, then a rerun: it resumes.

The launched workers die with their launcher (they run in sessions of their own),
the dead rank 0's lock is taken over, training resumes from the last checkpoint
and ends at the promised step with each metrics row once.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stages.artifacts.layout import manifest_path, meta_path, metrics_path
from tests.conftest import ROOT, rlt
from tests.faults.conftest import ONE_THREAD, checkpoints

pytestmark = pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the CPU path (no GPU visible)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill_group_after_checkpoint(args: list, out: Path, step: int) -> int:
    """Run `rlt ARGS` in its own process group; SIGKILL the group once checkpoint `step` exists.

    Returns the pid of the rank-0 worker that held the output's lock."""
    proc = subprocess.Popen([sys.executable, "-m", "rltcli", *map(str, args)], cwd=ROOT, start_new_session=True,
                            env={**os.environ, **ONE_THREAD}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 400
        while checkpoints(out) < step:
            assert proc.poll() is None and time.time() < deadline, "no checkpoint before the run ended"
            time.sleep(0.1)
        holder = json.loads(meta_path(out, "lock").read_text())["pid"]
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    return holder


@pytest.mark.slow
@pytest.mark.parametrize("command", ["distill", "teach"])
def test_killed_process_group_resumes_from_its_last_checkpoint(command, tiny_teacher, tiny_student, synth_train,
                                                               tmp_path):
    out = tmp_path / command
    if command == "distill":
        args = ["distill", "--model", tiny_teacher, "--data", synth_train, "--batch-size", 2, "global_batch=4",
                "logging_steps=1", "keep_checkpoints=true"]
    else:
        args = ["teach", "--teacher", tiny_teacher, "--student", tiny_student, "--data", synth_train,
                "prompts_per_step=2", "num_generations=2", "max_new_tokens=12"]
    args += ["--out", out, "--max-steps", 6, "--device", "cpu", "save_steps=2", "--launch", "ddp", "--nproc", 2]
    rank0 = _kill_group_after_checkpoint(args, out, 2)
    deadline = time.time() + 60
    while _alive(rank0):  # the workers follow their launcher
        assert time.time() < deadline, f"rank 0 (pid {rank0}) outlived its killed launcher"
        time.sleep(0.2)
    assert not manifest_path(out).exists() and meta_path(out, "lock").exists()  # the dead rank 0's lock

    done = rlt(*args, env=ONE_THREAD)
    assert done.returncode == 0, done.stderr[-3000:]
    log = " ".join(done.stderr.split())
    assert "taking over stale lock" in log and "resuming from" in log
    manifest = json.loads(manifest_path(out).read_text())
    step = manifest["global_step"] if command == "distill" else manifest["training"]["global_step"]
    assert step == 6 and not meta_path(out, "lock").exists()
    rows = [json.loads(x) for x in metrics_path(out).read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4, 5, 6]  # each row once


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (parents read from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        below = children.get(queue.pop(), [])
        found += below
        queue += below
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["ddp", "zero3"])
def test_kill_9_of_the_rlt_process_alone_ends_the_run_and_the_rerun_ends_where_one_run_ends(
        preset, tiny_teacher, synth_train, tmp_path):
    """The OOM killer or a runner kills one PID: the launcher and every rank go with it (no orphan keeps
    training beside the rerun), and the rerun resumes to the weights of an uninterrupted run."""
    if preset == "zero3" and importlib.util.find_spec("deepspeed") is None:
        pytest.skip("DeepSpeed is not installed (pip install 'rlt[deepspeed]')")
    from tests.e2e.test_zero import max_diff

    def args(out):
        return ["distill", "--model", tiny_teacher, "--data", synth_train, "--out", out, "--batch-size", 2,
                "global_batch=4", "lr=0.01", "--max-steps", 6, "--device", "cpu", "save_steps=2",
                "--launch", preset, "--nproc", 2]

    whole = rlt(*args(tmp_path / "whole"), env=ONE_THREAD, timeout=300)
    assert whole.returncode == 0, whole.stderr[-3000:]
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "rltcli", *map(str, args(out))], cwd=ROOT,
                            env={**os.environ, **ONE_THREAD}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while checkpoints(out) < 2:
            assert proc.poll() is None and time.time() < deadline, "no checkpoint before the run ended"
            time.sleep(0.1)
        tree = _descendants(proc.pid)
        assert len(tree) >= 3  # the launcher and its two ranks
        os.kill(proc.pid, signal.SIGKILL)  # the rlt process alone, not its group
    finally:
        proc.wait()
    deadline = time.time() + 60
    while alive := [p for p in tree if _running(p)]:
        assert time.time() < deadline, f"processes of the killed run still alive: {alive}"
        time.sleep(0.2)
    assert not manifest_path(out).exists()

    done = rlt(*args(out), env=ONE_THREAD, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming from" in " ".join(done.stderr.split())
    assert json.loads(manifest_path(out).read_text())["global_step"] == 6
    assert max_diff(out, tmp_path / "whole") < 1e-6
