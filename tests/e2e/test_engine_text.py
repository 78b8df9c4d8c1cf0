"""Engine text is made valid at the engine boundary (stages/engines/base.py `make_completion`): a lone
UTF-16 surrogate from a server (a pair split across tokens, sent as `\\ud835`) becomes U+FFFD, the row is
kept and counted (`damaged_text` in the manifest, one warning line), and `rlt eval` and `rlt generate`
go on; served by a loopback OpenAI-compatible stub."""

from __future__ import annotations

import json

import pytest

from stages.artifacts.layout import read_manifest
from stages.artifacts.read import read_rows
from stages.engines.base import make_completion, valid_text
from stages.method.views import END_EXPLANATION
from tests.conftest import ONE_THREAD, rlt
from tests.stub_openai import OpenAIStub, completion

SPLIT = "\ud835"  # the high half of 𝐀 (U+1D400): what a server passes on from a pair split across tokens


@pytest.mark.parametrize("text,valid,damaged", [
    (f"x = {SPLIT}", "x = \ufffd", True),
    (f"{SPLIT}\udc00", "\U0001d400", False),   # a pair given as two code points is joined: nothing lost
    (f"a\udc00b{SPLIT}", "a\ufffdb\ufffd", True),
    ("plain \ufffd and 𝐀", "plain \ufffd and 𝐀", False),
    (None, "", False),
])
def test_valid_text(text, valid, damaged):
    assert valid_text(text) == (valid, damaged)
    valid.encode("utf-8")


def test_make_completion_repairs_then_cuts():
    c = make_completion(f"so {SPLIT}<|end|> more", 7, ["<|end|>"], "stop", 16)
    assert (c.text, c.tokens, c.finished, c.damaged) == ("so \ufffd<|end|>", 7, True, True)


def _server(texts):
    """A stub answering prompt i (in arrival order) with texts[i % len(texts)]."""
    def reply(body):
        n = body.get("n", 1)
        text = texts[len(stub.requests) % len(texts)]
        return completion(body, [text] * n, completion_tokens=5, logprobs=None)

    stub = OpenAIStub(reply)
    return stub


def test_eval_keeps_and_counts_damaged_responses(tiny_student, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "question": f"What is {i}?", "answer": str(i),
                                        "task": "integer"}) + "\n" for i in range(4)))
    out = tmp_path / "eval"
    with _server([f"The symbol {SPLIT} aside, \\boxed{{0}}", "\\boxed{1}"]) as stub:
        proc = rlt("eval", "--model", tiny_student, "--data", data, "--out", out, "--engine", "openai",
                   "--base-url", stub.url, "engine.api_model=stub", "engine.retries=0", "engine.concurrency=1",
                   env=ONE_THREAD, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = read_rows(out, "eval")
    assert len(rows) == 4
    damaged = [r for r in rows if "\ufffd" in r["response"]]
    assert len(damaged) == 2 and all(r["extracted"] == "0" for r in damaged)
    assert read_manifest(out)["damaged_text"] == 2
    assert "2 generated texts were not valid Unicode" in proc.stderr and "Traceback" not in proc.stderr


def test_generate_keeps_and_counts_damaged_explanations(tiny_teacher, synth_train, tmp_path):
    out = tmp_path / "traces"
    texts = [f"Carry the {SPLIT} one.{END_EXPLANATION}", f"Add the digits.{END_EXPLANATION}"]
    args = ("generate", "--teacher", tiny_teacher, "--data", synth_train, "--out", out, "--limit", 6,
            "--engine", "openai")
    with _server(texts) as stub:
        proc = rlt(*args, "--base-url", stub.url, "engine.retries=0", "engine.concurrency=1", env=ONE_THREAD)
        assert proc.returncode == 0, proc.stderr[-2000:]
        rows = read_rows(out, "traces")
        assert len(rows) == 6
        assert sum("\ufffd" in r["explanation"] and "\ufffd" in r["text"] for r in rows) == 3
        assert read_manifest(out)["generation"]["damaged_text"] == 3
        assert "3 generated texts were not valid Unicode" in proc.stderr
        again = rlt(*args, "--base-url", stub.url, "engine.retries=0", env=ONE_THREAD)
    assert again.returncode == 0 and "already complete" in again.stderr + again.stdout
