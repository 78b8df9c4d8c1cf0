"""Helpers of the cluster suite: a real Slurm (scripts/slurm-cluster.sh), pipelines submitted to it, waits.

Tests that need Slurm take the `slurm` fixture: without a running cluster they are skipped with one
reason (shown by `pytest -rs`, as `make test` runs it) saying how to enable them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT

ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "RLT_PROGRESS_SECONDS": "5"}
ENABLE = "no running Slurm cluster: `sudo bash scripts/slurm-cluster.sh up` enables these tests " \
         "(CI: `make test CLUSTER=up`)"


def slurm_running() -> bool:
    if not (shutil.which("sbatch") and shutil.which("squeue") and shutil.which("sinfo")):
        return False
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], check=False, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(s.strip().rstrip("*") in ("idle", "mixed", "allocated", "completing") for s in out.splitlines())


def pytest_collection_modifyitems(config, items):
    """Without a cluster, every test taking `slurm` is skipped with one reason (folded into one -rs line)."""
    wanted = [item for item in items if "slurm" in getattr(item, "fixturenames", ())]
    if wanted and not slurm_running():
        for item in wanted:
            item.add_marker(pytest.mark.skip(reason=ENABLE))


@pytest.fixture(scope="session")
def slurm():
    if not slurm_running():
        pytest.skip(ENABLE)


def rlt(*args, env: dict | None = None, timeout: int = 600, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, as a user (or a cluster job) runs it."""
    return subprocess.run([sys.executable, "-m", "rltcli", *map(str, args)], check=False, capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, **ENV, **(env or {})}, timeout=timeout)


def wait_for(cond: Callable[[], object], timeout: float, what: str, every: float = 0.5):
    """Poll until `cond()` is truthy (returns it); AssertionError naming `what` after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def status(name: str, file: Path, runs: Path) -> dict[str, dict]:
    """`rlt run NAME --status`, in this process: step -> record."""
    from stages.pipelines import run as P

    return {r["step"]: r for r in P.run(P.RunConfig(name=name, file=str(file), runs=str(runs), status=True))}


def wait_done(name: str, file: Path, runs: Path, timeout: float = 420) -> dict[str, dict]:
    """Wait until every step is complete; fails at once (with the records) when one has failed."""
    def done():
        recs = status(name, file, runs)
        failed = {k: r for k, r in recs.items() if r["action"] == "failed"}
        # A requeued task reads as failed (its killed attempt's exit) until Slurm starts it again:
        # a failure is final only once the queue holds nothing that could still run.
        assert not failed or _queue_busy(), "\n".join(f"{k}: {r['reason']}\n{_tail(r.get('log'))}"
                                                  for k, r in failed.items())
        return recs if not failed and all(r["action"] == "complete" for r in recs.values()) else None
    return wait_for(done, timeout, f"pipeline {name} to complete", every=2)


def _tail(log: str | None, lines: int = 30) -> str:
    """The last lines of a job's log, for a failure's message."""
    try:
        return "\n".join(Path(log).read_text(errors="replace").splitlines()[-lines:]) if log else ""
    except OSError as e:
        return f"(log unreadable: {e})"


def _queue_busy() -> bool:
    """Whether Slurm still holds a pending or running job (a squeue that does not answer: it may)."""
    got = subprocess.run(["squeue", "-h", "-t", "PENDING,RUNNING,CONFIGURING,COMPLETING,REQUEUED", "-o", "%i"],
                         check=False, capture_output=True, text=True)
    return got.returncode != 0 or bool(got.stdout.strip())


def queue(job: str) -> tuple[str, str] | None:
    """(state, reason) of one job (an array task as `A_i`) while squeue knows it."""
    out = subprocess.run(["squeue", "-h", "-r", "--states=all", "-o", "%i|%T|%r", "-j", job.split("_")[0]],
                         check=False, capture_output=True, text=True).stdout
    for line in out.splitlines():
        jid, state, reason = line.strip().split("|")
        if jid == job:
            return state, reason
    return None


def start_now(job: str) -> None:
    """A requeued job waits ~2 minutes (Slurm's begin time); the tests let it start at once - in a later
    second than its requeue: slurmd refuses a job started within the second its earlier run's credential
    was revoked ("Killing non-startable batch job: Job credential revoked", exit 1, and its dependants
    cancelled), which Slurm's own begin-time delay avoids."""
    wait_for(lambda: (queue(job) or ("",))[0] == "PENDING", 60, f"job {job} to be pending again")
    time.sleep(2)
    subprocess.run(["scontrol", "update", f"jobid={job}", "starttime=now"], check=True, capture_output=True)


def jobs_of(runs: Path, name: str) -> dict:
    """The Slurm executor's record: step -> {jobs: [{key, id, log}], final: [...]}."""
    import json

    return json.loads((runs / name / ".pipeline" / "slurm.json").read_text())


def cancel_all(runs: Path, name: str) -> None:
    """Cancel whatever this test's pipeline still has queued (a failed test leaves nothing running)."""
    try:
        book = jobs_of(runs, name)
    except (OSError, ValueError):
        return
    ids = sorted({j["id"].split("_")[0] for e in book.values() for j in e["jobs"]})
    if ids:
        subprocess.run(["scancel", *ids], check=False, capture_output=True)


def pids_running(pattern: str) -> list[int]:
    """PIDs of this machine's processes whose command line contains `pattern` (a job's spec path)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if pattern in cmd and "rltcli" in cmd:
                found.append(int(d.name))
    return found
