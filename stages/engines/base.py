"""The engine interface: `Engine`, its `Completion`s and `EngineConfig`; engines are `hf`, `openai`, `vllm`.

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
  (stages/engines/openai.py).
- `vllm`: in-process `vllm.LLM` (the `[vllm]` extra).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

from stages.config import above, at_least, opt
from stages.errors import UserError
from stages.models.loading import DEVICE_HELP, check_device

log = logging.getLogger(__name__)
ENGINES = ("hf", "openai", "vllm")


@dataclass
class Completion:
    """One generated continuation of a prompt (engines build it with `make_completion`)."""

    text: str  # up to and including a matched stop string, nothing after it; valid Unicode
    tokens: int  # generated token count
    finished: bool  # stopped by a stop string or eos (False: cut by max_new_tokens)
    damaged: bool = False  # the engine's text was not valid Unicode: the invalid part is U+FFFD (`valid_text`)


@dataclass
class EngineConfig:
    """Which backend generates text, and how."""

    name: str = opt("hf", f"Generation engine: {', '.join(ENGINES)}.", flag="--engine", choices=ENGINES)
    batch_size: int = opt(16, "Sequences generated together on one device (questions x num_generations; hf) / "
                             "per flushed part (openai, vllm: use e.g. 256).",
                          hash=False, flag=True, check=at_least(1))
    device: str = opt("auto", DEVICE_HELP, hash=False, flag=True, check=check_device)
    dtype: str = opt("auto", "Weights dtype: auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16.")
    base_url: str = opt("http://127.0.0.1:8000/v1", "OpenAI-compatible server root (openai engine).", hash=False,
                        flag=True)
    api_model: str | None = opt(None, "Model name sent to the server (default: the model path).", hash=False, flag=True)
    api_key_env: str = opt("OPENAI_API_KEY", "NAME of the environment variable holding the API key.", hash=False)
    concurrency: int = opt(8, "Requests in flight at once (openai engine).", hash=False, check=at_least(1))
    timeout: float = opt(120.0, "Seconds before a request times out (openai engine).", hash=False, check=above(0))
    retries: int = opt(3, "Retries of a failed request, with exponential backoff (openai engine).", hash=False, check=at_least(0))
    trust_remote_code: bool = opt(False, "Allow model code from the model directory / hub.", flag=True)
    allow_pickle: bool = opt(False, "Allow pickle (.bin) weights; only for checkpoints you trust.", flag=True)


def derive_seed(seed: int, *key) -> int:
    """A 31-bit seed from a base seed and any key (stable across runs and machines)."""
    text = json.dumps([seed, *key], default=str)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) & 0x7FFFFFFF


def valid_text(text: str | None) -> tuple[str, bool]:
    """Text as an engine gave it, made valid Unicode -> (text, damaged).

    Models emit half of a UTF-16 surrogate pair when the pair is split across tokens, and servers
    pass it on as a JSON escape (`\\ud835`): such a lone surrogate cannot be encoded (UTF-8,
    Parquet, the console) and is replaced by U+FFFD, the Unicode replacement character, as
    UTF-8 decoders do with invalid bytes; a pair given as two code points is joined. `damaged` is
    True when something was replaced. None (a server's null text) is "".
    """
    if text is None:
        return "", False
    try:
        text.encode("utf-8")
        return text, False
    except UnicodeEncodeError:
        fixed = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return fixed, fixed.count("\ufffd") > text.count("\ufffd")


def make_completion(text: str | None, tokens: int, stop: list[str] | None, reason: str | None,
                    max_new_tokens: int) -> Completion:
    """The one rule every engine applies to what it generated: the text made valid (`valid_text`),
    cut after the earliest stop string (`cut_at_stop`), and whether it finished, from the engine's own
    report `reason`: a completion is cut off (`finished` False, `truncated` in the rows) when the
    engine says it stopped at its token limit ("length": OpenAI-compatible servers and vLLM; the hf
    engine when a row reached max_new_tokens without eos or a stop string) and its text holds no stop
    string (a server that ignores `stop` may run on past one: the text ends there). Any other reason
    ("stop", "eos_token", "stop_sequence", ...) is finished; a server that reports none is taken as
    cut off when the completion used all `max_new_tokens` tokens."""
    text, damaged = valid_text(text)
    text, matched = cut_at_stop(text, stop)
    at_limit = reason == "length" if reason is not None else tokens >= max_new_tokens
    return Completion(text=text, tokens=int(tokens), finished=matched or not at_limit, damaged=damaged)


def warn_damaged(count: int, out, logger: logging.Logger) -> None:
    """One warning line for the `count` completions of a run whose text `valid_text` repaired
    (recorded as `damaged_text` in the output's manifest)."""
    if count:
        logger.warning("%s: %d generated texts were not valid Unicode (e.g. a lone UTF-16 surrogate from the "
                       "engine): the invalid characters are now U+FFFD and the rows are kept (damaged_text in "
                       "the manifest)", out, count)


def cut_at_stop(text: str, stop: list[str] | None) -> tuple[str, bool]:
    """Text up to and including the earliest stop string; (text, matched)."""
    hits = [(text.find(s), s) for s in (stop or []) if s and s in text]
    if not hits:
        return text, False
    pos, s = min(hits)
    return text[: pos + len(s)], True


class Engine:
    """Interface: `tokenizer`, `generate(prompts, ...) -> [[Completion] * n] * len(prompts)`, `close()`.

    At temperature > 0 the n samples of a prompt (and the samples of a prompt repeated in `prompts`)
    are separate draws, each seeded from `seed` and its position: every engine keeps that rule (hf:
    one row per sample; vllm: one request per sample; openai: checks the server, see its module).
    """

    tokenizer = None

    def generate(self, prompts: list[str], *, n: int = 1, max_new_tokens: int, temperature: float,
                 top_p: float = 1.0, seed: int = 0, stop: list[str] | None = None) -> list[list[Completion]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def check_generations(num_generations: int, temperature: float) -> None:
    """Refuse several generations per prompt with greedy decoding (`rlt generate` and `rlt eval`): identical copies."""
    if num_generations > 1 and temperature <= 0:
        raise UserError(f"--num-generations {num_generations} with greedy decoding (--temperature 0) gives "
                        f"{num_generations} identical copies; set --temperature > 0 or --num-generations 1")


def check_sampling(n: int, max_new_tokens: int, temperature: float, top_p: float) -> None:
    """The sampling arguments of `Engine.generate` (configs check the same ranges on their fields):
    n >= 1, max_new_tokens >= 1, temperature >= 0 (0 = greedy), 0 < top_p <= 1. Raises UserError."""
    if n < 1 or max_new_tokens < 1:
        raise UserError(f"need n >= 1 and max_new_tokens >= 1 (got n={n}, max_new_tokens={max_new_tokens})")
    if temperature < 0 or not 0 < top_p <= 1:
        raise UserError(f"need temperature >= 0 and 0 < top_p <= 1 (got {temperature}, {top_p})")
