"""A loopback OpenAI-compatible completions server for tests, on 127.0.0.1 only.

`OpenAIStub(reply)` is a context manager: entering it starts the server on a free port of 127.0.0.1
(`.url` is its `/v1` base URL), leaving it stops that server (and only that one). It implements:

- GET (any path; the openai engine probes `/v1/models`): a model list with one model, `stub`;
- POST (any path; the openai engine asks `/v1/completions`): the JSON body is appended to `.requests`,
  then `.reply(body)` answers with a payload (status 200) or a `(status, payload)` pair.

`.reply` may be replaced while the server runs. `completion()` builds the usual `text_completion` payload.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODELS = {"object": "list", "data": [{"id": "stub", "object": "model", "created": 0, "owned_by": "rlt"}]}


def completion(body: dict, texts: list[str], *, completion_tokens: int, finish_reason: str = "stop",
               **choice_fields) -> dict:
    """The `text_completion` answer to `body`: one choice per text, each with `finish_reason` and `choice_fields`."""
    choices = [{"index": i, "text": t, "finish_reason": finish_reason, **choice_fields} for i, t in enumerate(texts)]
    return {"id": "cmpl-stub", "object": "text_completion", "created": 0, "model": body["model"], "choices": choices,
            "usage": {"prompt_tokens": 1, "completion_tokens": completion_tokens,
                      "total_tokens": 1 + completion_tokens}}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, code: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.server.stub.calls.append(("GET", self.path, dict(self.headers)))
        self._send(200, MODELS)

    def do_POST(self):
        stub = self.server.stub
        stub.calls.append(("POST", self.path, dict(self.headers)))
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        stub.requests.append(body)
        answer = stub.reply(body)
        self._send(*(answer if isinstance(answer, tuple) else (200, answer)))


class OpenAIStub:
    """See the module docstring: `.url`, `.requests` (every POST body, in arrival order), `.reply`,
    `.calls` (method, path with its query, headers of every request)."""

    def __init__(self, reply: Callable[[dict], dict | tuple[int, dict]]):
        self.reply, self.requests, self.calls, self.url = reply, [], [], ""
        self._httpd: ThreadingHTTPServer | None = None

    def __enter__(self):
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.stub = self
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
