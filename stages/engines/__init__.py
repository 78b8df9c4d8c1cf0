"""Generation engines: a base (`stages.engines.base`), one module per engine, the factory here.

    engine = make_engine(EngineConfig(name="hf"), "runs/teacher")
    completions = engine.generate(prompts, n=4, max_new_tokens=256, temperature=0.7)

Adding an engine = one module with an `Engine` subclass and one branch below.
"""

from __future__ import annotations

from stages.engines.base import (  # noqa: F401  (the engines' public face)
    ENGINES,
    Completion,
    Engine,
    EngineConfig,
    check_sampling,
    cut_at_stop,
    derive_seed,
)
from stages.errors import UserError


def make_engine(cfg: EngineConfig, model: str) -> Engine:
    """Build the engine named by `cfg.name` for `model` (a model directory or hub id)."""
    if cfg.name not in ENGINES:
        raise UserError(f"unknown engine {cfg.name!r} (valid: {', '.join(ENGINES)})")
    if cfg.batch_size < 1 or cfg.concurrency < 1 or cfg.retries < 0 or cfg.timeout <= 0:
        raise UserError("engine: batch_size and concurrency must be >= 1, retries >= 0, timeout > 0")
    if cfg.name == "vllm":
        from stages.engines.vllm import VLLMEngine

        return VLLMEngine(cfg, model)
    if cfg.name == "openai":
        from stages.engines.openai import OpenAIEngine

        return OpenAIEngine(cfg, model)
    from stages.engines.hf import HFEngine

    return HFEngine(cfg, model)
