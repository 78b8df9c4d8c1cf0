"""Grading within bounds: every check runs in a worker process that is killed past its time.

math-verify bounds its parses with `signal.alarm`, which cannot interrupt a computation
inside one C call (Python's `9**9**9`, sympy's `factorial(10**8)`), and sympy may take any
amount of memory, so one answer such as `\\boxed{9^{9^{9}}}` could hang the grader and
every signal sent to it. `call(fn, *args, seconds=s)` therefore runs `fn` in a long-lived
worker process (a Python interpreter with math-verify imported, talking over a socket
with multiprocessing's Connection) and waits for it:

- after `s` seconds of wall time the worker is killed (SIGKILL) and replaced: `OutOfBounds`;
- the worker's address space is limited to MEMORY_LIMIT bytes (RLIMIT_AS), so a computation
  that needs more fails with MemoryError in the worker: `OutOfBounds` too;
- its CPU time per call is limited to `s` + 1 s (RLIMIT_CPU): a worker whose caller died
  ends by itself;
- while the caller waits, a stop request (SIGTERM, the scheduler's warning;
  stages/interrupt.py) kills the worker and raises `GracefulStop` at once, and Ctrl-C
  raises KeyboardInterrupt at once.

The worker grades in its own main thread (where math-verify's alarm works), so callers may
be threads; one worker per calling process, one call at a time. `verify.check` and
`verify.check_gold` turn `OutOfBounds` into a wrong verdict (`Check.ungraded`) and an
unreadable gold.
"""

from __future__ import annotations

import atexit
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from stages import interrupt

MEMORY_LIMIT = 2 << 30  # bytes of address space the grading worker may use (it starts at about 60 MiB)
START_TIMEOUT = 120  # seconds a new worker may take to start (not counted against any answer)
_POLL = 0.05  # seconds between looks at a stop request while waiting for the worker
_lock = threading.Lock()
_worker: dict = {}  # "process", "conn" of the running worker


class OutOfBounds(Exception):
    """A call did not finish within its time or memory bound (the message says which)."""


def call(fn: Callable, *args, seconds: float):
    """`fn(*args)` in the grading worker, within `seconds` of wall time and MEMORY_LIMIT bytes.

    `fn` must be a module-level function (it is pickled by name), its arguments and result
    picklable. An exception `fn` raises is raised here. Raises OutOfBounds past either bound,
    GracefulStop on a stop request and KeyboardInterrupt on Ctrl-C while waiting (the worker is
    then killed)."""
    with _lock:
        conn = _connection()
        try:
            conn.send((fn, args, seconds))
            deadline = time.monotonic() + seconds
            while not conn.poll(max(0.0, min(_POLL, deadline - time.monotonic()))):
                interrupt.check("grading stopped; the answers graded before it are kept")
                if time.monotonic() >= deadline:
                    raise OutOfBounds(f"not graded within {seconds:g} s")
            status, value = conn.recv()
        except (EOFError, OSError):  # the worker died: its CPU limit, the kernel's OOM killer
            _stop()
            interrupt.check("grading stopped; the answers graded before it are kept")
            raise OutOfBounds("the grading process died") from None
        except BaseException:  # out of time, a stop request, Ctrl-C: the worker is mid-call
            _stop()
            raise
    if status == "memory":
        raise OutOfBounds(f"not graded within {MEMORY_LIMIT >> 20} MiB of memory")
    if status == "raise":
        raise value
    return value


def _connection():
    """The running worker's end of its socket, starting a worker when none is running.

    The worker is a fresh interpreter (`main()` below; not multiprocessing's
    spawn or forkserver, which would run the caller's main script again in it)."""
    if _worker and _worker["process"].poll() is None:
        return _worker["conn"]
    _stop()
    ours, theirs = socket.socketpair()
    root = str(Path(__file__).resolve().parents[2])  # the folder holding `stages`
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen([sys.executable, "-c", "import sys; from stages.verify.bounded import main; main()",
                                str(theirs.fileno())],
                               pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=env)
    theirs.close()
    conn = Connection(ours.detach())
    _worker.update(process=process, conn=conn)
    try:
        if not conn.poll(START_TIMEOUT):
            raise TimeoutError(f"not ready within {START_TIMEOUT} s")
        conn.recv()  # "ready": math-verify and sympy are imported
    except (EOFError, OSError) as e:
        _stop()
        raise RuntimeError(f"the grading process did not start ({e or 'it exited'}); see its lines above") from None
    return conn


def _stop() -> None:
    """Kill the worker (a call in flight is abandoned); the next call starts another."""
    process, conn = _worker.pop("process", None), _worker.pop("conn", None)
    if conn is not None:
        conn.close()
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()


atexit.register(_stop)


# ----------------------------------------------------------------------------- the worker


def _serve(conn) -> None:
    """The worker's loop: one (fn, args, seconds) at a time, answered with (status, value)."""
    import math_verify  # noqa: F401 - imported before "ready", so no answer pays for it

    # The caller decides about stops: a signal sent to every process of a job leaves this one alone.
    for s in (signal.SIGINT, *interrupt.SIGNALS):
        signal.signal(s, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, resource.getrlimit(resource.RLIMIT_AS)[1]))
    conn.send("ready")
    while True:
        try:
            fn, args, seconds = conn.recv()
        except (EOFError, OSError):  # the caller is gone
            return
        _limit_cpu(seconds + 1)
        try:
            answer = ("ok", fn(*args))
        except MemoryError:
            answer = ("memory", None)
        except Exception as e:  # noqa: BLE001 - raised again in the caller
            answer = ("raise", e)
        try:
            conn.send(answer)
        except Exception as e:  # noqa: BLE001 - an exception that does not pickle
            conn.send(("raise", RuntimeError(f"grading failed: {e!r}")))


def _limit_cpu(seconds: float) -> None:
    """SIGXCPU (which ends the process) once this call has used `seconds` more of CPU time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    soft = math.ceil(usage.ru_utime + usage.ru_stime + seconds)
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def main() -> None:
    """The worker process's entry: `python -c ... FD`, FD its end of the socket."""
    _serve(Connection(int(sys.argv[1])))
