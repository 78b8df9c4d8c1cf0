"""The `openai` engine against a real `transformers serve` on 127.0.0.1 (started and stopped here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.artifacts.read import read_rows
from stages.engines import make_engine
from stages.engines.base import EngineConfig
from stages.method import views as formats
from stages.method.settings import PromptsConfig
from tests.conftest import ONE_THREAD, free_port, rlt, serve_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sampling_teacher(tiny_teacher, tmp_path_factory) -> Path:
    """tiny_teacher with `do_sample: true`: transformers serve samples only when the model's config says so."""
    import json
    import shutil

    path = tmp_path_factory.mktemp("served") / "teacher"
    shutil.copytree(tiny_teacher, path)
    gen = json.loads((path / "generation_config.json").read_text())
    (path / "generation_config.json").write_text(json.dumps({**gen, "do_sample": True, "top_k": 0}))
    return path


@pytest.fixture(scope="module")
def server(sampling_teacher, tmp_path_factory):
    with serve_model(sampling_teacher, tmp_path_factory.mktemp("serve") / "serve.log") as url:
        yield url


def _prompts(tok, data, n):
    rows = read_rows(data, "dataset")[:n]
    system = PromptsConfig().teacher_system
    return [formats.teacher_view(tok, system, r["question"], r["solution"]) for r in rows]


def test_openai_engine_matches_hf_greedy(server, sampling_teacher, synth_train):
    remote = make_engine(EngineConfig(name="openai", base_url=server, concurrency=2), str(sampling_teacher))
    local = make_engine(EngineConfig(name="hf", device="cpu", batch_size=1), str(sampling_teacher))
    try:
        prompts = _prompts(local.tokenizer, synth_train, 3)
        kw = {"max_new_tokens": 10, "temperature": 0.0}
        got, want = remote.generate(prompts, n=2, **kw), local.generate(prompts, **kw)
        assert [len(g) for g in got] == [2, 2, 2]
        for g, w in zip(got, want):
            assert g[0] == g[1] == w[0]  # n separate requests, the same greedy text as in-process
            assert not g[0].finished and g[0].tokens == 10
    finally:
        remote.close()
        local.close()


def test_openai_engine_stops_at_the_end_tag(server, sampling_teacher, synth_train):
    remote = make_engine(EngineConfig(name="openai", base_url=server, concurrency=4), str(sampling_teacher))
    try:
        prompts = _prompts(remote.tokenizer, synth_train, 6)
        outs = remote.generate(prompts, n=3, max_new_tokens=40, temperature=1.0, seed=5,
                               stop=[formats.END_EXPLANATION])
    finally:
        remote.close()
    flat = [c for cs in outs for c in cs]
    ended = [c for c in flat if formats.END_EXPLANATION in c.text]
    assert ended, "18 sampled explanations of 40 tokens should write the end tag at least once"
    for c in ended:
        assert c.finished and c.text.endswith(formats.END_EXPLANATION) and c.tokens <= 40
        assert c.text.count(formats.END_EXPLANATION) == 1
    assert all(c.tokens == 40 for c in flat if not c.finished)


def test_generate_cli_with_openai_engine(server, sampling_teacher, synth_train, tmp_path):
    args = ["--teacher", sampling_teacher, "--data", synth_train, "--limit", 4, "--temperature", 0,
            "--max-new-tokens", 6]
    rlt("generate", *args, "--out", tmp_path / "remote", "--engine", "openai", "--base-url", server,
        "engine.concurrency=2", check=True, env=ONE_THREAD)
    rlt("generate", *args, "--out", tmp_path / "local", "--device", "cpu", check=True, env=ONE_THREAD)
    key = lambda r: (r["id"], r["sample"])
    remote = sorted(read_rows(tmp_path / "remote", "traces"), key=key)
    local = sorted(read_rows(tmp_path / "local", "traces"), key=key)
    assert len(remote) == 4
    fields = ("id", "sample", "explanation", "text", "truncated", "format_ok", "generated_tokens")
    assert [[r[f] for f in fields] for r in remote] == [[r[f] for f in fields] for r in local]


def test_unreachable_server_exits_2_with_one_line(tiny_teacher, synth_train, tmp_path):
    out = tmp_path / "t"
    proc = rlt("generate", "--teacher", tiny_teacher, "--data", synth_train, "--out", out, "--limit", 2,
               "--engine", "openai", "--base-url", f"http://127.0.0.1:{free_port()}/v1", "engine.retries=1")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the server at http://127.0.0.1:" in lines[0], proc.stderr
    assert not out.exists()
