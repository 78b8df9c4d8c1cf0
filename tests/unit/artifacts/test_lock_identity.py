"""A lock names its writer for sure (stages/artifacts/state.py `process_identity`, `holder_running`): a
dead writer's lock is taken over even when its process id now belongs to an unrelated live process (a
container restart, a requeue on the same node), and a live writer's lock is respected."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from stages.artifacts import layout
from stages.artifacts.state import holder_running, lock_holder, output_state, process_identity
from stages.artifacts.writer import ArtifactWriter, acquire_lock
from stages.errors import UserError
from tests.conftest import ROOT


@dataclass
class Cfg:
    n: int = 1


ROWS = [{"id": str(i), "question": f"q{i}", "solution": f"s{i}"} for i in range(3)]


@pytest.fixture()
def live():
    """An unrelated live process (it never touches any lock)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def _interrupted(out):
    """An interrupted dataset artifact: parts, no manifest, no lock."""
    with ArtifactWriter(out, "dataset", Cfg()) as w:
        w.write(ROWS[:2])
    assert not layout.meta_path(out, layout.LOCK).exists()
    return out


def _lock(out, record: dict):
    layout.meta_path(out, layout.LOCK).write_text(json.dumps(record))


def _dead_identity(later_than: subprocess.Popen) -> dict:
    """The identity a writer recorded before it died (a real process, now gone), from another clock tick than
    `later_than`'s start: a process reusing a PID was never started in the same tick as the one that held it,
    while two processes this test starts within 10 ms would share their start time."""
    before = process_identity(later_than.pid)["start"]
    code = "import json; from stages.artifacts.state import process_identity; print(json.dumps(process_identity()))"
    while True:
        out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                        cwd=ROOT).stdout)
        if out["start"] != before:
            return out
        time.sleep(0.02)


def test_identity_is_pid_host_boot_and_start():
    me = process_identity()
    assert me["pid"] == os.getpid() and me["host"] == socket.gethostname()
    assert me["boot_id"] and isinstance(me["start"], int)
    assert holder_running(me) is True


def test_a_dead_writers_lock_whose_pid_was_reused_is_taken_over(tmp_path, live, caplog):
    out = _interrupted(tmp_path / "a")
    reused = {**_dead_identity(later_than=live), "pid": live.pid}  # a dead writer's record; its PID now runs another
    _lock(out, reused)
    assert holder_running(reused) is False and lock_holder(out) is None
    assert output_state(out).status == "interrupted" and output_state(out).writer is None
    with ArtifactWriter(out, "dataset", Cfg()) as w:  # resumes: not refused for the unrelated process
        w.write(ROWS)
        w.finish()
    assert "taking over stale lock" in caplog.text
    assert output_state(out).complete and live.poll() is None  # the unrelated process is left alone


def test_a_lock_from_before_the_machine_started_is_taken_over(tmp_path, live):
    out = _interrupted(tmp_path / "a")
    _lock(out, {**process_identity(live.pid), "boot_id": "00000000-0000-0000-0000-000000000000"})
    assert lock_holder(out) is None
    acquire_lock(out).unlink()


def test_a_live_writer_is_respected_and_named(tmp_path, live):
    out = _interrupted(tmp_path / "a")
    _lock(out, process_identity(live.pid))  # as if `live` had written it
    assert lock_holder(out) == live.pid
    assert f"being written by process {live.pid}" in output_state(out).describe()
    with pytest.raises(UserError, match=f"being written by process {live.pid}"):
        acquire_lock(out)


def test_an_old_lock_without_start_time_falls_back_on_the_pid(tmp_path, live):
    out = _interrupted(tmp_path / "a")
    _lock(out, {"pid": live.pid, "host": socket.gethostname(), "time": 0})
    with pytest.raises(UserError, match="being written"):
        acquire_lock(out)
    live.kill()
    live.wait()
    acquire_lock(out).unlink()  # its process is gone: taken over


def test_a_lock_of_another_host_is_not_guessed_at(tmp_path):
    out = _interrupted(tmp_path / "a")
    _lock(out, {**process_identity(), "host": "elsewhere"})
    assert holder_running({**process_identity(), "host": "elsewhere"}) is None
    with pytest.raises(UserError, match="on host elsewhere"):
        acquire_lock(out)
