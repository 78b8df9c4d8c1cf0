"""Tokens/s of the batched hf engine vs one-prompt-at-a-time generation, on the same prompts.

    .venv/bin/python benchmarks/generate.py                      # builds a tiny teacher in a temp dir
    .venv/bin/python benchmarks/generate.py --model models/teacher --n 64 --batch-size 32

Prompts are teacher views (solution prefilled) of synthetic problems. Both sides
run greedy with the same stop string and token limit; the one-at-a-time side is
the same engine with batch size 1, plus plain `model.generate` per prompt as a
second baseline. Goal: batched >= 4x the one-at-a-time tokens/s on CPU.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _prompts(tok, n: int) -> list[str]:
    from stages.method import tasks
    from stages.method import views as formats
    from stages.method.settings import PromptsConfig

    rows = tasks.synth_rows(n, 0, "train", 2, 3)
    system = PromptsConfig().teacher_system
    return [formats.teacher_view(tok, system, r["question"], r["solution"]) for r in rows]


def _timed(fn) -> tuple[float, int]:
    t0 = time.perf_counter()
    tokens = fn()
    return time.perf_counter() - t0, tokens


def _engine_tokens(engine, prompts, max_new_tokens):
    from stages.method.views import END_EXPLANATION

    outs = engine.generate(prompts, max_new_tokens=max_new_tokens, temperature=0.0, stop=[END_EXPLANATION])
    return sum(c.tokens for cs in outs for c in cs)


def _plain_tokens(engine, prompts, max_new_tokens):
    import torch

    model, tok, total = engine.model, engine.tokenizer, 0
    for p in prompts:
        enc = tok(p, return_tensors="pt", add_special_tokens=False).to(model.device)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
        total += out.shape[1] - enc["input_ids"].shape[1]
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="teacher model dir (default: build a tiny one)")
    ap.add_argument("--n", type=int, default=32, help="prompts")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from stages.engines.base import EngineConfig
    from stages.engines.hf import HFEngine

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from stages.commands.tinymodel import TinyModelConfig, run

            model = str(run(TinyModelConfig(out=str(Path(tmp) / "teacher"), seed=0)))
        batched = HFEngine(EngineConfig(device=args.device, batch_size=args.batch_size), model)
        single = HFEngine(EngineConfig(device=args.device, batch_size=1), model)
        prompts = _prompts(batched.tokenizer, args.n)
        _engine_tokens(batched, prompts[:2], 4)  # warm-up
        results = {
            f"batched hf engine (batch {args.batch_size})": _timed(lambda: _engine_tokens(batched, prompts, args.max_new_tokens)),
            "hf engine, one prompt at a time": _timed(lambda: _engine_tokens(single, prompts, args.max_new_tokens)),
            "plain model.generate, one at a time": _timed(lambda: _plain_tokens(single, prompts, args.max_new_tokens)),
        }
    print(f"{args.n} prompts, max_new_tokens {args.max_new_tokens}, device {args.device}, "
          f"torch threads {torch.get_num_threads()}")
    for name, (secs, tokens) in results.items():
        rate = tokens / secs
        print(f"  {name:40s} {tokens:6d} tokens  {secs:7.2f} s  {rate:8.1f} tok/s")
    rates = [t / s for s, t in results.values()]
    print(f"speed-up of batched vs one-at-a-time engine: {rates[0] / rates[1]:.1f}x "
          f"(vs plain model.generate: {rates[0] / rates[2]:.1f}x; goal >= 4x)")


if __name__ == "__main__":
    main()
