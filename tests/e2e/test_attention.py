"""Padding-free attention kernels (stages/models/attention.py) against each sequence run on its own.

The CUDA kernel (torch's varlen_attn) cannot run on CPU: its wrapper is checked
(1) on the meta device through the real library op, where any host read of a
device tensor raises, and (2) for numbers, with varlen_attn replaced by a
reference that also checks the arguments against the documented contract.
"""

import itertools

import pytest
import torch
import torch.nn.functional as F

from stages.models import attention

LENGTHS = [5, 1, 9, 3]


def _model(device=None, dtype=torch.float32, seed=0):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    conf = Qwen2Config(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, attn_implementation="sdpa")
    with torch.device(device or "cpu"):
        return Qwen2ForCausalLM(conf).to(dtype).eval()


def _packed(lengths, device="cpu"):
    """What TRL's padding-free collator gives the model: one row, restarting positions, cu_seq_lens."""
    g = torch.Generator().manual_seed(1)
    seqs = [torch.randint(0, 97, (n,), generator=g) for n in lengths]
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    kw = {"input_ids": torch.cat(seqs)[None], "position_ids": torch.cat([torch.arange(n) for n in lengths])[None],
          "cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": max(lengths), "max_length_k": max(lengths)}
    return seqs, {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in kw.items()}


def _one_by_one(model, seqs):
    with torch.no_grad():
        return torch.cat([model(input_ids=s[None]).logits[0] for s in seqs])


def _reference_varlen(q, k, v, cu_q, cu_k, max_q, max_k, *, scale=None, window_size=(-1, -1), enable_gqa=False,
                      **kw):
    """varlen_attn's contract, computed with SDPA per sequence. q [T, H, D], k/v [T, Hkv, D] -> [T, H, D]"""
    assert q.dim() == 3 and q.shape[0] == k.shape[0] and q.stride(-1) == 1
    assert cu_q.dtype == torch.int32 and cu_q.device == q.device and isinstance(max_q, int)
    assert tuple(window_size) == (-1, 0) and enable_gqa == (q.shape[1] != k.shape[1])
    bounds = cu_q.tolist()
    assert max_q >= max(b - a for a, b in itertools.pairwise(bounds))
    out = [F.scaled_dot_product_attention(*(t[a:b].transpose(0, 1)[None] for t in (q, k, v)), is_causal=True,
                                          scale=scale, enable_gqa=enable_gqa)[0].transpose(0, 1)
           for a, b in itertools.pairwise(bounds)]
    return torch.cat(out)


@pytest.mark.parametrize("kernel", [attention.PER_SEQUENCE, attention.VARLEN])
def test_packed_logits_match_each_sequence_alone(kernel, monkeypatch):
    from torch.nn.attention import varlen
    from transformers import AttentionInterface

    monkeypatch.setattr(varlen, "varlen_attn", _reference_varlen)
    model = _model()
    seqs, batch = _packed(LENGTHS)
    want = _one_by_one(model, seqs)
    AttentionInterface.register(attention.VARLEN, attention.varlen_attention)
    AttentionInterface.register(attention.PER_SEQUENCE, attention.per_sequence_sdpa)
    model.set_attn_implementation(kernel)
    with torch.no_grad():
        got = model(**batch).logits[0]
    assert (got - want).abs().max() < 1e-5
    model.set_attn_implementation("sdpa")
    with torch.no_grad():  # sanity: without a kernel that splits sequences, they attend across each other
        assert (model(input_ids=batch["input_ids"]).logits[0] - want).abs().max() > 1e-3


def test_varlen_kernel_never_reads_device_tensors_on_the_host():
    """The real varlen_attn op on meta tensors: .item()/.tolist() anywhere in forward or backward would raise."""
    from transformers import AttentionInterface

    model = _model(device="meta", dtype=torch.bfloat16)
    AttentionInterface.register(attention.VARLEN, attention.varlen_attention)
    model.set_attn_implementation(attention.VARLEN)
    model.train()
    _, batch = _packed(LENGTHS, device="meta")
    out = model(**batch, labels=batch["input_ids"])
    out.loss.backward()
    assert out.logits.shape == (1, sum(LENGTHS), 97)
    model.set_attn_implementation(attention.PER_SEQUENCE)
    with pytest.raises((RuntimeError, NotImplementedError)):  # the CPU path reads bounds: meta refuses
        model(**batch)


def test_per_sequence_reads_bounds_once_per_forward(monkeypatch):
    model = _model()
    model.set_attn_implementation("sdpa")
    before = attention.use_packed_attention(model, "cpu")
    assert before == "sdpa" and model.config._attn_implementation == attention.PER_SEQUENCE
    _, batch = _packed(LENGTHS)
    reads = []
    real = attention._bounds

    def counting(cu, T):
        values = real(cu, T)
        reads.append(attention._BOUNDS[1] is values)
        return values

    monkeypatch.setattr(attention, "_bounds", counting)
    calls = []
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self, _t=torch.Tensor.tolist: calls.append(1) or _t(self))
    with torch.no_grad():
        model(**batch)
    assert len(reads) == 2 and len(calls) == 1  # two layers, one read
    attention.restore(model, before)
    assert model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("facts, want", [
    (("cpu", False, 0.0, False, False, False), attention.PER_SEQUENCE),
    (("cpu", True, 0.1, False, True, True), attention.PER_SEQUENCE),
    (("cpu", False, 0.0, True, False, False), "sdpa"),
    (("cuda", True, 0.0, False, True, True), "flash_attention_2"),
    (("cuda", True, 0.0, False, False, True), attention.VARLEN),
    (("cuda", True, 0.0, True, False, True), attention.VARLEN),
    (("cuda", False, 0.0, False, True, True), "flex_attention"),
    (("cuda", True, 0.1, False, True, True), "flex_attention"),
    (("cuda", True, 0.0, False, False, False), "flex_attention"),
])
def test_pick(facts, want):
    assert attention.pick(*facts) == want
