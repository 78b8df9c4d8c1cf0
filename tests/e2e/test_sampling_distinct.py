"""The k samples of a prompt are k draws, for every engine and for generate and eval's pass@k.

A loopback OpenAI-compatible stub plays a server that derives every choice from the request's
seed (all n choices identical, as reported for SGLang); another plays a legitimately
low-entropy model (the same text whatever the seed), which must not be mistaken for it.
"""

from __future__ import annotations

import logging

import pytest

from stages.artifacts.read import read_rows
from stages.engines import make_engine
from stages.engines.base import EngineConfig
from stages.method.views import END_EXPLANATION, END_SOLUTION
from tests.conftest import ONE_THREAD, rlt
from tests.stub_openai import OpenAIStub, completion


def choices_from(text):
    """A reply whose n choices are `text(seed, index, body)`, seed 0 when greedy."""

    def reply(body: dict) -> dict:
        seed = body.get("seed", 0) if body["temperature"] > 0 else 0
        n = body.get("n", 1)
        return completion(body, [text(seed, i, body) for i in range(n)], completion_tokens=2 * n)

    return reply


def _stop(body) -> str:
    return (body.get("stop") or [""])[0]


SHARED_SEED = lambda seed, i, body: f"draw {seed} of one seed.{_stop(body)}"
LOW_ENTROPY = lambda seed, i, body: f"always the same.{_stop(body)}"


@pytest.fixture
def server():
    """The stub, serving SHARED_SEED unless a test sets `server.reply`; `server.requests` records every request."""
    with OpenAIStub(choices_from(SHARED_SEED)) as stub:
        yield stub


def _shared_seed_warnings(records, url):
    return [r for r in records if "identical choices" in r.getMessage() and url in r.getMessage()]


def test_a_server_sharing_one_seed_across_n_gets_one_request_per_sample(server, tiny_teacher, caplog):
    url = server.url
    engine = make_engine(EngineConfig(name="openai", base_url=url, concurrency=2), str(tiny_teacher))
    with caplog.at_level(logging.WARNING):
        out = engine.generate(["a", "b", "c"], n=4, max_new_tokens=8, temperature=0.7, seed=3,
                              stop=[END_EXPLANATION])
        again = engine.generate(["d"], n=3, max_new_tokens=8, temperature=0.7, seed=3, stop=[END_EXPLANATION])
    assert all(len({c.text for c in cs}) == len(cs) for cs in out + again)  # k draws per prompt
    assert len(_shared_seed_warnings(caplog.records, url)) == 1 and engine.n_supported is False
    later = [b for b in server.requests if b["prompt"] == "d"]
    assert len(later) == 3 and all("n" not in b for b in later)  # known now: one seeded request per sample
    assert len({b["seed"] for b in later}) == 3


def test_identical_draws_of_a_low_entropy_model_are_not_taken_for_a_shared_seed(server, tiny_teacher, caplog):
    url = server.url
    server.reply = choices_from(LOW_ENTROPY)
    engine = make_engine(EngineConfig(name="openai", base_url=url), str(tiny_teacher))
    with caplog.at_level(logging.WARNING):
        out = engine.generate(["a"], n=3, max_new_tokens=8, temperature=0.7, seed=1, stop=[END_EXPLANATION])
        engine.generate(["b"], n=3, max_new_tokens=8, temperature=0.7, seed=1, stop=[END_EXPLANATION])
    assert [len(cs) for cs in out] == [3] and not _shared_seed_warnings(caplog.records, url)
    assert engine.n_supported is not False
    assert server.requests[-3].get("n") == 3  # the second prompt still asks with n


def test_generate_writes_k_distinct_explanations_per_question(server, tiny_teacher, synth_train, tmp_path):
    url = server.url
    out = tmp_path / "traces"
    proc = rlt("generate", "--teacher", tiny_teacher, "--data", synth_train, "--out", out, "--limit", 6,
               "--num-generations", 4, "--temperature", 0.7, "--max-new-tokens", 8, "--engine", "openai",
               f"engine.base_url={url}", env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr[-2000:]
    by_id: dict[str, set] = {}
    for r in read_rows(str(out), "traces"):
        by_id.setdefault(r["id"], set()).add(r["explanation"])
    assert len(by_id) == 6 and all(len(v) == 4 for v in by_id.values())
    assert " ".join(proc.stderr.split()).count("identical choices") == 1 and url in proc.stderr


def test_eval_pass_at_k_gets_k_draws(server, tiny_teacher, synth_test, tmp_path):
    url = server.url
    server.reply = choices_from(lambda seed, i, body: f"the sum is \\boxed{{{seed}}}{END_SOLUTION}")
    out = tmp_path / "eval"
    proc = rlt("eval", "--model", tiny_teacher, "--data", synth_test, "--out", out, "--limit", 3,
               "--num-generations", 3, "--temperature", 0.7, "--max-new-tokens", 8, "--engine", "openai",
               f"engine.base_url={url}", env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr[-2000:]
    by_id: dict[str, set] = {}
    for r in read_rows(str(out), "eval"):
        by_id.setdefault(r["id"], set()).add(r["response"])
    assert len(by_id) == 3 and all(len(v) == 3 for v in by_id.values())


def test_the_hf_engine_draws_each_sample(tiny_teacher, one_thread):
    engine = make_engine(EngineConfig(name="hf", device="cpu", batch_size=8), str(tiny_teacher))
    out = engine.generate(["What is 12 + 30?", "What is 1 + 1?"], n=4, max_new_tokens=16, temperature=1.0, seed=5)
    assert all(len({c.text for c in cs}) == 4 for cs in out)
    same = engine.generate(["What is 12 + 30?"] * 3, n=1, max_new_tokens=16, temperature=1.0, seed=5)
    assert len({cs[0].text for cs in same}) == 3  # a prompt repeated in one call: separate draws too
