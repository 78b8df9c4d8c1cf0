"""One-GPU benchmark of rlt at the Qwen2.5-0.5B shape (random weights, no network): prints one table, writes JSON.

    benchmarks/gpu.sh [--out gpu.json]      # one H100/H200, about 6 minutes at most
    benchmarks/gpu.sh --smoke               # the same code on CPU with tiny shapes (under 2 minutes)

Rows (each side measured in the same run, ratios printed):
- distill tokens/s: padded batches vs padding-free vs packed (TRL's collator and pack_dataset, the
  attention stages/models/attention.py picks), mixed-length rows up to 2048 tokens;
- reward rows/s: batched RLTReward vs one completion at a time with full logits (the reference
  loop), and the two bare decoder bodies / the floor (bodies + lm_head at span positions only);
- hf generate tokens/s: batched vs one prompt at a time (the hf engine);
- teach seconds per step (4 prompts x 8 completions x 256 tokens, hf generation).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
NEEDED = {"torch": "torch", "transformers": "transformers", "trl": "trl", "datasets": "datasets",
          "math_verify": "math-verify", "accelerate": "accelerate"}
SHAPES = {  # Qwen2.5-0.5B: hidden 896, 24 layers, 14 heads, 2 kv heads, MLP 4864, vocabulary 151936
    "gpu": {"hidden": 896, "layers": 24, "heads": 14, "kv_heads": 2, "intermediate": 4864, "vocab": 151936,
            "max_len": 2048, "sft_rows": 64, "sft_batch": 8, "reward_rows": 64, "reward_tokens": 1000,
            "reward_batch": 16, "gen_prompts": 32, "gen_one": 4, "gen_tokens": 128, "teach_prompts": 4,
            "teach_generations": 8, "teach_tokens": 256, "teach_steps": 3},
    "smoke": {"hidden": 64, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate": 128, "vocab": 1024,
              "max_len": 96, "sft_rows": 12, "sft_batch": 4, "reward_rows": 4, "reward_tokens": 40,
              "reward_batch": 2, "gen_prompts": 4, "gen_one": 2, "gen_tokens": 8, "teach_prompts": 2,
              "teach_generations": 2, "teach_tokens": 8, "teach_steps": 2},
}


def missing_dependencies() -> list[str]:
    return [pip for mod, pip in NEEDED.items() if importlib.util.find_spec(mod) is None]


class Clock:
    """Wall time of a block, synchronizing the GPU at both ends."""

    def __init__(self, device: str):
        self.device = device

    def __call__(self, fn) -> float:
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if self.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0


def model_at_shape(s: dict, device: str, dtype, seed: int, tok=None):
    """A random Qwen2 at shape `s`, vocabulary s["vocab"] (the tokenizer's ids are its first rows)."""
    import torch

    from stages.commands.tinymodel import TinyModelConfig, build

    torch.manual_seed(seed)
    cfg = TinyModelConfig(seed=seed, hidden=s["hidden"], layers=s["layers"], heads=s["heads"],
                          kv_heads=s["kv_heads"], intermediate=s["intermediate"], max_positions=8192)
    model, tok = build(cfg) if tok is None else _build_with(cfg, tok)
    model.resize_token_embeddings(s["vocab"], mean_resizing=False)
    return model.to(device=device, dtype=dtype), tok


def _build_with(cfg, tok):
    import tempfile as tf

    from stages.commands.tinymodel import build

    with tf.TemporaryDirectory() as d:
        tok.save_pretrained(d)
        cfg.tokenizer = d
        return build(cfg)


# ----------------------------------------------------------------------------- distill


def sft_rows(s: dict, seed: int = 0) -> list[dict]:
    """Mixed-length rows (mostly short, a few up to max_len), prompt tokens masked out of the loss."""
    rng = random.Random(seed)
    rows = []
    for _ in range(s["sft_rows"]):
        n = min(s["max_len"], int(s["max_len"] * rng.choice([0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0])) + 8)
        prompt = max(1, n // 8)
        rows.append({"input_ids": [rng.randrange(16, s["vocab"]) for _ in range(n)],
                     "completion_mask": [0] * prompt + [1] * (n - prompt)})
    return rows


def sft_batches(s: dict, rows: list[dict], variant: str) -> list[dict]:
    from datasets import Dataset
    from trl.data_utils import pack_dataset
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    collate = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=variant != "padded")
    bs = s["sft_batch"]
    if variant == "packed":
        rows = list(pack_dataset(Dataset.from_list(rows), s["max_len"], strategy="bfd"))
        mean = sum(len(r["input_ids"]) for r in sft_rows(s)) / s["sft_rows"]
        bs = max(1, round(s["sft_batch"] * mean / s["max_len"]))  # about the same tokens per step
    return [collate(rows[i:i + bs]) for i in range(0, len(rows), bs)]


def distill_bench(s: dict, device: str, dtype) -> dict:
    """Real (non-padding) tokens/s of a training step (forward, backward, AdamW) per batch layout."""
    import torch

    from stages.models import attention

    model, _ = model_at_shape(s, device, dtype, seed=0)
    model.train()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-5)
    rows, clock, out = sft_rows(s), Clock(device), {}

    def step(batch):
        optim.zero_grad(set_to_none=True)
        model(**{k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}).loss.backward()
        optim.step()

    for variant in ("padded", "padding_free", "packed"):
        batches = sft_batches(s, rows, variant)
        before = attention.use_packed_attention(model, device) if variant != "padded" else None
        kernel = model.config._attn_implementation
        step(batches[0])  # warm-up (kernels, allocator)
        tokens = sum(int(b["attention_mask"].sum()) if "attention_mask" in b else b["input_ids"].numel()
                     for b in batches)
        secs = clock(lambda bs=batches: [step(b) for b in bs])
        attention.restore(model, before)
        out[variant] = {"tokens_per_s": tokens / secs, "tokens": tokens, "seconds": secs, "attention": kernel}
    return out


