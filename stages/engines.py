"""Text generation engines behind one interface: `hf`, `openai` and `vllm`.

Used by `rlt generate` (teacher explanations) and `rlt eval` (student answers).
Prompts are already-rendered raw text (chat template applied by the caller with
`engine.tokenizer`), so a prefilled assistant turn is continued verbatim.

    engine = make_engine(EngineConfig(name="hf", batch_size=16), "models/teacher")
    outs = engine.generate(prompts, max_new_tokens=256, temperature=0.7, stop=["<|end_of_explanation|>"])
    engine.close()

- `hf`: batched `model.generate` (left padding, length-sorted batches, KV cache),
  stops on stop strings (checked in decoded text, so multi-token tags work) and eos.
- `openai`: any OpenAI-compatible server (vLLM serve, SGLang, `transformers serve`)
  through the `openai` client: async, `n` samples per request, seeded per request
  (stages/openai_engine.py).
- `vllm`: in-process `vllm.LLM` (the `[vllm]` extra).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

from stages.config import opt
from stages.errors import UserError
from stages.formats import decode_keeping_tags, special_ids_except_tags

log = logging.getLogger(__name__)
ENGINES = ("hf", "openai", "vllm")


@dataclass
class Completion:
    """One generated continuation of a prompt."""

    text: str  # up to and including a matched stop string, nothing after it
    tokens: int  # generated token count
    finished: bool  # stopped by a stop string or eos (False: cut by max_new_tokens)


@dataclass
class EngineConfig:
    """Which backend generates text, and how."""

    name: str = opt("hf", f"Generation engine: {', '.join(ENGINES)}.", flag="--engine")
    batch_size: int = opt(16, "Prompts per generation batch (hf) / per flushed part (openai, vllm: use e.g. 256).",
                          hash=False, flag=True)
    device: str = opt("auto", "Device of the hf engine: auto, cpu, cuda, cuda:1...", hash=False, flag=True)
    dtype: str = opt("auto", "Weights dtype: auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16.")
    base_url: str = opt("http://127.0.0.1:8000/v1", "OpenAI-compatible server root (openai engine).", hash=False,
                        flag=True)
    api_model: str | None = opt(None, "Model name sent to the server (default: the model path).", hash=False, flag=True)
    api_key_env: str = opt("OPENAI_API_KEY", "NAME of the environment variable holding the API key.", hash=False)
    concurrency: int = opt(8, "Requests in flight at once (openai engine).", hash=False)
    timeout: float = opt(120.0, "Seconds before a request times out (openai engine).", hash=False)
    retries: int = opt(3, "Retries of a failed request, with exponential backoff (openai engine).", hash=False)
    trust_remote_code: bool = opt(False, "Allow model code from the model directory / hub.", flag=True)
    allow_pickle: bool = opt(False, "Allow pickle (.bin) weights; only for checkpoints you trust.", flag=True)


def derive_seed(seed: int, *key) -> int:
    """A 31-bit seed from a base seed and any key (stable across runs and machines)."""
    text = json.dumps([seed, *key], default=str)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def cut_at_stop(text: str, stop: list[str] | None) -> tuple[str, bool]:
    """Text up to and including the earliest stop string; (text, matched)."""
    hits = [(text.find(s), s) for s in (stop or []) if s and s in text]
    if not hits:
        return text, False
    pos, s = min(hits)
    return text[: pos + len(s)], True


class Engine:
    """Interface: `tokenizer`, `generate(prompts, ...) -> [[Completion] * n] * len(prompts)`, `close()`."""

    tokenizer = None

    def generate(self, prompts: list[str], *, n: int = 1, max_new_tokens: int, temperature: float,
                 top_p: float = 1.0, seed: int = 0, stop: list[str] | None = None) -> list[list[Completion]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def make_engine(cfg: EngineConfig, model: str) -> Engine:
    """Build the engine named by `cfg.name` for `model` (a model directory or hub id)."""
    if cfg.name not in ENGINES:
        raise UserError(f"unknown engine {cfg.name!r} (valid: {', '.join(ENGINES)})")
    if cfg.batch_size < 1 or cfg.concurrency < 1 or cfg.retries < 0 or cfg.timeout <= 0:
        raise UserError("engine: batch_size and concurrency must be >= 1, retries >= 0, timeout > 0")
    if cfg.name == "vllm":
        return VLLMEngine(cfg, model)
    if cfg.name == "openai":
        from stages.openai_engine import OpenAIEngine

        return OpenAIEngine(cfg, model)
    return HFEngine(cfg, model)


def check_sampling(n: int, max_new_tokens: int, temperature: float, top_p: float) -> None:
    if n < 1 or max_new_tokens < 1:
        raise UserError(f"need n >= 1 and max_new_tokens >= 1 (got n={n}, max_new_tokens={max_new_tokens})")
    if temperature < 0 or not 0 < top_p <= 1:
        raise UserError(f"need temperature >= 0 and 0 < top_p <= 1 (got {temperature}, {top_p})")


# ----------------------------------------------------------------------------- hf


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
        from stages.models import load_model, load_tokenizer

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
        return [self._completion(row, crit.done_len.get(r), stop) for r, row in enumerate(gen)]

    def _completion(self, ids: list[int], done_len: int | None, stop: list[str] | None) -> Completion:
        ids = ids[:done_len] if done_len is not None else ids
        text, matched = cut_at_stop(decode_keeping_tags(self.tokenizer, ids, self._drop), stop)
        return Completion(text=text, tokens=len(ids), finished=done_len is not None or matched)

    def close(self) -> None:
        self.model = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:  # pragma: no cover
            pass


# ----------------------------------------------------------------------------- vllm


class VLLMEngine(Engine):
    """In-process vLLM (GPU); stop strings are kept in the text, like the other engines."""

    def __init__(self, cfg: EngineConfig, model: str):
        try:
            import vllm
        except ImportError:
            raise UserError("vllm is not installed: pip install 'rlt[vllm]'") from None
        from stages.models import check_model_path, load_tokenizer

        check_model_path(model, allow_pickle=cfg.allow_pickle)
        self.cfg, self._vllm = cfg, vllm
        self.tokenizer = load_tokenizer(model, trust_remote_code=cfg.trust_remote_code)
        from stages.lora import vllm_model

        # vLLM schedules its own batches; engine.batch_size only sets how often rows are flushed
        weights, extra, self._lora = vllm_model(model)  # an adapter directory: its base + the adapter
        self.llm = vllm.LLM(model=weights, dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code, **extra)

    def generate(self, prompts, *, n=1, max_new_tokens, temperature, top_p=1.0, seed=0, stop=None):
        check_sampling(n, max_new_tokens, temperature, top_p)
        params = [self._vllm.SamplingParams(
            n=n, max_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
            seed=derive_seed(seed, i), stop=list(stop or []) or None, include_stop_str_in_output=True,
            skip_special_tokens=False, spaces_between_special_tokens=False)  # tags flagged special survive
            for i in range(len(prompts))]
        outs = self.llm.generate(list(prompts), params, use_tqdm=False, lora_request=self._lora)
        drop, result = special_ids_except_tags(self.tokenizer), []
        for o in outs:
            comps = []
            for c in o.outputs:
                text, matched = cut_at_stop(decode_keeping_tags(self.tokenizer, c.token_ids, drop), stop)
                comps.append(Completion(text=text, tokens=len(c.token_ids),
                                        finished=matched or c.finish_reason == "stop"))
            result.append(comps)
        return result

    def close(self) -> None:
        self.llm = None
