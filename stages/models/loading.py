"""Loading models and tokenizers safely, and choosing devices.

Safe by default: weights load from safetensors only (pickle checkpoints are
refused unless `allow_pickle=True`) and `trust_remote_code` is off unless asked.
Every problem with a model path becomes one `UserError` line.

    tok = load_tokenizer("models/tiny")
    model = load_model("models/tiny", device="cpu")
"""

from __future__ import annotations

import functools
import json
import logging
import re
from pathlib import Path

from stages.errors import UserError
from stages.models import adapters

log = logging.getLogger(__name__)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# Endings that make a name a local file, never a hub repository (`src/nope.jsonl`).
FILE_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv", ".txt", ".arrow", ".yaml", ".yml", ".safetensors", ".bin",
                 ".gguf")

DEVICE_HELP = "Where models run: auto (cuda when available, else cpu), cpu, cuda, cuda:N or mps."
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device(value: str) -> str | None:
    """The `check` of every `device` option: what is wrong with `value`, None when it names a device."""
    return None if _DEVICE.match(str(value)) else f"must be auto, cpu, cuda, cuda:N or mps, got {value!r}"


def resolve_device(device: str = "auto") -> str:
    """'auto' -> 'cuda' when available, else 'cpu'; UserError for an unknown device or CUDA that is not there."""
    import torch

    why = check_device(device)
    if why:
        raise UserError(f"device {why}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {device!r} requested but CUDA is not available")
    return device


def hub_id(path: str) -> bool:
    """Is `path`, which does not exist here, a hub id (`org/name`) rather than a mistyped local path?

    Not when it starts with `.`, `/` or `~`, ends like a file (`.jsonl`, `.parquet`, ...), or its
    first part is a folder here (`runs/studnet`: a typo under `runs/`, not an organisation).
    """
    text = str(path)
    if not _HUB_ID.match(text) or text.startswith((".", "/", "~")) or text.lower().endswith(FILE_SUFFIXES):
        return False
    return not Path(text.split("/", 1)[0]).exists()


def not_found(path: str, what: str = "input") -> UserError:
    """`<what> not found: <path>`, naming the nearest existing sibling when there is one (a typo)."""
    import difflib

    p = Path(path)
    parent = p.parent if str(p.parent) not in ("", ".") else Path(".")
    siblings = [c.name for c in parent.iterdir()] if parent.is_dir() else []
    near = difflib.get_close_matches(p.name, siblings, n=1, cutoff=0.6)
    hint = f" (did you mean {parent / near[0] if str(parent) != '.' else near[0]}?)" if near else ""
    return UserError(f"{what} not found: {path}{hint}")


@functools.cache  # asked once per process, however many loads follow
def check_hub_model(repo: str) -> None:
    """Ask the hub once whether model `repo` exists; UserError naming the offline case, no retries.

    A model already in the local hub cache passes without asking.
    """
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(repo, "config.json"), str):
        ask_hub(repo, "model", "a local directory")


@functools.cache
def check_hub_dataset(repo: str) -> None:
    """`check_hub_model` for dataset `repo` (what `rlt data import org/name` loads): one question to the hub, one
    line when it cannot answer. A dataset already in the hub cache or the datasets cache passes without asking."""
    from datasets import config
    from huggingface_hub import constants

    name = repo.replace("/", "--")
    if (Path(constants.HF_HUB_CACHE) / f"datasets--{name}" / "snapshots").is_dir() or \
            (Path(config.HF_DATASETS_CACHE) / repo.replace("/", "___")).is_dir():
        return
    ask_hub(repo, "dataset", "a local file or folder")


def ask_hub(repo: str, kind: str, local: str) -> None:
    """Ask the hub once, without retries, whether `repo` (a `kind`: model or dataset) exists; UserError (one line)
    when it does not, is gated, the hub cannot be reached, or HF_HUB_OFFLINE is set. `local`: what a path that
    is not a hub id would have been ("a local directory")."""
    from huggingface_hub import constants, dataset_info, model_info
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if constants.HF_HUB_OFFLINE:
        raise UserError(f"{kind} not found: {repo} is not {local} and not in the hub cache (HF_HUB_OFFLINE is set)")
    try:
        (model_info if kind == "model" else dataset_info)(repo, timeout=10)
    except GatedRepoError:
        raise UserError(f"{kind} {repo} is gated on the hub: accept its terms and log in (hf auth login)") from None
    except RepositoryNotFoundError:
        raise UserError(f"{kind} not found: {repo} is not {local} and not a {kind} on the hub "
                        "(or it is private: log in with hf auth login)") from None
    except Exception as e:  # noqa: BLE001 - no network: one line naming the case, not a traceback
        raise UserError(f"{kind} {repo} is not {local} and the hub cannot be reached "
                        f"({type(e).__name__}); offline, download it first or give a local path") from None