# ----------------------------------------------------------------------------- reward


def reward_bench(s: dict, device: str, dtype) -> dict:
    import numpy as np
    import torch
    from reward import make_rows

    from stages.method.reward import RLTReward, body_and_head, hidden_at, pack_batch
    from stages.method.settings import PromptsConfig, RewardConfig

    student, tok = model_at_shape(s, device, dtype, seed=0)
    teacher, _ = model_at_shape(s, device, dtype, seed=1, tok=tok)
    student.eval(), teacher.eval()
    rows, cfg, clock = make_rows(s["reward_rows"], s["reward_tokens"]), RewardConfig(teacher_temperature=0.7), Clock(device)
    scorer = RLTReward(student, tok, cfg, PromptsConfig(), teacher=teacher, reward_batch_size=s["reward_batch"])
    scorer.score(rows[:2])  # warm-up
    views = sorted(scorer.render_rows(rows), key=lambda v: len(v.s_ids))
    batches = [views[i:i + s["reward_batch"]] for i in range(0, len(views), s["reward_batch"])]
    pad = tok.pad_token_id

    def bodies():
        with torch.no_grad():
            for b in batches:
                for model, seqs in ((student, [v.s_ids for v in b]), (teacher, [v.t_ids for v in b])):
                    buf, B, L = pack_batch(seqs, [np.zeros(0, dtype=np.int64)] * len(b), pad, False)
                    t = torch.from_numpy(buf).to(device)
                    body_and_head(model)[0](input_ids=t[:B * L].view(B, L), attention_mask=t[2 * B * L:3 * B * L]
                                            .view(B, L), position_ids=t[B * L:2 * B * L].view(B, L), use_cache=False)

    def floor():
        with torch.no_grad():
            for b in batches:
                h, _ = hidden_at(student, [v.s_ids for v in b], [np.concatenate([v.sol, v.s_kl]) for v in b],
                                 pad, False)
                body_and_head(student)[1](h)
                h, _ = hidden_at(teacher, [v.t_ids for v in b], [v.t_kl for v in b], pad, False)
                body_and_head(teacher)[1](h)

    def one_at_a_time():  # the reference code's loop: full logits [1, L, V] per view, log-softmax everywhere
        with torch.no_grad():
            for v in views:
                for model, ids in ((student, v.s_ids), (teacher, v.t_ids)):
                    logits = model(input_ids=torch.as_tensor(ids, device=device)[None]).logits.float()
                    torch.log_softmax(logits / 0.7, -1)[0, :-1].gather(
                        -1, torch.as_tensor(ids[1:], device=device)[:, None]).cpu()

    t = {"batched": clock(lambda: scorer.score(rows)), "bodies": clock(bodies), "floor": clock(floor),
         "one_at_a_time_full_logits": clock(one_at_a_time)}
    n_expl = [v.n_expl for v in views]
    return {"rows": len(rows), "explanation_tokens": [min(n_expl), max(n_expl)], "seconds": t,
            "rows_per_s": {k: len(rows) / v for k, v in t.items()}}


