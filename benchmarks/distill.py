"""Training throughput of `rlt distill`: padded batches vs padding-free vs packed, on mixed-length traces.

Builds the tiny model and a traces file whose explanations have very different
lengths (as real reasoning traces do), trains each variant for the same number
of passes over the same rows with the stage's own trainer, collator and loss
(variants interleaved, so machine load hits all alike), and prints real
(non-padding) tokens/s and the ratio to padded batches.

    .venv/bin/python benchmarks/distill.py [--rounds 3] [--rows 96] [--batch 16]
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
    from stages.commands.tinymodel import TinyModelConfig, run
    from stages.method import tasks

    model = run(TinyModelConfig(out=str(root / "tiny"), seed=0))
    rng = random.Random(seed)
    data = tasks.synth_rows(rows, seed, "train", 2, 3)
    for r in data:  # skewed lengths: mostly short traces, a few long ones
        r["explanation"] = "\n\n".join([r["reasoning_trace"]] * rng.choice([1, 1, 1, 2, 2, 3, 4, 6, 8, 12]))
    path = root / "traces.parquet"
    pq.write_table(pa.Table.from_pylist([{k: r[k] for k in ("id", "question", "solution", "explanation")}
                                         for r in data]), path)
    return str(model), str(path)


def build(model: str, data: str, out: Path, batch: int, **variant):
    """The stage's own trainer for one variant and its collated batches over every row."""
    import torch

    from stages.commands import distill
    from stages.config import resolve

    cfg = resolve(distill.DistillConfig, options={
        "model": model, "data": data, "out": str(out), "device": "cpu", "max_steps": 1, "batch_size": batch,
        "max_length": 2048, "lr": 1e-4, **variant})
    trainer = distill.make_trainer(distill.prepare(cfg))
    ds = trainer.train_dataset
    order = list(range(len(ds)))
    random.Random(0).shuffle(order)  # the same random batches for padded and padding-free
    bs = cfg.batch_size
    batches = [trainer.data_collator([ds[j] for j in order[i:i + bs]]) for i in range(0, len(order), bs)]
    return trainer, torch.optim.AdamW(trainer.model.parameters(), lr=1e-4), batches


def real_tokens(batch) -> int:
    if "attention_mask" in batch:
        return int(batch["attention_mask"].sum())
    return int(batch["input_ids"].numel())


def one_pass(trainer, optim, batches) -> float:
    """Seconds for a training pass (loss, backward, optimizer step) over every batch."""
    t0 = time.perf_counter()
    for b in batches:
        optim.zero_grad()
        trainer.compute_loss(trainer.model, dict(b)).backward()
        optim.step()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3, help="Timed passes per variant, interleaved.")
    ap.add_argument("--rows", type=int, default=96)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    import logging

    logging.disable(logging.WARNING)
    variants = {
        f"padded bs{a.batch}": {},
        f"padding-free bs{a.batch}": {"padding_free": True},
        "packed 2048/step": {"packing": True, "batch_size": 1},
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model, data = make_data(root, a.rows, a.seed)
        runs = {name: build(model, data, root / f"v{i}", a.batch, **v) for i, (name, v) in enumerate(variants.items())}
        for trainer, optim, batches in runs.values():  # warm-up
            one_pass(trainer, optim, batches[:1])
        seconds = dict.fromkeys(runs, 0.0)
        for _ in range(a.rounds):  # interleaved, so a change in machine load hits every variant alike
            for name, (trainer, optim, batches) in runs.items():
                seconds[name] += one_pass(trainer, optim, batches)
    tokens = {name: a.rounds * sum(real_tokens(b) for b in runs[name][2]) for name in runs}
    base_name = f"padded bs{a.batch}"
    base = tokens[base_name] / seconds[base_name]
    print(f"distill training throughput, tiny model on CPU, {a.rows} mixed-length traces, {a.rounds} interleaved "
          f"passes (real tokens/s, padding excluded)")
    for name in runs:
        rate = tokens[name] / seconds[name]
        print(f"  {name:22s} {rate:9,.0f} tokens/s  ({tokens[name]:,} tokens in {seconds[name]:.1f} s)  "
              f"x{rate / base:.2f} vs {base_name}")


if __name__ == "__main__":
    main()
