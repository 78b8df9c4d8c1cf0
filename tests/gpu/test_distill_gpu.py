"""`rlt distill` on CUDA: one bf16 optimizer step of the tiny model (skipped without a GPU)."""

import json

import pytest

from stages.artifacts.layout import manifest_path

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_one_bf16_step(tiny_teacher, synth_train, tmp_path):
    from stages.commands import distill
    from stages.config import resolve

    cfg = resolve(distill.DistillConfig, preset=distill.PRESETS["tiny"], options={
        "model": str(tiny_teacher), "data": str(synth_train), "out": str(tmp_path / "gpu"),
        "device": "cuda", "max_steps": 1, "batch_size": 8, "logging_steps": 1})
    prep = distill.prepare(cfg)
    assert prep.args.bf16 and not prep.args.use_cpu
    out = distill.train(prep)
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["global_step"] == 1 and manifest["train_loss"] > 0
    assert next(prep.model.parameters()).dtype == torch.bfloat16
