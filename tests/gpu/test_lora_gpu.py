"""LoRA and QLoRA `rlt distill` on CUDA (skipped without a GPU; QLoRA also without bitsandbytes)."""

import importlib.util
import json

import pytest

from stages.artifacts.layout import manifest_path

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("qlora", [False, True])
def test_lora_step_on_cuda_writes_merged_weights(qlora, tiny_teacher, synth_train, tmp_path):
    if qlora and importlib.util.find_spec("bitsandbytes") is None:
        pytest.skip("QLoRA needs bitsandbytes")
    from transformers import AutoModelForCausalLM

    from stages.commands import distill
    from stages.config import resolve

    cfg = resolve(distill.DistillConfig, preset=distill.PRESETS["tiny"], options={
        "model": str(tiny_teacher), "data": str(synth_train), "out": str(tmp_path / "gpu"),
        "device": "cuda", "max_steps": 2, "batch_size": 8, "logging_steps": 1},
        overrides=["lora.r=8", f"lora.qlora={str(qlora).lower()}"])
    out = distill.train(distill.prepare(cfg))
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["global_step"] == 2 and manifest["lora"]["qlora"] is qlora
    merged = AutoModelForCausalLM.from_pretrained(out)
    assert merged.num_parameters() == AutoModelForCausalLM.from_pretrained(tiny_teacher).num_parameters()
