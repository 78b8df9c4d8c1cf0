"""Memory and speed of `rlt distill` with LoRA vs full fine-tuning, on CPU (hidden 512, 8 layers).

Builds a Qwen2-style model (hidden 512, 8 layers, MLP 2048: ~33M parameters) and
synthetic traces, then trains each variant with the stage's own trainer in a
fresh process (variants alternate over the rounds, so machine load hits both
alike) and prints, per variant, the process's peak RSS, the peak growth over
the loaded model (weights + gradients + optimizer state + activations), and the
median seconds per optimizer step, with the LoRA / full ratios.

    .venv/bin/python benchmarks/lora.py [--rounds 2] [--steps 5] [--rank 16]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
BATCH = 4


def make_data(root: Path, rows: int) -> tuple[str, str]:
    from stages.commands.tinymodel import TinyModelConfig, run
    from stages.method import tasks

    model = run(TinyModelConfig(out=str(root / "model"), seed=0, hidden=512, layers=8, heads=8, kv_heads=4,
                                intermediate=2048))
    data = tasks.synth_rows(rows, 0, "train", 2, 3)
    path = root / "traces.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": r["id"], "question": r["question"], "solution": r["solution"],
                                          "explanation": r["reasoning_trace"]} for r in data]), path)
    return str(model), str(path)


def measure(model: str, data: str, out: str, steps: int, rank: int) -> dict:
    """One variant in this process: peak RSS after loading and after `steps` optimizer steps, step times."""
    import resource
    import time

    from transformers import TrainerCallback

    from stages.commands import distill
    from stages.config import resolve

    cfg = resolve(distill.DistillConfig, options={
        "model": model, "data": data, "out": out, "device": "cpu", "max_steps": steps, "batch_size": BATCH,
        "lr": 1e-4, "save_steps": 10_000, "logging_steps": 10_000}, overrides=[f"lora.r={rank}"])
    trainer = distill.make_trainer(distill.prepare(cfg))
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux reports KiB)
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t)

    trainer.add_callback(Clock())
    trainer.train()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    return {"loaded_mib": loaded, "peak_mib": peak, "step_s": statistics.median(times[1:] or times),
            "trainable": trainable}


def run_variant(model: str, data: str, root: Path, steps: int, rank: int, i: int) -> dict:
    """`measure` in a fresh process, so each peak RSS belongs to one variant alone."""
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); from benchmarks.lora import measure; "
            f"print(json.dumps(measure({model!r}, {data!r}, {str(root / f'out-{rank}-{i}')!r}, {steps}, {rank})))")
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}  # steadier on a shared CPU
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--rows", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rlt-bench-lora-") as tmp:
        root = Path(tmp)
        model, data = make_data(root, args.rows)
        runs: dict[int, list[dict]] = {0: [], args.rank: []}
        for i in range(args.rounds):
            for rank, done in runs.items():
                done.append(run_variant(model, data, root, args.steps, rank, i))
    best = {rank: {"peak_mib": min(r["peak_mib"] for r in rs),
                   "growth_mib": min(r["peak_mib"] - r["loaded_mib"] for r in rs),
                   "step_s": statistics.median(r["step_s"] for r in rs), "trainable": rs[0]["trainable"]}
            for rank, rs in runs.items()}
    full, lora = best[0], best[args.rank]
    print(f"distill on CPU, hidden 512 x 8 layers, batch {BATCH}, {args.steps} steps, {args.rounds} rounds")
    for name, r in (("full fine-tuning", full), (f"LoRA r={args.rank}", lora)):
        print(f"  {name:17s} trainable {r['trainable'] / 1e6:7.2f}M  peak RSS {r['peak_mib']:7.0f} MiB  "
              f"growth over the loaded model {r['growth_mib']:6.0f} MiB  {r['step_s']:.3f} s/step")
    print(f"  LoRA / full: peak RSS {lora['peak_mib'] / full['peak_mib']:.2f}x, "
          f"training memory {lora['growth_mib'] / max(full['growth_mib'], 1):.2f}x, "
          f"step time {lora['step_s'] / full['step_s']:.2f}x")


if __name__ == "__main__":
    main()
