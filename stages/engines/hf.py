"""The hf engine: transformers `generate` on the local device."""

from __future__ import annotations

import logging

from stages.engines.base import Completion, Engine, EngineConfig, check_sampling, derive_seed, make_completion
from stages.method.views import decode_keeping_tags, special_ids_except_tags

log = logging.getLogger(__name__)


class _StopOnText:
    """StoppingCriteria: a row is done when its generated tail contains a stop string or eos."""

    def __init__(self, tok, prompt_len: int, stop: list[str], eos_ids: set[int]):
        self.tok, self.prompt_len, self.stop, self.eos_ids = tok, prompt_len, stop, eos_ids
        self.window = max((len(s) for s in stop), default=0) + 4  # tokens >= 1 char each
        self.done_len: dict[int, int] = {}  # row -> generated tokens when it finished

    def __call__(self, input_ids, scores, **kw):
        import torch

        gen = input_ids[:, self.prompt_len:]  # [B, T]
        done = torch.zeros(gen.shape[0], dtype=torch.bool, device=input_ids.device)
        for row in range(gen.shape[0]):
            if row in self.done_len:
                done[row] = True
                continue
            if int(gen[row, -1]) in self.eos_ids or self._has_stop(gen[row, -self.window:]):
                self.done_len[row] = gen.shape[1]
                done[row] = True
        return done

    def _has_stop(self, tail) -> bool:
        if not self.stop:
            return False
        text = self.tok.decode(tail.tolist(), skip_special_tokens=False)
        return any(s in text for s in self.stop)


class HFEngine(Engine):
    """Batched `transformers` generation on CPU or GPU."""

    def __init__(self, cfg: EngineConfig, model: str):
        from stages.models.loading import load_model, load_tokenizer

        self.cfg = cfg
        self.tokenizer = load_tokenizer(model, trust_remote_code=cfg.trust_remote_code, padding_side="left")
        self.model = load_model(model, device=cfg.device, dtype=cfg.dtype,
                                trust_remote_code=cfg.trust_remote_code, allow_pickle=cfg.allow_pickle)
        self.model.eval()
        eos = self.model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos] if eos is not None else []
        self.eos_ids = {int(e) for e in eos} | ({self.tokenizer.eos_token_id} - {None})
        self._drop = special_ids_except_tags(self.tokenizer)

    def generate(self, prompts, *, n=1, max_new_tokens, temperature, top_p=1.0, seed=0, stop=None):
        check_sampling(n, max_new_tokens, temperature, top_p)
        items = [(i, k) for i in range(len(prompts)) for k in range(n)]
        lengths = [len(ids) for ids in self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
        items.sort(key=lambda it: (-lengths[it[0]], it))  # longest first: memory problems show at once
        out: list[list[Completion | None]] = [[None] * n for _ in prompts]
        bs = self.cfg.batch_size
        for b in range(0, len(items), bs):
            chunk = items[b: b + bs]
            batch = self.generate_batch([prompts[i] for i, _ in chunk], max_new_tokens=max_new_tokens,
                                        temperature=temperature, top_p=top_p,
                                        seed=derive_seed(seed, b // bs), stop=stop)
            for (i, k), c in zip(chunk, batch):
                out[i][k] = c
        return out

    def generate_batch(self, prompts: list[str], *, max_new_tokens: int, temperature: float, top_p: float,
                       seed: int, stop: list[str] | None) -> list[Completion]:
        """One padded `model.generate` call over `prompts` (one completion each)."""
        import torch
        from transformers import GenerationConfig, StoppingCriteriaList

        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = enc.to(self.model.device)
        prompt_len = enc["input_ids"].shape[1]
        crit = _StopOnText(self.tokenizer, prompt_len, list(stop or []), self.eos_ids)
        sample = temperature > 0
        gen_cfg = GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=sample, temperature=temperature if sample else None,
            top_p=top_p if sample else None, top_k=0 if sample else None, num_beams=1, use_cache=True,
            pad_token_id=self.tokenizer.pad_token_id, eos_token_id=sorted(self.eos_ids) or None)
        torch.manual_seed(seed)
        with torch.inference_mode():
            seqs = self.model.generate(**enc, generation_config=gen_cfg,
                                       stopping_criteria=StoppingCriteriaList([crit]))
        gen = seqs[:, prompt_len:].tolist()  # [B, T]
        return [self._completion(row, crit.done_len.get(r), stop, max_new_tokens) for r, row in enumerate(gen)]

    def _completion(self, ids: list[int], done_len: int | None, stop: list[str] | None,
                    max_new_tokens: int) -> Completion:
        ids = ids[:done_len] if done_len is not None else ids
        reason = "stop" if done_len is not None else "length"  # eos or a stop string, else max_new_tokens
        return make_completion(decode_keeping_tags(self.tokenizer, ids, self._drop), len(ids), stop, reason,
                               max_new_tokens)

    def close(self) -> None:
        self.model = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover
            pass


