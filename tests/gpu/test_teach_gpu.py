"""`rlt teach` on CUDA: one bf16 GRPO step of the tiny teacher (skipped without a GPU)."""

import json
import math

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_one_bf16_step(tiny_teacher, tiny_student, synth_train, tmp_path, monkeypatch):
    from stages.artifacts.layout import manifest_path, metrics_path
    from stages.commands import teach
    from stages.config import resolve

    out = tmp_path / "gpu"
    cfg = resolve(teach.TeachConfig, preset=teach.PRESETS["tiny"], options={
        "teacher": str(tiny_teacher), "student": str(tiny_student), "data": str(synth_train), "out": str(out),
        "device": "cuda", "max_steps": 1, "max_new_tokens": 32})
    built, real = [], teach.grpo_args
    monkeypatch.setattr(teach, "grpo_args", lambda *a, **kw: built.append(real(*a, **kw)) or built[-1])
    teach.run(cfg)
    (args,) = built  # the trainer arguments run() itself chose for a CUDA teacher
    assert args.bf16 and not args.use_cpu
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["training"]["global_step"] == 1
    (row,) = [json.loads(x) for x in metrics_path(out).read_text().splitlines()]
    assert all(math.isfinite(row[k]) for k in ("reward", "sol_logp_mean", "sol_logp_min", "kl_mean", "kl_max"))
    saved = json.loads((out / "config.json").read_text())
    assert saved.get("dtype", saved.get("torch_dtype")) == "bfloat16"  # trained and saved in bf16
