"""The vllm engine: offline `vllm.LLM` generation (adapters served over their base)."""

from __future__ import annotations

import logging

from stages.engines.base import Engine, EngineConfig, check_sampling, derive_seed, make_completion
from stages.errors import UserError
from stages.method.views import decode_keeping_tags, special_ids_except_tags

log = logging.getLogger(__name__)


class VLLMEngine(Engine):
    """In-process vLLM (GPU); stop strings are kept in the text, like the other engines."""

    def __init__(self, cfg: EngineConfig, model: str):
        try:
            import vllm
        except ImportError:
            raise UserError("vllm is not installed: pip install 'rlt[vllm]'") from None
        from stages.models.loading import check_model_path, load_tokenizer

        check_model_path(model, allow_pickle=cfg.allow_pickle)
        self.cfg, self._vllm = cfg, vllm
        self.tokenizer = load_tokenizer(model, trust_remote_code=cfg.trust_remote_code)
        from stages.models.adapters import vllm_model

        # vLLM schedules its own batches; engine.batch_size only sets how often rows are flushed
        weights, extra, self._lora = vllm_model(model)  # an adapter directory: its base + the adapter
        self.llm = vllm.LLM(model=weights, dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code, **extra)

    def generate(self, prompts, *, n=1, max_new_tokens, temperature, top_p=1.0, seed=0, stop=None):
        check_sampling(n, max_new_tokens, temperature, top_p)
        # One request per sample, seeded derive_seed(seed, i, k): k draws whatever vLLM does with one
        # seed and `n` (prefix caching still shares each prompt's KV cache across its samples).
        items = [(i, k) for i in range(len(prompts)) for k in range(n)]
        params = [self._vllm.SamplingParams(
            n=1, max_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
            seed=derive_seed(seed, i, k), stop=list(stop or []) or None, include_stop_str_in_output=True,
            skip_special_tokens=False, spaces_between_special_tokens=False)  # tags flagged special survive
            for i, k in items]
        outs = self.llm.generate([prompts[i] for i, _ in items], params, use_tqdm=False, lora_request=self._lora)
        drop, result = special_ids_except_tags(self.tokenizer), [[] for _ in prompts]
        for (i, _), o in zip(items, outs):
            c = o.outputs[0]
            text = decode_keeping_tags(self.tokenizer, c.token_ids, drop)
            result[i].append(make_completion(text, len(c.token_ids), stop, c.finish_reason, max_new_tokens))
        return result

    def close(self) -> None:
        self.llm = None


