"""`rlt teach` on CUDA: one bf16 GRPO step of the tiny teacher (skipped without a GPU)."""

import json
import math

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_one_bf16_step(tiny_teacher, tiny_student, synth_train, tmp_path):
    from stages import teach
    from stages.config import resolve

    out = tmp_path / "gpu"
    cfg = resolve(teach.TeachConfig, preset=teach.PRESETS["tiny"], options={
        "teacher": str(tiny_teacher), "student": str(tiny_student), "data": str(synth_train), "out": str(out),
        "device": "cuda", "max_steps": 1, "max_completion_length": 32})
    args = teach.grpo_args(cfg, teach.validate(cfg), on_gpu=True)
    assert args.bf16 and not args.use_cpu
    teach.run(cfg)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["training"]["global_step"] == 1
    (row,) = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(row[k]) for k in ("reward", "sol_logp_mean", "sol_logp_min", "kl_mean", "kl_max"))
    from stages.models import load_model

    assert load_model(str(out), device="cuda").dtype == torch.bfloat16
