"""The CUDA padding-free kernel (torch varlen FlashAttention) against each sequence alone, without host syncs."""

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

LENGTHS = [37, 5, 120, 64, 1]


def _model():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    conf = Qwen2Config(vocab_size=256, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, attn_implementation="sdpa")
    return Qwen2ForCausalLM(conf).to("cuda", torch.bfloat16)


def test_varlen_matches_each_sequence_and_never_syncs():
    from stages.models import attention

    if attention.choose(_model(), "cuda") not in (attention.VARLEN, "flash_attention_2"):
        pytest.skip("this GPU has no varlen FlashAttention kernel (needs sm80+ and bf16)")
    model = _model()
    g = torch.Generator().manual_seed(1)
    seqs = [torch.randint(0, 256, (n,), generator=g).cuda() for n in LENGTHS]
    with torch.no_grad():
        want = torch.cat([model(input_ids=s[None]).logits[0].float() for s in seqs])
    cu = torch.tensor([0, *torch.tensor(LENGTHS).cumsum(0).tolist()], dtype=torch.int32).cuda()
    batch = {"input_ids": torch.cat(seqs)[None], "position_ids": torch.cat([torch.arange(n) for n in LENGTHS])
             [None].cuda(), "cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": max(LENGTHS),
             "max_length_k": max(LENGTHS)}
    before = attention.use_packed_attention(model, "cuda")
    assert before == "sdpa"
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any device-to-host read in forward or backward raises
    try:
        out = model(**batch)
        out.logits.float().square().mean().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert (out.logits[0].float() - want).abs().max() < 5e-2  # bf16
    assert model.model.embed_tokens.weight.grad is not None
    attention.restore(model, before)
    assert model.config._attn_implementation == "sdpa"
