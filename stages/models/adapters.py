"""PEFT adapter directories as models: find the base, check, merge, serve with vLLM."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from stages.artifacts.layout import read_manifest
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


def adapter_base(path: str | Path) -> str:
    """Base model of an adapter directory: the manifest's record, else adapter_config.json's."""
    p = Path(path)
    try:
        manifest = read_manifest(p) or {}
        conf = json.loads((p / ADAPTER_CONFIG).read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: unreadable adapter metadata ({e})") from None
    base = (manifest.get("lora") or {}).get("base_model") or conf.get("base_model_name_or_path")
    if not base:
        raise UserError(f"adapter {path} does not name its base model (adapter_config.json base_model_name_or_path)")
    return base


def check_adapter_dir(path: str | Path) -> str:
    """Refuse an adapter directory without safetensors weights or whose base is missing; returns the base."""
    p = Path(path)
    if not (p / ADAPTER_WEIGHTS).is_file():
        raise UserError(f"adapter directory {path} has no {ADAPTER_WEIGHTS}")
    base = adapter_base(p)
    if base == str(path) or Path(base).resolve() == p.resolve():
        raise UserError(f"adapter {path} names itself as its base model")
    return base


def merge_adapter(model, path: str | Path):
    """`model` (the base) with the adapter at `path` merged into its weights."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, str(path)).merge_and_unload()
    except (ValueError, KeyError, RuntimeError) as e:
        raise UserError(f"cannot apply adapter {path}: {str(e).splitlines()[0][:200]}") from None


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


