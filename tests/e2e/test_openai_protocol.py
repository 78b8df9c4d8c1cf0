"""The openai engine's request protocol against a scripted OpenAI-compatible server on 127.0.0.1.

The real `transformers serve` (tests/e2e/test_openai_engine.py) ignores `n` and refuses unknown
fields; this server plays the other kind (vLLM / SGLang: `n` choices, `skip_special_tokens`
accepted) and records every request, so the batching, seeding and fallbacks can be checked.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stages.engines import make_engine
from stages.engines.base import EngineConfig, derive_seed
from stages.method import views as formats

END = formats.END_EXPLANATION


class Scripted:
    """Completions: text = 's<seed>c<index>' (+ the end tag unless `drop_tags`), deterministic in the seed."""

    def __init__(self, honor_n=True, accept_extra=True, drop_tags=False):
        self.honor_n, self.accept_extra, self.drop_tags, self.bodies = honor_n, accept_extra, drop_tags, []

    def reply(self, body: dict) -> tuple[int, dict]:
        self.bodies.append(body)
        extra = {"skip_special_tokens", "spaces_between_special_tokens"} & set(body)
        if extra and not self.accept_extra:
            return 422, {"detail": f"Unexpected fields in the request: {extra}"}
        n = body.get("n", 1) if self.honor_n else 1
        seed = body.get("seed", 0) if body["temperature"] > 0 else 0
        end = "" if self.drop_tags else END
        choices = [{"index": i, "text": f"s{seed}c{i}{end}", "finish_reason": "stop"} for i in range(n)]
        return 200, {"id": "x", "object": "text_completion", "created": 0, "model": body["model"],
                     "choices": choices, "usage": {"prompt_tokens": 1, "completion_tokens": 3 * n,
                                                   "total_tokens": 1 + 3 * n}}


@pytest.fixture
def server():
    script = {"now": Scripted()}

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code, payload):
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._send(200, {"object": "list", "data": []})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            self._send(*script["now"].reply(body))

        def log_message(self, *a):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", script
    httpd.shutdown()


def _engine(url, tiny_teacher):
    return make_engine(EngineConfig(name="openai", base_url=url, concurrency=3), str(tiny_teacher))


KW = {"max_new_tokens": 8, "temperature": 1.0, "seed": 7, "stop": [END]}


def test_one_request_per_prompt_with_n_and_special_tokens_kept(server, tiny_teacher):
    url, script = server
    script["now"] = vllm_like = Scripted()
    out = _engine(url, tiny_teacher).generate(["a", "b", "a"], n=2, **KW)
    bodies = sorted(vllm_like.bodies, key=lambda b: b["prompt"])
    assert [(b["prompt"], b["n"]) for b in bodies] == [("a", 4), ("b", 2)]  # repeated prompts share a request
    assert all(b["skip_special_tokens"] is False for b in bodies)
    sa, sb = derive_seed(7, 0, 0), derive_seed(7, 1, 0)
    assert [b["seed"] for b in bodies] == [sa, sb]  # the seed of the request's first sample
    assert [[c.text for c in cs] for cs in out] == [[f"s{sa}c0{END}", f"s{sa}c1{END}"], [f"s{sb}c0{END}", f"s{sb}c1{END}"],
                                                    [f"s{sa}c2{END}", f"s{sa}c3{END}"]]
    assert all(c.finished for cs in out for c in cs)


def test_servers_ignoring_n_and_refusing_fields_get_one_request_per_seeded_sample(server, tiny_teacher):
    url, script = server
    script["now"] = serve_like = Scripted(honor_n=False, accept_extra=False)
    engine = _engine(url, tiny_teacher)
    out = engine.generate(["a", "b", "a"], n=2, **KW)
    want = [[f"s{derive_seed(7, i, k)}c0{END}" for k in range(2)] for i in range(3)]
    assert [[c.text for c in cs] for cs in out] == want  # sample k of position i: seed derive_seed(7, i, k)
    assert engine.n_supported is False and engine.extra == {}
    served = [b for b in serve_like.bodies if "skip_special_tokens" not in b]
    # The two first requests (a x4, b x2) go out concurrently with `n`; once the server is known to ignore it,
    # every request is one seeded sample (the order the server sees them in is the event loop's).
    assert len(served) == 6 and sum("n" in b for b in served) == 2
    again = engine.generate(["a", "b", "a"], n=2, **KW)
    assert [[c.text for c in cs] for cs in again] == want  # the same rows on a seed-honoring server


def test_greedy_asks_once_per_prompt(server, tiny_teacher):
    url, script = server
    script["now"] = vllm_like = Scripted()
    out = _engine(url, tiny_teacher).generate(["a", "b"], n=3, **{**KW, "temperature": 0.0})
    assert len(vllm_like.bodies) == 2 and all("n" not in b for b in vllm_like.bodies)
    assert all(len({c.text for c in cs}) == 1 and len(cs) == 3 for cs in out)


def test_one_warning_when_completions_stop_without_the_end_tag(server, tiny_teacher, caplog, monkeypatch):
    url, script = server
    script["now"] = Scripted(drop_tags=True)
    monkeypatch.setattr(formats, "_warned_missing_tags", set())
    engine = _engine(url, tiny_teacher)
    with caplog.at_level("WARNING"):
        engine.generate(["a", "b"], n=2, **KW)
        engine.generate(["c"], n=1, **KW)
    warned = [r for r in caplog.records if "without <|end_of_explanation|>" in r.getMessage()]
    assert len(warned) == 1 and "skip_special_tokens" in warned[0].getMessage()
