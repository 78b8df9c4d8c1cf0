"""A response is cut off when its engine says so (stages/engines/base.py `make_completion`): a server's
`finish_reason: "length"`, vLLM's, the hf engine reaching max_new_tokens without eos; the row is
`truncated` and graded by the rule for cut-off responses (no answer but a closed box). Served by a
loopback OpenAI-compatible stub through `rlt eval --engine openai`, and by a tiny model through the hf engine."""

from __future__ import annotations

import json

import pytest

from stages.artifacts.read import read_rows
from stages.engines.base import make_completion
from tests.conftest import ONE_THREAD, rlt
from tests.stub_openai import OpenAIStub, completion

MAX = 16


@pytest.mark.parametrize("text,tokens,reason,finished", [
    ("So, perhaps the answer is 25. But let me verify", MAX, "length", False),
    ("So, perhaps the answer is 25. But let me verify", 9, "length", False),   # a server's own limit
    ("The answer is 25.", 5, "stop", True),
    ("The answer is 25.", 5, "eos_token", True),    # text-generation-inference's reasons
    ("The answer is 25.", 5, "stop_sequence", True),
    ("The answer is 25.", MAX, None, False),         # no reason reported: all the tokens used
    ("The answer is 25.", 5, None, True),
    ("Done.<|end|> and then more", MAX, "length", True),  # a server that ignored `stop` ran on past it
])
def test_the_engines_report_decides(text, tokens, reason, finished):
    assert make_completion(text, tokens, ["<|end|>"], reason, MAX).finished is finished


# (key, gold, [(text, finish_reason) per sample], completion_tokens, [truncated], [correct])
CASES = [
    ("mid", "25", [("So, perhaps the answer is 25. But let me verify", "length")], MAX, [True], [False]),
    ("box", "25", [("Thus $\\boxed{25}$, and to double-check we", "length")], MAX, [True], [True]),
    ("done", "25", [("So the answer is 25.", "stop")], 6, [False], [True]),
    ("tgi", "25", [("So the answer is 25.", "eos_token")], 6, [False], [True]),
    ("none", "25", [("So the answer is 25 and", None)], MAX, [True], [False]),
]
SAMPLED = ("two", "25", [("The answer is 25.", "stop"), ("The answer is 25 if", "length")], None,
           [False, True], [True, False])


def _stub(cases):
    def reply(body):
        prompt = body["prompt"]
        _, _, samples, tokens, *_ = next(c for c in cases if f"[{c[0]}]" in prompt)
        samples = samples * body.get("n", 1) if len(samples) == 1 else samples  # distinct samples: one request
        payload = completion(body, [t for t, _ in samples], completion_tokens=tokens or MAX, logprobs=None)
        for choice, (_, reason) in zip(payload["choices"], samples):
            choice["finish_reason"] = reason
        return payload

    return OpenAIStub(reply)


def _data(tmp_path, cases):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"id": c[0], "question": f"[{c[0]}] What is it?", "answer": c[1],
                                        "task": "integer"}) + "\n" for c in cases))
    return path


def _eval(model, data, out, url, *extra):
    proc = rlt("eval", "--model", model, "--data", data, "--out", out, "--engine", "openai", "--base-url", url,
               "engine.api_model=stub", "engine.retries=0", "--max-new-tokens", MAX, *extra, env=ONE_THREAD,
               timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {(r["id"], r["sample"]): r for r in read_rows(out, "eval")}


def test_a_server_reporting_length_cuts_the_response_off(tiny_student, tmp_path):
    with _stub(CASES) as stub:
        rows = _eval(tiny_student, _data(tmp_path, CASES), tmp_path / "eval", stub.url)
    for key, _, _, _, truncated, correct in CASES:
        r = rows[(key, 0)]
        assert (r["truncated"], r["correct"]) == (truncated[0], correct[0]), key
    assert rows[("mid", 0)]["extracted"] == ""  # no answer read from a cut-off sentence


def test_each_sample_has_its_own_report(tiny_student, tmp_path):
    with _stub([SAMPLED]) as stub:
        rows = _eval(tiny_student, _data(tmp_path, [SAMPLED]), tmp_path / "eval", stub.url,
                     "--num-generations", 2, "--temperature", 0.7)
        assert len(stub.requests) == 1 and stub.requests[0]["n"] == 2
    got = sorted((rows[("two", k)]["truncated"], rows[("two", k)]["correct"]) for k in (0, 1))
    assert got == sorted(zip(SAMPLED[4], SAMPLED[5]))


def test_the_hf_engine_reports_its_token_limit(tiny_student, tmp_path):
    data = _data(tmp_path, CASES[:2])
    out = tmp_path / "eval"
    proc = rlt("eval", "--model", tiny_student, "--data", data, "--out", out, "--max-new-tokens", 2,
               "--device", "cpu", env=ONE_THREAD, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = read_rows(out, "eval")
    assert all(r["response_tokens"] == 2 for r in rows if r["truncated"])  # cut at the limit, not before
    assert any(r["truncated"] for r in rows)
    assert all(r["correct"] is False and r["extracted"] == "" for r in rows if r["truncated"])
