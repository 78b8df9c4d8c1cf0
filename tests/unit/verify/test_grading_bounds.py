"""Every check is bounded in time and memory, and a stop request ends it at once
(stages/verify/bounded.py through stages/verify/__init__.py's `check` and `check_gold`)."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from stages import interrupt, verify
from stages.verify import bounded

# answers whose value no grader can compute in seconds (hundreds of millions of digits), as models write them
HUGE = ["9^{9^{9}}", "100000000!", "10^{10^{10}}", "2^{2^{2^{2^{2^{2}}}}}"]


@pytest.mark.parametrize("task,answer", [("integer", HUGE[0]), ("integer", HUGE[1]), ("math", HUGE[2]),
                                         ("math", HUGE[1]), ("addition", HUGE[3])])
def test_an_answer_that_cannot_be_graded_in_time_is_wrong_and_marked(task, answer):
    start = time.monotonic()
    got = verify.check(task, f"So the answer is $\\boxed{{{answer}}}$.", "5", timeout=1)
    assert time.monotonic() - start < 1 + 10  # the bound, and the start of a fresh grading process at most
    assert got == verify.Check(extracted=answer, correct=False, ungraded=True)
    # the next answer is graded as usual, by a fresh process
    assert verify.check(task, "\\boxed{5}", "5", timeout=1) == verify.Check(extracted="5", correct=True)


def test_a_stated_answer_is_bounded_too():
    got = verify.check("integer", f"Thus the answer is ${HUGE[0]}$.", "5", timeout=1)
    assert not got.correct and got.ungraded


def test_memory_past_the_bound_is_out_of_bounds():
    with pytest.raises(bounded.OutOfBounds, match="MiB of memory"):
        bounded.call(bytearray, bounded.MEMORY_LIMIT + (1 << 30), seconds=30)
    assert bounded.call(len, "abc", seconds=30) == 3  # the worker survives a MemoryError


def test_time_past_the_bound_kills_the_worker():
    start = time.monotonic()
    with pytest.raises(bounded.OutOfBounds, match="within 1 s"):
        bounded.call(pow, 9, 9 ** 9, seconds=1)  # one C call: no alarm can interrupt it
    assert time.monotonic() - start < 3
    assert bounded.call(pow, 2, 10, seconds=30) == 1024


def test_exceptions_of_the_check_reach_the_caller():
    with pytest.raises(ValueError, match="not an integer"):
        verify.check_gold("integer", "1,2")
    with pytest.raises(ValueError):
        bounded.call(int, "x", seconds=30)


def test_a_stop_request_during_grading_stops_at_once():
    """SIGTERM while an answer is being graded: GracefulStop within a fraction of a second, not after
    the check (here 60 s); the next check starts a fresh grading process."""
    verify.check("integer", "\\boxed{1}", "1")  # the grading process is up
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    with interrupt.handled(), interrupt.graceful():
        start = time.monotonic()
        timer.start()
        with pytest.raises(interrupt.GracefulStop, match="SIGTERM"):
            verify.check("integer", f"\\boxed{{{HUGE[0]}}}", "5", timeout=60)
        assert time.monotonic() - start < 3
    timer.join()
    assert verify.check("integer", "\\boxed{5}", "5").correct
