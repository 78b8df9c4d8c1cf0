"""Training throughput of `rlt distill`: padded batches vs padding-free vs packed, on mixed-length traces.

Builds the tiny model and a traces file whose explanations have very different
lengths (as real reasoning traces do), trains each variant for the same number
of optimizer steps through the stage's own trainer, and prints real
(non-padding) tokens/s and the ratio to padded batches.

    .venv/bin/python benchmarks/distill.py [--steps 12] [--rows 256] [--batch 16]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def make_data(root: Path, rows: int, seed: int) -> tuple[str, str]:
    from stages import tasks
    from stages.tinymodel import TinyModelConfig, run

    model = run(TinyModelConfig(out=str(root / "tiny"), seed=0))
    rng = random.Random(seed)
    data = tasks.synth_rows(rows, seed, "train", 2, 3)
    for r in data:  # skewed lengths: mostly short traces, a few long ones
        r["explanation"] = "\n\n".join([r["reasoning_trace"]] * rng.choice([1, 1, 1, 2, 2, 3, 4, 6, 8, 12]))
    path = root / "traces.parquet"
    pq.write_table(pa.Table.from_pylist([{k: r[k] for k in ("id", "question", "solution", "explanation")}
                                         for r in data]), path)
    return str(model), str(path)


def measure(model: str, data: str, out: Path, steps: int, batch: int, **variant) -> tuple[float, int, float]:
    from stages import distill
    from stages.config import resolve

    cfg = resolve(distill.DistillConfig, options={
        "model": model, "data": data, "out": str(out), "device": "cpu", "max_steps": steps + 2,
        "batch_size": batch, "lr": 1e-3, "save_steps": 10_000, "logging_steps": 10_000,
        "max_length": 2048, **variant})
    trainer = distill.make_trainer(distill.prepare(cfg))

    class Timer(__import__("transformers").TrainerCallback):  # skip 2 warm-up steps
        t0 = tokens0 = None

        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 2:
                Timer.t0, Timer.tokens0 = time.perf_counter(), state.num_input_tokens_seen

    trainer.add_callback(Timer())
    trainer.train()
    dt = time.perf_counter() - Timer.t0
    tokens = trainer.state.num_input_tokens_seen - Timer.tokens0
    return tokens / dt, tokens, dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    import logging

    import torch

    logging.disable(logging.WARNING)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model, data = make_data(root, a.rows, a.seed)
        small = max(1, a.batch // 4)
        variants = {  # name -> (options, timed steps): comparisons at equal rows per step
            f"padded bs{a.batch}": ({}, a.steps),
            f"padding-free bs{a.batch}": ({"padding_free": True}, a.steps),
            f"padded bs{small}": ({"batch_size": small}, a.steps * 2),
            f"padding-free bs{small}": ({"padding_free": True, "batch_size": small}, a.steps * 2),
            "packed 1x2048": ({"packing": True, "batch_size": 1}, a.steps * 2),
        }
        results = {}
        for i, (name, (v, steps)) in enumerate(variants.items()):
            results[name] = measure(model, data, root / f"v{i}", steps, a.batch, **v)
    print(f"distill throughput, tiny model on CPU, {a.rows} mixed-length traces (real tokens/s, padding excluded)")
    for name, (rate, tokens, dt) in results.items():
        bs = name.split()[-1]
        ref = results.get(f"padded {bs}" if bs.startswith("bs") else f"padded bs{a.batch}")[0]
        print(f"  {name:22s} {rate:9,.0f} tokens/s  ({tokens:,} tokens in {dt:.1f} s)  "
              f"x{rate / ref:.2f} vs padded {bs if bs.startswith('bs') else f'bs{a.batch}'}")


if __name__ == "__main__":
    main()
