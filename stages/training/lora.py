"""LoRA / QLoRA adapters (PEFT) for the training stages `rlt distill` and `rlt teach`.

`lora.r=0` (the default) is full fine-tuning. With `lora.r=16` the trainer wraps
the model in PEFT LoRA adapters on `lora.target_modules` (default `all-linear`:
the attention and MLP projections, every linear layer but the output head):

    rlt distill --model M --data A --out D lora.r=16 lora.alpha=32
    rlt teach ... lora.r=16 lora.save=adapter

Output: merged weights by default (`lora.save=merged`: an ordinary HF model
directory), or the adapter alone (`lora.save=adapter`: `adapter_config.json` +
`adapter_model.safetensors` + tokenizer; `adapter_config.json` names a local base
relative to the adapter directory, the manifest records its absolute path). Every
stage that takes a model accepts such an adapter directory
(`stages.models.loading.load_model` loads the base and merges the adapter).

The merged model computes what was trained (`prepare_model`, before training):
targets on the output head are refused (TRL computes log-probs from `lm_head.weight`
directly, so an adapter there would never train), and a model whose input
embeddings share their weight with the output head (tied: Qwen2.5 0.5B-3B,
`rlt model tiny`) is untied when a target touches the embeddings, so the update
trained into the embeddings is not merged into the head as well.
`lora.qlora=true` loads the base in 4 bits (bitsandbytes NF4, CUDA only;
Dettmers et al. 2023, "QLoRA").
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from stages.artifacts.checkpoints import checkpoint_dir
from stages.config import opt
from stages.errors import UserError
from stages.models.adapters import ADAPTER_CONFIG, _base_ref, base_entry, merge_adapter, untie_embeddings

log = logging.getLogger(__name__)
SAVE = ("merged", "adapter")


@dataclass
class LoraConfig:
    """LoRA adapters (PEFT); r=0 trains every weight."""

    r: int = opt(0, "LoRA rank; 0 = full fine-tuning (no adapters).")
    alpha: float = opt(32.0, "LoRA scaling numerator: updates are scaled by alpha / r.")
    dropout: float = opt(0.0, "Dropout on the LoRA input (0 <= p < 1); > 0 keeps a dropped copy of every "
                              "adapted layer's input for backward (more activation memory).")
    target_modules: list[str] = opt(lambda: ["all-linear"],
                                    "Module names that get adapters; all-linear = the attention and MLP projections.")
    save: str = opt("merged", "Output: merged (full weights, loads with AutoModelForCausalLM) or adapter.")
    qlora: bool = opt(False, "Load the base in 4 bits (bitsandbytes NF4, CUDA only).")


def enabled(lcfg: LoraConfig) -> bool:
    return lcfg.r > 0


def validate(lcfg: LoraConfig, on_cuda: bool | None = None) -> None:
    """One UserError per bad LoRA option; QLoRA refused without CUDA or bitsandbytes."""
    if lcfg.r < 0:
        raise UserError(f"lora.r must be >= 0 (0 = full fine-tuning), got {lcfg.r}")
    if lcfg.save not in SAVE:
        raise UserError(f"lora.save must be one of {', '.join(SAVE)}, got {lcfg.save!r}")
    if not enabled(lcfg):
        if lcfg.qlora or lcfg.save != "merged":
            raise UserError("lora.qlora and lora.save=adapter need adapters: set lora.r > 0")
        return
    if lcfg.alpha <= 0:
        raise UserError(f"lora.alpha must be > 0, got {lcfg.alpha}")
    if not 0 <= lcfg.dropout < 1:
        raise UserError(f"lora.dropout must be in [0, 1), got {lcfg.dropout}")
    if not lcfg.target_modules:
        raise UserError("lora.target_modules is empty (default: all-linear)")
    if "lm_head" in lcfg.target_modules:
        raise UserError(HEAD_REFUSED.format("lm_head"))
    if lcfg.qlora:
        check_qlora(on_cuda)


def check_qlora(on_cuda: bool | None = None) -> None:
    """QLoRA needs a CUDA GPU and bitsandbytes; one line otherwise."""
    if on_cuda is None:
        import torch

        on_cuda = torch.cuda.is_available()
    if not on_cuda:
        raise UserError("lora.qlora needs a CUDA GPU (bitsandbytes 4-bit); use plain LoRA (lora.qlora=false) here")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise UserError("lora.qlora needs bitsandbytes: pip install bitsandbytes")


def quantization_config(lcfg: LoraConfig):
    """BitsAndBytesConfig of the QLoRA base (NF4, double quantization, bf16 compute), or None."""
    if not (enabled(lcfg) and lcfg.qlora):
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)


def peft_config(lcfg: LoraConfig):
    """peft.LoraConfig for a causal LM, or None when lora.r=0."""
    if not enabled(lcfg):
        return None
    import peft

    targets = lcfg.target_modules
    return peft.LoraConfig(r=lcfg.r, lora_alpha=lcfg.alpha, lora_dropout=lcfg.dropout, bias="none",
                           task_type="CAUSAL_LM", target_modules=targets[0] if targets == ["all-linear"] else targets)


def check_targets(model, lcfg: LoraConfig) -> None:
    """Every named target matches a module of `model` (PEFT's own matching rule); UserError otherwise."""
    if not enabled(lcfg) or lcfg.target_modules == ["all-linear"]:
        return
    from peft.tuners.tuners_utils import check_target_module_exists

    names = [n for n, _ in model.named_modules() if n]
    missing = [t for t in lcfg.target_modules
               if not any(check_target_module_exists(peft_config(_one(lcfg, t)), n) for n in names)]
    if missing:
        leaves = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"})
        raise UserError(f"lora.target_modules {', '.join(missing)} match no module of the model "
                        f"(linear modules: {', '.join(leaves)}; or all-linear)")


HEAD_REFUSED = ("lora.target_modules: {} is the output head, and TRL computes log-probs from its weight "
                "directly, so an adapter there would never train; leave it out")


def _targeted(model, lcfg: LoraConfig) -> list[str]:
    """Names of the modules of `model` the targets match (PEFT's matching rule; all-linear: none of
    the embeddings or the head)."""
    if not enabled(lcfg) or lcfg.target_modules == ["all-linear"]:
        return []
    from peft.tuners.tuners_utils import check_target_module_exists

    conf = peft_config(lcfg)
    return [n for n, _ in model.named_modules() if n and check_target_module_exists(conf, n)]


def prepare_model(model, lcfg: LoraConfig) -> None:
    """Before training: every target matches a module (check_targets), none is the output head
    (UserError), and tied embeddings a target touches are untied (module docstring)."""
    check_targets(model, lcfg)
    named = dict(model.named_modules())
    targeted = _targeted(model, lcfg)
    head, embed = model.get_output_embeddings(), model.get_input_embeddings()
    hit_head = [n for n in targeted if named[n] is head]
    if hit_head:
        raise UserError(HEAD_REFUSED.format(hit_head[0]))
    if any(named[n] is embed for n in targeted) and untie_embeddings(model):
        log.info("lora: the input embeddings share their weight with the output head; untied, so the merged "
                 "model computes what the adapters trained")


def _one(lcfg: LoraConfig, target: str) -> LoraConfig:
    return LoraConfig(r=lcfg.r, alpha=lcfg.alpha, dropout=lcfg.dropout, target_modules=[target])


def describe(lcfg: LoraConfig, base: str) -> dict | None:
    """The manifest's `lora` entry: settings, output form and the base model (adapter outputs need it)."""
    if not enabled(lcfg):
        return None
    return {"r": lcfg.r, "alpha": lcfg.alpha, "dropout": lcfg.dropout, "target_modules": lcfg.target_modules,
            "qlora": lcfg.qlora, "save": lcfg.save, "base_model": _base_ref(base)}


# ----------------------------------------------------------------------------- saving


def save(trainer, out: Path, lcfg: LoraConfig, base: str, finalize=lambda model: None,
         trust_remote_code: bool = False) -> None:
    """Write the trained model to `out` (main process): full weights, merged LoRA weights or the adapter.

    `finalize(model)` edits the model about to be saved (generation config, attention).
    Merging reloads the base in full precision when the trained copy cannot be merged
    in place (QLoRA's 4-bit base, DeepSpeed ZeRO-3's sharded weights).
    """
    if not enabled(lcfg) or lcfg.save == "adapter":
        finalize(trainer.accelerator.unwrap_model(trainer.model))
        trainer.save_model(str(out))  # a PeftModel saves its adapter only
        if enabled(lcfg) and trainer.is_world_process_zero():
            _point_at_base(out, base)
        return
    if lcfg.qlora or _zero3(trainer):
        tmp = checkpoint_dir(out) / "adapter-final"
        trainer.save_model(str(tmp))  # collective under ZeRO-3
        if trainer.is_world_process_zero():
            _merge_from_disk(tmp, base, out, finalize, trust_remote_code)
            shutil.rmtree(tmp, ignore_errors=True)
        return
    if trainer.is_world_process_zero():
        merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
        finalize(merged)
        merged.save_pretrained(str(out))


def _zero3(trainer) -> bool:
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    return plugin is not None and plugin.zero_stage == 3


@contextmanager
def _one_rank_load():
    """Load a model on this rank alone. While a ZeRO-3 run's DeepSpeed config is registered, transformers
    wraps `from_pretrained` in `deepspeed.zero.Init`, which partitions the weights over every rank (a
    collective): the others, waiting at a barrier, would never join it. Unregistered for the load."""
    from transformers.integrations import deepspeed as hf_deepspeed

    ref = hf_deepspeed._hf_deepspeed_config_weak_ref
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = ref


def _merge_from_disk(adapter: Path, base: str, out: Path, finalize, trust_remote_code: bool) -> None:
    from stages.models.loading import load_model

    with _one_rank_load():
        model = load_model(base, device="cpu", dtype="auto", trust_remote_code=trust_remote_code)
    merged = merge_adapter(model, adapter)  # unties tied embeddings the adapter trained
    finalize(merged)
    merged.save_pretrained(str(out))


def _point_at_base(out: Path, base: str) -> None:
    """adapter_config.json names a local base relative to the adapter directory (stages/models/adapters.py)."""
    path = out / ADAPTER_CONFIG
    conf = json.loads(path.read_text())
    conf["base_model_name_or_path"] = base_entry(base, out)
    path.write_text(json.dumps(conf, indent=2))
    (out / "README.md").unlink(missing_ok=True)  # PEFT's empty model card; the manifest describes the run


# ----------------------------------------------------------------------------- loading adapter directories


