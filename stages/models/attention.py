"""Attention over padding-free and packed SFT batches (`rlt distill`, padding_free / packing).

TRL's padding-free collator flattens a batch into one row `[1, T]` whose
`position_ids` restart at 0 at each sequence, and passes the sequence
boundaries it computed on the host: `cu_seq_lens_q/k` (int32 `[N + 1]`, moved
to the device with the batch) and `max_length_q/k` (Python ints). Attention
must stay inside each sequence. `use_packed_attention(model, device)` picks a
kernel once, registers it through transformers' `AttentionInterface` and sets
it on the model:

| device, weights      | kernel (attention implementation)                                        |
|----------------------|--------------------------------------------------------------------------|
| CUDA, fp16/bf16      | flash-attn when installed (`flash_attention_2`), else PyTorch's          |
|                      | variable-length FlashAttention (`torch.nn.attention.varlen`, `rlt_varlen`)|
| CUDA, fp32 / dropout | `flex_attention` (transformers builds one block mask per forward)        |
| CPU                  | SDPA once per sequence (`rlt_sdpa_per_sequence`): cost sum(L_i^2), not   |
|                      | T^2; 1.8x (padding-free) / 1.6x (packed) the tokens/s of padded batches  |
|                      | on mixed-length traces (benchmarks/distill.py)                           |

None of them reads a device tensor on the host in a layer: the varlen kernels
take the boundaries as device tensors, and the CPU path reads them once per
forward (cached on the boundary tensor). Sources: PyTorch `varlen_attn` docs;
transformers "Attention interface" docs; TRL "Padding-free" docs.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import weakref

log = logging.getLogger(__name__)
VARLEN = "rlt_varlen"
PER_SEQUENCE = "rlt_sdpa_per_sequence"


def pick(device: str, half: bool, dropout: float, sliding_window: bool, flash_attn: bool, torch_varlen: bool) -> str:
    """The attention implementation for padding-free batches, from plain facts (see the module table)."""
    if device != "cuda":
        return "sdpa" if sliding_window else PER_SEQUENCE  # transformers masks windows over packed rows itself
    if half and dropout == 0 and flash_attn:
        return "flash_attention_2"
    if half and dropout == 0 and torch_varlen:
        return VARLEN
    return "flex_attention"


def _torch_varlen_available() -> bool:
    """torch.nn.attention.varlen exists and this GPU runs its FlashAttention-2 kernels (sm80+)."""
    import torch

    try:
        from torch.nn.attention.varlen import varlen_attn  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8


def choose(model, device: str) -> str:
    """`pick` for this model (weights dtype, dropout, sliding windows) and the installed kernels."""
    import torch

    cfg = model.config
    dtype = getattr(model, "dtype", None) or next(model.parameters()).dtype  # floating dtype (4-bit bases too)
    half = dtype in (torch.float16, torch.bfloat16)
    window = bool(getattr(cfg, "use_sliding_window", False) and getattr(cfg, "sliding_window", None))
    flash = importlib.util.find_spec("flash_attn") is not None
    return pick(device, half, float(getattr(cfg, "attention_dropout", 0.0) or 0.0), window, flash,
                device == "cuda" and _torch_varlen_available())


def use_packed_attention(model, device: str) -> str | None:
    """Set the kernel for padding-free batches on `model` (an SDPA model); returns the implementation it
    had, for `restore`, or None when it was left unchanged (eager or a kernel chosen by the user)."""
    from transformers import AttentionInterface

    before = model.config._attn_implementation
    if before != "sdpa":
        return None
    chosen = choose(model, device)
    AttentionInterface.register(VARLEN, varlen_attention)
    AttentionInterface.register(PER_SEQUENCE, per_sequence_sdpa)
    model.set_attn_implementation(chosen)
    log.debug("padding-free attention: %s", chosen)
    return before


def restore(model, before: str | None) -> None:
    """Put back the implementation `use_packed_attention` replaced (a saved model must load without rlt)."""
    if before is not None and model.config._attn_implementation != before:
        model.set_attn_implementation(before)


# ----------------------------------------------------------------------------- kernels


def varlen_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, sliding_window=None,
                     **kw):
    """Causal attention per sequence with `torch.nn.attention.varlen.varlen_attn` (FlashAttention kernels).

    query [1, H, T, D], key/value [1, Hkv, T, D], `cu_seq_lens_q` int32 [N+1] on the device, `max_length_q`
    an int -> ([1, T, H, D], None). GQA is native (no repeated key/value). No host sync.
    """
    import torch
    from torch.nn.attention.varlen import varlen_attn

    if dropout:
        raise ValueError("rlt_varlen has no attention dropout; use flex_attention")
    q, k, v = (t[0].transpose(0, 1).contiguous() for t in (query, key, value))  # [T, H, D]
    cu, longest = kw.get("cu_seq_lens_q"), kw.get("max_length_q")
    if cu is None:  # no boundaries given: the row is one sequence
        cu = torch.tensor([0, q.shape[0]], dtype=torch.int32, device=q.device)
    cu, longest = cu.to(q.device, torch.int32), int(longest or q.shape[0])
    window = (sliding_window - 1, 0) if sliding_window else (-1, 0)  # (-1, 0) = causal
    out = varlen_attn(q, k, v, cu, cu, longest, longest, scale=scaling, window_size=window,
                      enable_gqa=q.shape[1] != k.shape[1])
    return out.unsqueeze(0), None  # [1, T, H, D]


_BOUNDS: list = [None, None]  # (weak reference to the last cu_seq_lens tensor, its values as a list)


def _bounds(cu, T: int) -> list[int]:
    """`cu_seq_lens` as a list, read once per forward: every layer gets the same tensor object."""
    if cu is None:
        return [0, T]
    ref, values = _BOUNDS
    if ref is not None and ref() is cu:
        return values
    values = cu.tolist()
    _BOUNDS[:] = [weakref.ref(cu), values]
    return values


def per_sequence_sdpa(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kw):
    """Causal SDPA once per sequence of a padding-free row (the fastest on CPU).

    query [1, H, T, D], key/value [1, Hkv, T, D] -> ([1, T, H, D], None).
    """
    import torch
    import torch.nn.functional as F
    from transformers.integrations.sdpa_attention import repeat_kv

    groups = getattr(module, "num_key_value_groups", 1)
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)  # [1, H, T, D]
    p = dropout if module.training else 0.0
    out = [F.scaled_dot_product_attention(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], dropout_p=p,
                                          is_causal=True, scale=scaling)
           for a, b in itertools.pairwise(_bounds(kw.get("cu_seq_lens_q"), query.shape[2]))]
    return torch.cat(out, dim=2).transpose(1, 2).contiguous(), None  # [1, T, H, D]