# ----------------------------------------------------------------------------- generate and teach


def model_dirs(s: dict, root: Path, dtype) -> tuple[Path, Path]:
    """Teacher and student checkpoint directories at shape `s` (saved in `dtype`)."""
    teacher, tok = model_at_shape(s, "cpu", dtype, seed=0)
    student, _ = model_at_shape(s, "cpu", dtype, seed=1, tok=tok)
    for name, m in (("teacher", teacher), ("student", student)):
        m.save_pretrained(root / name)
        tok.save_pretrained(root / name)
    return root / "teacher", root / "student"


def generate_bench(s: dict, device: str, teacher: Path, data: Path) -> dict:
    from stages.artifacts.read import read_rows
    from stages.engines import make_engine
    from stages.engines.base import EngineConfig
    from stages.method import views as formats
    from stages.method.settings import PromptsConfig

    out, clock = {}, Clock(device)
    for name, batch, count in (("batched", s["gen_prompts"], s["gen_prompts"]), ("one_prompt", 1, s["gen_one"])):
        engine = make_engine(EngineConfig(name="hf", device=device, batch_size=batch), str(teacher))
        rows = read_rows(data, "dataset")[:count]
        prompts = [formats.teacher_view(engine.tokenizer, PromptsConfig().teacher_system, r["question"],
                                        r["solution"]) for r in rows]
        engine.generate(prompts[:1], max_new_tokens=2, temperature=0.0)  # warm-up
        done = []
        secs = clock(lambda e=engine, p=prompts, d=done: d.extend(e.generate(p, max_new_tokens=s["gen_tokens"],
                                                                               temperature=0.0)))
        tokens = sum(c[0].tokens for c in done)
        out[name] = {"tokens_per_s": tokens / secs, "tokens": tokens, "prompts": len(prompts)}
        engine.close()
    return out


def teach_bench(s: dict, device: str, teacher: Path, student: Path, data: Path, root: Path) -> dict:
    from stages.artifacts.layout import metrics_path
    from stages.commands import teach
    from stages.config import resolve

    cfg = resolve(teach.TeachConfig, options={
        "teacher": str(teacher), "student": str(student), "data": str(data), "out": str(root / "teach"),
        "max_steps": s["teach_steps"], "prompts_per_step": s["teach_prompts"],
        "num_generations": s["teach_generations"], "max_new_tokens": s["teach_tokens"], "device": device,
        "save_steps": 1000, "reward_batch_size": s["teach_prompts"] * s["teach_generations"]})
    teach.run(cfg)
    steps = [json.loads(line).get("seconds_per_step") for line in metrics_path(root / "teach").open()]
    steps = [x for x in steps if x is not None]
    return {"first_step_s": steps[0], "seconds_per_step": sum(steps[1:]) / max(1, len(steps) - 1),
            "steps": len(steps)}


