"""The openai engine's request protocol against a scripted OpenAI-compatible server on 127.0.0.1.

The real `transformers serve` (tests/e2e/test_openai_engine.py) ignores `n` and refuses unknown
fields; this server plays the other kind (vLLM / SGLang: `n` choices, `skip_special_tokens`
accepted) and records every request, so the batching, seeding and fallbacks can be checked.
"""

from __future__ import annotations

import pytest

from stages.engines import make_engine
from stages.engines.base import EngineConfig, derive_seed
from stages.method import views as formats
from tests.stub_openai import OpenAIStub, completion

END = formats.END_EXPLANATION


class Scripted:
    """Completions: text = 's<seed>c<index>' (+ the end tag unless `drop_tags`), deterministic in the seed."""

    def __init__(self, honor_n=True, accept_extra=True, drop_tags=False):
        self.honor_n, self.accept_extra, self.drop_tags = honor_n, accept_extra, drop_tags

    def __call__(self, body: dict) -> tuple[int, dict]:
        extra = {"skip_special_tokens", "spaces_between_special_tokens"} & set(body)
        if extra and not self.accept_extra:
            return 422, {"detail": f"Unexpected fields in the request: {extra}"}
        n = body.get("n", 1) if self.honor_n else 1
        seed = body.get("seed", 0) if body["temperature"] > 0 else 0
        end = "" if self.drop_tags else END
        return 200, completion(body, [f"s{seed}c{i}{end}" for i in range(n)], completion_tokens=3 * n)


@pytest.fixture
def server():
    """The stub, scripted by each test (`server.reply = Scripted(...)`); `server.requests` records every request."""
    with OpenAIStub(Scripted()) as stub:
        yield stub


def _engine(url, tiny_teacher):
    return make_engine(EngineConfig(name="openai", base_url=url, concurrency=3), str(tiny_teacher))


KW = {"max_new_tokens": 8, "temperature": 1.0, "seed": 7, "stop": [END]}


def test_one_request_per_prompt_with_n_and_special_tokens_kept(server, tiny_teacher):
    server.reply = Scripted()  # vLLM-like
    out = _engine(server.url, tiny_teacher).generate(["a", "b", "a"], n=2, **KW)
    bodies = sorted(server.requests, key=lambda b: b["prompt"])
    assert [(b["prompt"], b["n"]) for b in bodies] == [("a", 4), ("b", 2)]  # repeated prompts share a request
    assert all(b["skip_special_tokens"] is False for b in bodies)
    sa, sb = derive_seed(7, 0, 0), derive_seed(7, 1, 0)
    assert [b["seed"] for b in bodies] == [sa, sb]  # the seed of the request's first sample
    assert [[c.text for c in cs] for cs in out] == [[f"s{sa}c0{END}", f"s{sa}c1{END}"], [f"s{sb}c0{END}", f"s{sb}c1{END}"],
                                                    [f"s{sa}c2{END}", f"s{sa}c3{END}"]]
    assert all(c.finished for cs in out for c in cs)


def test_servers_ignoring_n_and_refusing_fields_get_one_request_per_seeded_sample(server, tiny_teacher):
    server.reply = Scripted(honor_n=False, accept_extra=False)  # transformers-serve-like
    engine = _engine(server.url, tiny_teacher)
    out = engine.generate(["a", "b", "a"], n=2, **KW)
    want = [[f"s{derive_seed(7, i, k)}c0{END}" for k in range(2)] for i in range(3)]
    assert [[c.text for c in cs] for cs in out] == want  # sample k of position i: seed derive_seed(7, i, k)
    assert engine.n_supported is False and engine.extra == {}
    served = [b for b in server.requests if "skip_special_tokens" not in b]
    # The two first requests (a x4, b x2) go out concurrently with `n`; once the server is known to ignore it,
    # every request is one seeded sample (the order the server sees them in is the event loop's).
    assert len(served) == 6 and sum("n" in b for b in served) == 2
    again = engine.generate(["a", "b", "a"], n=2, **KW)
    assert [[c.text for c in cs] for cs in again] == want  # the same rows on a seed-honoring server


def test_greedy_asks_once_per_prompt(server, tiny_teacher):
    server.reply = Scripted()  # vLLM-like
    out = _engine(server.url, tiny_teacher).generate(["a", "b"], n=3, **{**KW, "temperature": 0.0})
    assert len(server.requests) == 2 and all("n" not in b for b in server.requests)
    assert all(len({c.text for c in cs}) == 1 and len(cs) == 3 for cs in out)


def test_one_warning_when_completions_stop_without_the_end_tag(server, tiny_teacher, caplog, monkeypatch):
    server.reply = Scripted(drop_tags=True)
    monkeypatch.setattr(formats, "_warned_missing_tags", set())
    engine = _engine(server.url, tiny_teacher)
    with caplog.at_level("WARNING"):
        engine.generate(["a", "b"], n=2, **KW)
        engine.generate(["c"], n=1, **KW)
    warned = [r for r in caplog.records if "without <|end_of_explanation|>" in r.getMessage()]
    assert len(warned) == 1 and "skip_special_tokens" in warned[0].getMessage()
