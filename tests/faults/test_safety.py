"""Safe defaults: safetensors only, no remote code, yaml.safe_load, 127.0.0.1, API keys never written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from stages.artifacts.layout import manifest_path
from tests.conftest import free_port, rlt, serve_model
from tests.faults.conftest import ONE_THREAD


def _one_line_error(proc, expect: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in proc.stderr and expect in lines[0], proc.stderr[-3000:]


@pytest.fixture(scope="module")
def pickle_teacher(tiny_teacher, tmp_path_factory) -> Path:
    """tiny_teacher with its weights as a pickle (pytorch_model.bin) and no safetensors."""
    import torch
    from safetensors.torch import load_file

    path = tmp_path_factory.mktemp("pickle") / "teacher"
    shutil.copytree(tiny_teacher, path)
    torch.save(load_file(path / "model.safetensors"), path / "pytorch_model.bin")
    (path / "model.safetensors").unlink()
    return path


@pytest.mark.parametrize("command", ["generate", "eval", "distill", "score", "teach"])
def test_pickle_weights_refused_by_default(command, pickle_teacher, tiny_teacher, synth_train, tmp_path):
    out = tmp_path / "out"
    args = {
        "generate": ["--teacher", pickle_teacher, "--data", synth_train, "--limit", 2],
        "eval": ["--model", pickle_teacher, "--data", synth_train, "--limit", 2],
        "distill": ["--model", pickle_teacher, "--data", synth_train, "--max-steps", 1],
        "score": ["--teacher", pickle_teacher, "--student", tiny_teacher, "--data", synth_train],
        "teach": ["--teacher", pickle_teacher, "--student", tiny_teacher, "--data", synth_train, "--max-steps", 1],
    }[command]
    if command == "score":  # score needs explanations: give it the gold traces as explanations
        import pyarrow.parquet as pq

        from stages.artifacts.read import read_table

        table = read_table(synth_train).slice(0, 2)
        pq.write_table(table.append_column("explanation", table.column("reasoning_trace")), tmp_path / "x.parquet")
        args[args.index(synth_train)] = tmp_path / "x.parquet"
    proc = rlt(command, *args, "--out", out, env=ONE_THREAD)
    _one_line_error(proc, "only pickle weights (pytorch_model.bin)")
    assert not out.exists()


@pytest.mark.parametrize("command", ["generate", "eval"])
def test_pickle_weights_load_with_allow_pickle(command, pickle_teacher, synth_train, tmp_path):
    out = tmp_path / command
    model = "--teacher" if command == "generate" else "--model"
    device = "--device" if command == "generate" else "engine.device=cpu"
    rlt(command, model, pickle_teacher, "--data", synth_train, "--out", out, "--limit", 2, "--max-new-tokens", 4,
        *([device, "cpu"] if command == "generate" else [device]), "--allow-pickle", check=True, env=ONE_THREAD)
    assert json.loads(manifest_path(out).read_text())["rows"] == 2


def test_remote_code_never_runs_by_default(tiny_teacher, synth_train, tmp_path):
    """A model whose config asks for its own Python code: refused, and the code never executes."""
    model = tmp_path / "custom"
    shutil.copytree(tiny_teacher, model)
    marker = tmp_path / "code-ran"
    (model / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                   "from transformers import Qwen2Config as EvilConfig, "
                                   "Qwen2ForCausalLM as EvilModel\n")
    config = json.loads((model / "config.json").read_text())
    config.update(model_type="evil-model", auto_map={"AutoConfig": "evil.EvilConfig",
                                                     "AutoModelForCausalLM": "evil.EvilModel"})
    (model / "config.json").write_text(json.dumps(config))
    for command, args in [("eval", ["--model", model, "--data", synth_train, "--limit", 2]),
                          ("distill", ["--model", model, "--data", synth_train, "--max-steps", 1])]:
        proc = rlt(command, *args, "--out", tmp_path / command, env=ONE_THREAD)
        last = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
        assert last.startswith("rlt: error:") and "auto_map" in last and "--trust-remote-code" in last, \
            proc.stderr[-3000:]
        assert not marker.exists(), f"rlt {command} ran the model's code without --trust-remote-code"
        assert not (tmp_path / command).exists()


@pytest.mark.parametrize("where", ["config", "pipelines"])
def test_yaml_python_tags_refused(where, tmp_path):
    marker = tmp_path / "yaml-ran"
    evil = tmp_path / "evil.yaml"
    payload = f'!!python/object/apply:os.system ["touch {marker}"]'
    if where == "config":
        evil.write_text(f"n: {payload}\n")
        proc = rlt("data", "synth", "--out", tmp_path / "d", "--config", evil)
    else:
        evil.write_text(f"p:\n  steps:\n    a:\n      command: data synth\n      options:\n        n: {payload}\n")
        proc = rlt("run", "p", "--file", evil, "--runs", tmp_path / "runs")
    _one_line_error(proc, "not valid YAML")
    assert not marker.exists() and not (tmp_path / "d").exists() and not (tmp_path / "runs").exists()


def test_openai_engine_defaults_to_localhost(tiny_teacher, synth_train, tmp_path):
    proc = rlt("generate", "--teacher", tiny_teacher, "--data", synth_train, "--out", tmp_path / "g",
               "--engine", "openai", "--print-config", check=True)
    engine = yaml.safe_load(proc.stdout)["engine"]
    assert engine["base_url"].startswith("http://127.0.0.1:") and engine["api_key_env"] == "OPENAI_API_KEY"
    assert "api_key" not in engine  # only the NAME of the variable is configurable, never the key
    sources = [p.read_text() for d in ("stages", "rltcli") for p in (Path(__file__).parents[2] / d).rglob("*.py")]
    assert not any("0.0.0.0" in s for s in sources)


# ----------------------------------------------------------------------------- API keys


@pytest.fixture(scope="module")
def served(tiny_teacher, tmp_path_factory):
    """A real `transformers serve` of the tiny teacher on 127.0.0.1 (started and stopped here)."""
    with serve_model(tiny_teacher, tmp_path_factory.mktemp("serve") / "serve.log") as url:
        yield url


SECRET = "sk-rlt-fault-suite-7f3a9c1e5b"


def _leaks(root: Path, *streams: str) -> list[str]:
    found = [str(p) for p in root.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    return found + [f"stream {i}" for i, s in enumerate(streams) if SECRET in s]


def test_api_key_never_written(served, tiny_teacher, synth_train, tmp_path):
    out = tmp_path / "remote"
    env = {**ONE_THREAD, "RLT_FAULTS_KEY": SECRET, "OPENAI_API_KEY": SECRET}
    proc = rlt("generate", "--teacher", tiny_teacher, "--data", synth_train, "--out", out, "--limit", 3,
               "--temperature", 0, "--max-new-tokens", 4, "--engine", "openai", "--base-url", served,
               "engine.api_key_env=RLT_FAULTS_KEY", "engine.concurrency=2", check=True, env=env)
    m = json.loads(manifest_path(out).read_text())
    assert m["rows"] == 3 and m["config"]["engine"]["api_key_env"] == "RLT_FAULTS_KEY"
    assert not _leaks(out, proc.stdout, proc.stderr)
    # a failing request (unreachable server) reports the URL, never the key
    dead = rlt("generate", "--teacher", tiny_teacher, "--data", synth_train, "--out", tmp_path / "dead",
               "--limit", 1, "--engine", "openai", "--base-url", f"http://127.0.0.1:{free_port()}/v1",
               "engine.retries=0", env=env)
    _one_line_error(dead, "cannot reach the server at http://127.0.0.1:")
    assert not _leaks(tmp_path, dead.stdout, dead.stderr)
