"""PEFT adapter directories as models: find the base, check, merge, serve with vLLM.

The base is what `adapter_config.json` names (`base_model_name_or_path`, the file PEFT,
transformers and vLLM read). rlt writes a local base relative to the adapter directory
(`./x` or `../x`), so an adapter moved together with its base still finds it; a relative
entry without `./` is looked up next to the adapter, then from the working directory
(PEFT's reading), else taken as a hub id. A missing local base is one UserError naming the
file that named it.

Merging keeps what was trained: on a model whose input and output embeddings share one
weight (tied; Qwen2.5 0.5B-3B, `rlt model tiny`), an adapter on one of them trained it
alone, so the weights are untied before merging (`untie_embeddings`) and tied again only
when the merge left them equal.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from stages.errors import UserError

log = logging.getLogger(__name__)
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def _base_ref(base: str) -> str:
    """A local base as an absolute path (the adapter must find it from any directory); a hub id as is."""
    p = Path(base)
    return str(p.resolve()) if p.exists() else base


def is_adapter_dir(path: str | Path) -> bool:
    """A PEFT adapter directory (adapter_config.json, no full config.json)."""
    p = Path(path)
    return p.is_dir() and (p / ADAPTER_CONFIG).is_file() and not (p / "config.json").is_file()


def base_entry(base: str, adapter_dir: str | Path) -> str:
    """What adapter_config.json records for `base`: a local directory relative to the adapter directory,
    starting with `./` or `../` (moving the two together keeps the pair); a hub id as is."""
    p = Path(base)
    if not p.exists():
        return base
    rel = os.path.relpath(p.resolve(), Path(adapter_dir).resolve())
    return rel if rel.startswith("..") else f"./{rel}"


def adapter_base(path: str | Path) -> str:
    """Base model of an adapter directory, as its adapter_config.json names it (module docstring):
    an absolute path, a path resolved from the adapter directory, or a hub id. UserError when the file
    names no base, or names a local one that does not exist (the message names the file)."""
    conf_path = Path(path) / ADAPTER_CONFIG
    try:
        entry = json.loads(conf_path.read_text()).get("base_model_name_or_path")
    except json.JSONDecodeError as e:
        raise UserError(f"{conf_path}: unreadable adapter metadata ({e})") from None
    if not entry:
        raise UserError(f"adapter {path} does not name its base model (base_model_name_or_path in {conf_path})")
    here = Path(path) / entry
    if entry.startswith(("./", "../", ".\\", "..\\")) or Path(entry).is_absolute():
        local = Path(entry) if Path(entry).is_absolute() else here
    elif here.exists():
        local = here
    else:
        return entry  # relative to the working directory (PEFT's reading) or a hub id: check_model_path decides
    if not local.exists():
        raise UserError(f"base model of adapter {path}: model not found: {local} "
                        f"(named by base_model_name_or_path={entry!r} in {conf_path})")
    return str(local.resolve())


def check_adapter_dir(path: str | Path) -> str:
    """Refuse an adapter directory without safetensors weights or whose base is missing; returns the base."""
    p = Path(path)
    if not (p / ADAPTER_WEIGHTS).is_file():
        raise UserError(f"adapter directory {path} has no {ADAPTER_WEIGHTS}")
    base = adapter_base(p)
    if base == str(path) or Path(base).resolve() == p.resolve():
        raise UserError(f"adapter {path} names itself as its base model")
    return base


def tied_embeddings(model) -> bool:
    """Whether the input embeddings and the output head are one weight."""
    inp, out = model.get_input_embeddings(), model.get_output_embeddings()
    return inp is not None and out is not None and inp.weight is out.weight


def untie_embeddings(model) -> bool:
    """Give the output head a copy of the tied embedding weight (the config says so too, so it saves and
    loads untied). Returns whether the model was tied."""
    import torch

    if not tied_embeddings(model):
        return False
    head = model.get_output_embeddings()
    head.weight = torch.nn.Parameter(head.weight.detach().clone(), requires_grad=head.weight.requires_grad)
    for conf in {id(c): c for c in (model.config, model.config.get_text_config())}.values():
        conf.tie_word_embeddings = False
    return True


def _tie_if_equal(model) -> None:
    """Tie the embeddings again when merging left both equal (the adapter touched neither)."""
    import torch

    inp, out = model.get_input_embeddings(), model.get_output_embeddings()
    if inp is not None and out is not None and inp.weight.shape == out.weight.shape \
            and torch.equal(inp.weight, out.weight):
        out.weight = inp.weight
        for conf in {id(c): c for c in (model.config, model.config.get_text_config())}.values():
            conf.tie_word_embeddings = True


def merge_adapter(model, path: str | Path):
    """`model` (the base) with the adapter at `path` merged into its weights, computing what the adapter
    trained: tied embeddings are untied first (module docstring). UserError if the adapter does not fit."""
    from peft import PeftModel

    tied = untie_embeddings(model)
    try:
        merged = PeftModel.from_pretrained(model, str(path)).merge_and_unload()
    except (ValueError, KeyError, RuntimeError) as e:
        raise UserError(f"cannot apply adapter {path}: {str(e).splitlines()[0][:200]}") from None
    if tied:
        _tie_if_equal(merged)
    return merged


def vllm_model(path: str) -> tuple[str, dict, object]:
    """(model vLLM loads, extra `vllm.LLM` options, LoRARequest or None): an adapter is served over its base.

    vLLM's `max_lora_rank` takes powers of two from 8 (vLLM docs, "LoRA Adapters").
    """
    if not is_adapter_dir(path):
        return path, {}, None
    from vllm.lora.request import LoRARequest

    r = int(json.loads((Path(path) / ADAPTER_CONFIG).read_text())["r"])
    rank = max(8, 1 << (r - 1).bit_length())
    return adapter_base(path), {"enable_lora": True, "max_lora_rank": rank}, \
        LoRARequest("rlt-adapter", 1, str(Path(path).resolve()))


