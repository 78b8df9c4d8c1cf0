"""Credentials in a server URL (`http://user:SECRET@host/v1`, `?api_key=SECRET`) reach the server and nothing
else (stages/secrets.py): every file a run writes, its output and its error lines are searched for them,
through `rlt eval`, `rlt generate`, `--print-config`, an unreachable server and a pipeline run; served by a
loopback OpenAI-compatible stub."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from stages import secrets
from stages.method.views import END_EXPLANATION
from tests.conftest import ONE_THREAD, rlt
from tests.stub_openai import OpenAIStub, completion

USER, PASSWORD, KEY = "alice", "pw-Xq81Zt", "key-77Hq2M"
SECRETS = (PASSWORD, KEY)


def _with_credentials(url: str) -> str:
    return url.replace("http://", f"http://{USER}:{PASSWORD}@") + f"?api_key={KEY}"


def _leaks(*texts: str, folders: tuple[Path, ...] = ()) -> list[str]:
    """Where a secret appears: in `texts`, or in any file under `folders` (hidden records included)."""
    found = [f"output {i}" for i, t in enumerate(texts) if any(s in t for s in SECRETS)]
    for folder in folders:
        for f in Path(folder).rglob("*"):
            if f.is_file() and any(s.encode() in f.read_bytes() for s in SECRETS):
                found.append(str(f))
    return found


@pytest.fixture()
def stub():
    def reply(body):
        text = "\\boxed{4}" if "What is" in body["prompt"] else f"Add the digits.{END_EXPLANATION}"
        return completion(body, [text] * body.get("n", 1), completion_tokens=3, logprobs=None)

    with OpenAIStub(reply) as server:
        yield server


def _assert_sent_to(stub):
    """Every request carried the credentials: basic auth from the userinfo, the key in the query."""
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert stub.calls and all(h.get("Authorization") == auth and f"api_key={KEY}" in path
                              for _, path, h in stub.calls)


def test_eval_and_generate_write_and_show_no_credentials(stub, tiny_student, tiny_teacher, synth_train, tmp_path):
    url = _with_credentials(stub.url)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"id": str(i), "question": f"What is {i}?", "answer": "4"}) + "\n"
                            for i in range(3)))
    shown = rlt("eval", "--model", tiny_student, "--data", data, "--out", tmp_path / "eval", "--engine", "openai",
                "--base-url", url, "engine.api_model=stub", "--print-config", env=ONE_THREAD)
    assert shown.returncode == 0 and "http://***@127.0.0.1" in shown.stdout
    ran = rlt("eval", "--model", tiny_student, "--data", data, "--out", tmp_path / "eval", "--engine", "openai",
              "--base-url", url, "engine.api_model=stub", "engine.retries=0", "-v", env=ONE_THREAD, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    gen = rlt("generate", "--teacher", tiny_teacher, "--data", synth_train, "--out", tmp_path / "traces",
              "--limit", 2, "--engine", "openai", f"engine.base_url={url}", "engine.retries=0", "-v",
              env=ONE_THREAD, timeout=300)
    assert gen.returncode == 0, gen.stderr[-2000:]
    _assert_sent_to(stub)
    manifest = json.loads((tmp_path / "eval" / ".rlt" / "manifest.json").read_text())
    assert manifest["config"]["engine"]["base_url"] == secrets.redact_url(url)
    assert not _leaks(shown.stdout, shown.stderr, ran.stdout, ran.stderr, gen.stdout, gen.stderr,
                      folders=(tmp_path,))


def test_an_unreachable_server_is_named_without_credentials(tiny_student, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"id": "1", "question": "What is 1?", "answer": "1"}) + "\n")
    url = _with_credentials("http://127.0.0.1:9/v1")
    proc = rlt("eval", "--model", tiny_student, "--data", data, "--out", tmp_path / "eval", "--engine", "openai",
               "--base-url", url, "engine.retries=0", "engine.timeout=2", env=ONE_THREAD, timeout=300)
    assert proc.returncode == 2
    assert "cannot reach the server at http://***@127.0.0.1:9/v1?api_key=***" in proc.stderr
    assert not _leaks(proc.stdout, proc.stderr, folders=(tmp_path,))


def test_a_pipeline_records_no_credentials(stub, tiny_student, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"id": str(i), "question": f"What is {i}?", "answer": "4"}) + "\n"
                            for i in range(2)))
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(json.dumps({"p": {"vars": {"url": ""}, "steps": {"ev": {"command": "eval", "options": {
        "models": [str(tiny_student)], "data": str(data),
        "engine": {"name": "openai", "base_url": "${url}", "api_model": "stub", "retries": 0}}}}}}))
    runs = tmp_path / "runs"
    args = ("run", "p", "--file", pipeline, "--runs", runs, "--var", f"url={_with_credentials(stub.url)}")
    ran = rlt(*args, env=ONE_THREAD, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    again = rlt(*args, env=ONE_THREAD, timeout=300)  # the recorded variables compare as before
    assert again.returncode == 0, again.stderr[-2000:]
    _assert_sent_to(stub)
    assert (runs / "p" / "ev" / ".rlt" / "manifest.json").is_file()
    assert not _leaks(ran.stdout, ran.stderr, again.stdout, again.stderr,
                      folders=(tmp_path,))
