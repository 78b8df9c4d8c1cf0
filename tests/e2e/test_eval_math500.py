"""MATH-500 as published, evaluated end to end through the CLI with the `openai` engine.

A loopback stub (127.0.0.1, started and stopped here) serves fixed responses
chosen per question, so the whole path is exercised - import, golds parsed
before generation, prompts, the engine, grading, the artifact, the summary and
--regrade - with verdicts known in advance. The golds include MATH-500's three
escaped-dollar answers (`\\$18.90`, `\\$36`, `\\$32,\\!348`).
"""

from __future__ import annotations

import json

import pytest

from stages.artifacts.layout import read_manifest
from stages.artifacts.read import read_rows
from stages.commands.evaluate import read_summary
from tests.conftest import rlt
from tests.stub_openai import OpenAIStub, completion

END = "<|end_of_solution|>"


def _answer(text: str) -> str:
    return f"<|begin_of_thought|>\n\nWorking.<|end_of_thought|>\n\n<|begin_of_solution|>{text}"


# (problem, gold, response served, finish_reason, correct, extracted)
CASES = [
    ("A book costs $\\$18.90$. What is the total?", "\\$18.90", _answer("The total is \\boxed{18.90}."),
     "stop", True, "18.90"),
    ("How many dollars is the ticket?", "\\$36", _answer("\\boxed{\\$36}"), "stop", True, "\\$36"),
    ("What is the final cost?", "\\$32,\\!348", _answer("The final cost is $\\boxed{\\$32,348}$."),
     "stop", True, "\\$32,348"),
    ("Which number is $10^{-30}$?", "10^{-30}", _answer("\\boxed{10^{-31}}"), "stop", False, "10^{-31}"),
    ("What is 3 + 4?", "7", _answer("First \\boxed{8}. That is wrong; correcting, the answer is \\boxed{7}."),
     "stop", True, "7"),
    ("How many cases are there?", "5",
     _answer("Maybe \\boxed{5}? No, that drops a case. Redo: the final answer is \\boxed{"), "length", False, ""),
    ("Convert $(0,3)$ to polar coordinates.", "\\left( 3, \\frac{\\pi}{2} \\right)",
     _answer("\\boxed{(3, \\frac{\\pi}{2})}"), "stop", True, "(3, \\frac{\\pi}{2})"),
    ("What is $\\frac{1}{2}+\\frac{1}{4}$?", "\\frac{3}{4}", _answer("\\boxed{0.75}"), "stop", True, "0.75"),
]


@pytest.fixture()
def stub():
    """Serves the fixed response of the question that the prompt holds."""
    responses = {q: (resp, reason) for q, _, resp, reason, _, _ in CASES}

    def reply(body):
        prompt = body["prompt"] if isinstance(body["prompt"], str) else body["prompt"][0]
        text, reason = next(v for q, v in responses.items() if q in prompt)
        stopped = {"stop_reason": END} if reason == "stop" else {}  # as vLLM reports a matched stop string it left out
        return completion(body, [text], finish_reason=reason, completion_tokens=20, logprobs=None, **stopped)

    with OpenAIStub(reply) as server:
        yield server


@pytest.fixture()
def math500(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps({"problem": q, "solution": f"So $\\boxed{{{g}}}$.", "answer": g,
                                        "subject": "Prealgebra", "level": 2, "unique_id": f"test/p/{i}.json"}) + "\n"
                            for i, (q, g, *_) in enumerate(CASES)))
    return path


def test_math500_layout_end_to_end_with_openai_engine(stub, math500, tiny_student, tmp_path):
    data = tmp_path / "math500"
    rlt("data", "import", math500, "--format", "math500", "--out", data, check=True, timeout=300)
    out = tmp_path / "eval"
    proc = rlt("eval", "--model", tiny_student, "--data", data, "--out", out, "--engine", "openai",
               "--base-url", stub.url, "engine.api_model=stub", "engine.retries=0", check=True, timeout=300)
    assert len(stub.requests) == len(CASES)
    assert all(r["model"] == "stub" and r["temperature"] == 0 for r in stub.requests)
    rows = {r["question"]: r for r in read_rows(out, "eval")}
    for q, gold, _, reason, correct, extracted in CASES:
        row = rows[q]
        assert (row["answer"], row["correct"], row["extracted"]) == (gold, correct, extracted), q
        assert row["truncated"] is (reason == "length")
        assert row["source"] == "math500" and row["task"] == "math"
    summary = read_summary(out)["models"][str(tiny_student)]["benchmarks"]["math500"]
    assert summary["correct"] == sum(c[4] for c in CASES) and summary["n"] == len(CASES)
    assert "math500" in proc.stdout or "math500" in proc.stderr  # the table names the benchmark

    # --regrade re-checks the saved responses: nothing is requested again, verdicts unchanged
    before = read_manifest(out)
    again = rlt("eval", "--regrade", out, check=True, timeout=300)
    assert len(stub.requests) == len(CASES) and "verdicts changed" in again.stderr
    assert {r["question"]: r["correct"] for r in read_rows(out, "eval")} == {c[0]: c[4] for c in CASES}
    assert read_manifest(out)["config_hash"] == before["config_hash"]
