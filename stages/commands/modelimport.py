"""`rlt model import`: a GGUF file -> a model artifact every stage reads (safetensors, float32).

    rlt model import SmolLM2-135M-Instruct.Q4_1.gguf --out models/smollm2

Input: one `.gguf` file (llama.cpp's format: weights, often quantized, with the
tokenizer and chat template in its metadata). It is read by transformers' GGUF
reader (the `gguf` package: `pip install 'rlt[gguf]'`), which de-quantizes every
tensor to float32 as it loads; the architectures it reads are transformers'
(`GGUF_SUPPORTED_ARCHITECTURES`: llama, mistral, qwen2, qwen3, gemma ...).

Output: a checkpoint artifact (HF model dir: safetensors, tokenizer, chat template,
generation config, `.rlt/manifest.json`) whose manifest records the source file's
name, size and sha256, its tensor types (`Q4_1: 211, F32: 61`) and that the saved
weights are de-quantized float32: a 4-bit file becomes a 4x larger float32 model
whose values are the 4-bit ones, no more precise than the file.

Everything read from the file is checked before any tensor is de-quantized: a
missing path, a directory, a file that is not GGUF, a truncated one or an
architecture transformers cannot read is one `UserError` line and nothing is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from stages.artifacts.stage import run_stage
from stages.config import check_config, opt
from stages.errors import UserError
from stages.models.loading import not_found

log = logging.getLogger(__name__)
GGUF_MAGIC = b"GGUF"  # the first four bytes of every GGUF file (ggml's gguf.h)


@dataclass
class ModelImportConfig:
    """Options of `rlt model import`."""

    file: str = opt("", "GGUF file to import (weights, tokenizer and chat template in one file).",
                    arg=True, input=True, required=True)
    out: str = opt("", "Output checkpoint directory.", hash=False, flag=True, required=True)
    force: bool = opt(False, "Overwrite an existing output.", hash=False, flag=True)


def check_gguf_file(path: str) -> Path:
    """Refuse (UserError, one line) a path that is missing, a directory, or not a GGUF file; returns it."""
    p = Path(path)
    if not p.exists():
        raise not_found(path, "GGUF file")
    if p.is_dir():
        raise UserError(f"{path} is a directory; rlt model import reads one .gguf file")
    with open(p, "rb") as f:
        if f.read(len(GGUF_MAGIC)) != GGUF_MAGIC:
            raise UserError(f"{path} is not a GGUF file (it does not start with the GGUF magic bytes)")
    return p


def gguf_metadata(p: Path) -> dict:
    """{"architecture", "tensor_types": {type name: tensor count}} of a GGUF file, read without
    de-quantizing anything; UserError when the gguf package is missing or the file cannot be read."""
    try:
        from gguf import GGUFReader
    except ImportError:
        raise UserError("reading GGUF needs the gguf package: pip install 'rlt[gguf]'") from None
    try:
        reader = GGUFReader(p)
        field = reader.get_field("general.architecture")
        architecture = field.contents() if field is not None else None
    except Exception as e:  # noqa: BLE001 - a truncated or corrupt file: one line, not a traceback
        raise UserError(f"cannot read GGUF file {p} (truncated or corrupt?): {str(e).splitlines()[0][:160]}") from None
    if not architecture:
        raise UserError(f"GGUF file {p} names no architecture (general.architecture)")
    return {"architecture": architecture,
            "tensor_types": dict(Counter(t.tensor_type.name for t in reader.tensors).most_common())}


def check_architecture(p: Path) -> None:
    """Refuse an architecture transformers' GGUF reader cannot build (its config, no tensors read)."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(p.parent, gguf_file=p.name)
    except (ValueError, KeyError, OSError) as e:
        raise UserError(f"cannot import {p}: {str(e).splitlines()[0][:200]}") from None


def sha256_of(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_gguf(p: Path):
    """(model, tokenizer) from a GGUF file: every tensor de-quantized to float32.

    transformers marks such a model as gguf-quantized and refuses to save it; its tensors are
    plain float32 already, so the marker is removed (the quantizer's own `remove_quantization_config`).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(p.parent, gguf_file=p.name)
        model = AutoModelForCausalLM.from_pretrained(p.parent, gguf_file=p.name, dtype=torch.float32)
    except (ValueError, KeyError, OSError) as e:
        raise UserError(f"cannot import {p}: {str(e).splitlines()[0][:200]}") from None
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def run(cfg: ModelImportConfig) -> Path:
    """Check the file -> de-quantize -> save the checkpoint artifact (manifest last)."""
    check_config(cfg)
    p = check_gguf_file(cfg.file)
    meta = gguf_metadata(p)

    def write(w, _checked=None) -> None:
        model, tok = load_gguf(p)
        model.save_pretrained(w.out, safe_serialization=True)
        tok.save_pretrained(w.out)
        n = sum(t.numel() for t in model.parameters())
        source = {"format": "gguf", "file": p.name, "bytes": p.stat().st_size, "sha256": sha256_of(p), **meta}
        w.finish({"parameters": n, "vocab": len(tok), "source": source,
                  "weights": {"dtype": "float32", "dequantized": True}}, rows=0)
        log.info("imported %s (%s, %d parameters, vocabulary %d, de-quantized to float32) -> %s",
                 p.name, meta["architecture"], n, len(tok), w.out)

    @contextlib.contextmanager
    def architecture_checked():
        check_architecture(p)  # after `require`: a finished output is said without reading the file again
        yield

    return run_stage(cfg, "checkpoint", write, load=architecture_checked)