# ----------------------------------------------------------------------------- table


def table(res: dict) -> str:
    d, r, g = res["distill"], res["reward"], res["generate"]
    pad = d["padded"]["tokens_per_s"]
    rps = r["rows_per_s"]
    head = (f"rlt benchmark ({res['mode']}, {res['device_name']}, {res['dtype']}, hidden {res['shape']['hidden']}, "
            f"{res['shape']['layers']} layers, vocab {res['shape']['vocab']})")
    lines = [head, f"{'measure':<58}{'value':>14}  ratio"]
    for k in ("padded", "padding_free", "packed"):
        lines.append(f"{'distill tokens/s, ' + k + ' (' + d[k]['attention'] + ')':<58}{d[k]['tokens_per_s']:>14.0f}"
                     f"  {d[k]['tokens_per_s'] / pad:.2f}x padded")
    lines.append(f"{'reward rows/s, batched':<58}{rps['batched']:>14.1f}"
                 f"  {rps['batched'] / rps['one_at_a_time_full_logits']:.1f}x one-at-a-time")
    lines.append(f"{'reward rows/s, one at a time with full logits':<58}{rps['one_at_a_time_full_logits']:>14.1f}")
    sec = r["seconds"]
    lines.append(f"{'reward: two decoder bodies, s':<58}{sec['bodies']:>14.3f}  batched = "
                 f"{sec['batched'] / sec['bodies']:.2f}x bodies")
    lines.append(f"{'reward: floor (bodies + lm_head at spans), s':<58}{sec['floor']:>14.3f}  batched = "
                 f"{sec['batched'] / sec['floor']:.2f}x floor")
    lines.append(f"{'hf generate tokens/s, batched':<58}{g['batched']['tokens_per_s']:>14.1f}"
                 f"  {g['batched']['tokens_per_s'] / g['one_prompt']['tokens_per_s']:.1f}x one prompt")
    lines.append(f"{'hf generate tokens/s, one prompt at a time':<58}{g['one_prompt']['tokens_per_s']:>14.1f}")
    t = res["teach"]
    lines.append(f"{'teach seconds/step (after the first)':<58}{t['seconds_per_step']:>14.2f}  first "
                 f"{t['first_step_s']:.2f} s")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny shapes on CPU (checks the code, not the speed)")
    ap.add_argument("--out", default="gpu-benchmark.json", help="where to write the table as JSON")
    args = ap.parse_args()
    missing = missing_dependencies()
    if missing:
        print(f"benchmarks/gpu.sh: missing {', '.join(missing)} (pip install {' '.join(missing)})", file=sys.stderr)
        return 2
    import torch

    if not args.smoke and not torch.cuda.is_available():
        print("benchmarks/gpu.sh: no CUDA GPU here; running the CPU smoke version (--smoke)", file=sys.stderr)
        args.smoke = True
    import logging

    logging.basicConfig(level=logging.WARNING)
    mode = "smoke" if args.smoke else "gpu"
    s, device = SHAPES[mode], "cpu" if args.smoke else "cuda"
    dtype = torch.float32 if args.smoke else torch.bfloat16
    res = {"mode": mode, "shape": s, "dtype": str(dtype).replace("torch.", ""),
           "device_name": torch.cuda.get_device_name() if device == "cuda" else "cpu"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        from stages.commands.data import SynthConfig, synth

        data = synth(SynthConfig(out=str(root / "data"), n=max(64, s["gen_prompts"]), seed=0))
        res["distill"] = distill_bench(s, device, dtype)
        res["reward"] = reward_bench(s, device, dtype)
        teacher, student = model_dirs(s, root, dtype)
        res["generate"] = generate_bench(s, device, teacher, data)
        res["teach"] = teach_bench(s, device, teacher, student, data, root)
    print(table(res))
    Path(args.out).write_text(json.dumps(res, indent=1, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
