"""`rlt eval` over answers no grader can compute in time (towers of powers, huge factorials), served
by a loopback OpenAI-compatible stub: each is graded wrong within `check_timeout`, counted and
warned about, and a SIGTERM while one is being graded stops the run at once, keeping the answers
graded before it; the rerun resumes (stages/verify/bounded.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from stages.artifacts.layout import read_manifest
from stages.artifacts.read import read_rows
from tests.conftest import ROOT, rlt
from tests.stub_openai import OpenAIStub, completion

# (key, task, gold, response, correct)
ROWS = [
    ("a", "integer", "5", "The sum is $\\boxed{5}$.", True),
    ("b", "integer", "7", "So it is $\\boxed{9^{9^{9}}}$.", False),
    ("c", "math", "3", "Hence $\\boxed{100000000!}$.", False),
    ("d", "integer", "12", "The answer is 12.", True),
]
HANGING = {"b", "c"}


def _stub(body):
    prompt = body["prompt"] if isinstance(body["prompt"], str) else body["prompt"][0]
    text = next(r[3] for r in ROWS if f"[{r[0]}]" in prompt)
    return completion(body, [text], finish_reason="stop", completion_tokens=12, logprobs=None)


def _data(tmp_path, rows=ROWS):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"id": k, "question": f"[{k}] What is it?", "answer": g, "task": t}) + "\n"
                            for k, t, g, *_ in rows))
    return path


def _args(model, data, out, url, timeout):
    return ["eval", "--model", model, "--data", data, "--out", out, "--engine", "openai", "--base-url", url,
            "engine.api_model=stub", "engine.retries=0", "engine.batch_size=4", f"check_timeout={timeout}"]


def test_unbounded_answers_are_wrong_and_counted(tiny_student, tmp_path):
    out = tmp_path / "eval"
    with OpenAIStub(_stub) as stub:
        start = time.monotonic()
        proc = rlt(*_args(tiny_student, _data(tmp_path), out, stub.url, 1), check=True, timeout=300)
    assert time.monotonic() - start < 120
    rows = {r["id"]: r for r in read_rows(out, "eval")}
    assert {k: rows[k]["correct"] for k in rows} == {r[0]: r[4] for r in ROWS}
    assert rows["b"]["extracted"] == "9^{9^{9}}" and rows["c"]["extracted"] == "100000000!"
    assert read_manifest(out)["ungraded"] == len(HANGING)
    assert proc.stderr.count("was not graded within 1 s") == len(HANGING)
    assert "2 answers were not graded" in proc.stderr


@pytest.mark.slow
def test_sigterm_during_grading_stops_at_once_and_resumes(tiny_student, tmp_path):
    rows = [r for r in ROWS if r[0] != "c"]  # one answer that takes its whole bound (12 s)
    out, data = tmp_path / "eval", _data(tmp_path, rows)
    args = [sys.executable, "-m", "rltcli", *map(str, _args(tiny_student, data, out, "URL", 12))]
    with OpenAIStub(_stub) as stub:
        args[args.index("URL")] = stub.url
        proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 240
            while len(stub.requests) < len(rows) and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            time.sleep(3)  # every response is in: "a" is graded, "b" is being graded (12 s allowed)
            assert proc.poll() is None
            stopped = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
        assert proc.returncode == 130, err
        assert time.monotonic() - stopped < 7  # not after the 9 s left of b's bound
        assert "Traceback" not in err and "interrupted; rerun the same command to resume" in err
        assert pq.read_table(out).column("id").to_pylist() == ["a"]  # graded before the stop
        asked = len(stub.requests)
        rlt(*args[3:], check=True, timeout=300)
        assert len(stub.requests) - asked == len(rows) - 1  # the rerun asks for the others only
    assert {r["id"]: r["correct"] for r in read_rows(out, "eval")} == {r[0]: r[4] for r in rows}