def check_model_path(path: str, allow_pickle: bool = False, need_weights: bool = True) -> None:
    """Refuse a missing directory, one without a tokenizer, or pickle-only weights.

    A path that does not exist is refused at once unless it is a hub id (`hub_id`), which is
    asked for once (`check_hub_model`). A PEFT adapter directory (`adapter_config.json`, see
    stages/models/adapters.py) is accepted when its adapter weights are safetensors and its base
    model passes these checks. Raises UserError, one line.
    """
    p = Path(path)
    if not p.exists():
        if hub_id(path):
            check_hub_model(str(path))
            return
        raise not_found(path, "model")
    if not p.is_dir():
        if p.suffix.lower() == ".gguf":  # llama.cpp's single-file format: one conversion makes it a directory
            raise UserError(f"model path {path} is a GGUF file; import it first: rlt model import {path} --out DIR")
        raise UserError(f"model path {path} is a file; give the model directory")
    if adapters.is_adapter_dir(p):
        base = adapters.check_adapter_dir(p)
        try:
            check_model_path(base, allow_pickle=allow_pickle, need_weights=need_weights)
        except UserError as e:
            raise UserError(f"base model of adapter {path}: {e}") from None
        return
    if not (p / "config.json").is_file():
        raise UserError(f"{path} is not a model directory (no config.json)")
    if not _has_tokenizer(p):
        raise UserError(f"model directory {path} has no tokenizer (tokenizer.json / tokenizer_config.json)")
    if need_weights:
        safe = list(p.glob("*.safetensors"))
        pickles = list(p.glob("*.bin")) + list(p.glob("*.pt")) + list(p.glob("*.pth"))
        if not safe and pickles and not allow_pickle:
            raise UserError(f"{path} has only pickle weights ({pickles[0].name}); convert to safetensors "
                            "or pass --allow-pickle if you trust it")
        if not safe and not pickles:
            raise UserError(f"model directory {path} has no weights (*.safetensors)")


def _has_tokenizer(p: Path) -> bool:
    return any((p / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.json"))


def check_remote_code(path: str, trust_remote_code: bool) -> None:
    """Refuse a model directory whose config.json or tokenizer_config.json names code of its own (`auto_map`)
    unless `trust_remote_code`: transformers would otherwise load its built-in class for the model type
    instead, silently, which is not the model its authors shipped. UserError, one line."""
    p = Path(path)
    if trust_remote_code or not p.is_dir():
        return
    for name in ("config.json", "tokenizer_config.json"):
        try:
            auto_map = json.loads((p / name).read_text()).get("auto_map") if (p / name).is_file() else None
        except (ValueError, OSError, AttributeError):
            continue  # an unreadable file is for the loader to refuse
        if auto_map:
            names = ", ".join(sorted(auto_map)) if isinstance(auto_map, dict) else str(auto_map)
            raise UserError(f"{path}: its {name} names code of its own (auto_map: {names}), which runs only with "
                            "--trust-remote-code (trust_remote_code=true); without it, remove auto_map to use "
                            "transformers' built-in class for its model type")


def load_tokenizer(path: str, trust_remote_code: bool = False, padding_side: str | None = None):
    """AutoTokenizer with a pad token (falls back to eos) and an optional padding side."""
    from transformers import AutoTokenizer

    check_model_path(path, need_weights=False)
    if adapters.is_adapter_dir(path) and not _has_tokenizer(Path(path)):
        path = adapters.adapter_base(path)  # an adapter saved without its tokenizer uses the base's
    check_remote_code(path, trust_remote_code)
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load tokenizer of {path}: {str(e).splitlines()[0][:200]}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if padding_side:
        tok.padding_side = padding_side
    return tok


def load_model(path: str, device: str = "auto", dtype: str = "auto", trust_remote_code: bool = False,
               allow_pickle: bool = False, quantization=None):
    """AutoModelForCausalLM from safetensors on `device`; float32 on CPU unless told.

    An adapter directory loads its base model with the adapter merged in.
    `quantization` (a transformers BitsAndBytesConfig, QLoRA) places the model on `device` at load.
    """
    check_model_path(path, allow_pickle=allow_pickle)
    if adapters.is_adapter_dir(path):
        base = load_model(adapters.adapter_base(path), device="cpu", dtype=dtype, trust_remote_code=trust_remote_code,
                          allow_pickle=allow_pickle)
        return adapters.merge_adapter(base, path).to(resolve_device(device))
    check_remote_code(path, trust_remote_code)
    device = resolve_device(device)
    kw = {"dtype": _torch_dtype(dtype, device), "trust_remote_code": trust_remote_code,
          "use_safetensors": None if allow_pickle else True}
    if quantization is not None:
        kw.update(quantization_config=quantization, device_map={"": device})
    model = _from_pretrained(path, kw)
    return model if quantization is not None else model.to(device)


def _torch_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise UserError(f"unknown dtype {dtype!r} (use auto, float32, bfloat16 or float16)")
    return torch_dtype


def _from_pretrained(path: str, kw: dict):
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # stderr stays ours: log lines, and one line on a bad input
    try:
        return AutoModelForCausalLM.from_pretrained(path, **kw)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot load model {path}: {str(e).splitlines()[0][:200]}") from None
    finally:
        if bar:
            hf_logging.enable_progress_bar()


def check_same_vocab(tok_a, tok_b, name_a: str = "teacher", name_b: str = "student") -> None:
    """Teacher and student must share the vocabulary: the reward compares token log-probs."""
    if tok_a.get_vocab() != tok_b.get_vocab():
        raise UserError(f"{name_a} and {name_b} tokenizers differ ({len(tok_a)} vs {len(tok_b)} tokens); "
                        "the RLT reward needs one shared vocabulary")
