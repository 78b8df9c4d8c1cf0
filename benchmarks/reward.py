"""Benchmark of the RLT reward (stages/method/reward.py), on the same rows in one run:

(a) batched reward vs a one-row-at-a-time loop (32 completions, CPU);
(b) batched reward vs the bare student + teacher forward passes it needs;
(c) peak memory of the reward vs a naive full-logits version on long rows with a
    large vocabulary (each measured in a fresh subprocess).

    python benchmarks/reward.py [--rows 32] [--hidden 256] [--vocab 32768] [--long-tokens 3000]
"""

from __future__ import annotations

import argparse
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages.method.settings import PromptsConfig, RewardConfig


def build_pair(hidden: int, vocab: int | None = None) -> tuple:
    """A teacher and a student sharing the tiny tokenizer (optionally a padded, larger vocabulary)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from stages.commands.tinymodel import train_tokenizer

    tok = train_tokenizer(400)
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        conf = Qwen2Config(vocab_size=vocab or len(tok), hidden_size=hidden, intermediate_size=4 * hidden,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                           max_position_embeddings=8192, tie_word_embeddings=True, pad_token_id=tok.pad_token_id)
        models.append(Qwen2ForCausalLM(conf).eval())
    return models[0], models[1], tok


def make_rows(n: int, target_tokens: int, vary: bool = True) -> list[dict]:
    """Synthetic rows whose explanations are repeated carry traces of about `target_tokens` tokens."""
    from stages.method.tasks import synth_rows

    rows = []
    for i, r in enumerate(synth_rows(n, seed=1, max_digits=4)):
        scale = 50 + (i * 37) % 100 if vary else 100  # lengths vary by row: 0.5x-1.5x the target
        reps = max(1, target_tokens * scale // (70 * 100))
        rows.append({"question": r["question"], "solution": r["solution"],
                     "explanation": r["reasoning_trace"] * reps})
    return rows


def naive_scores(student, teacher, tok, rows, cfg: RewardConfig, batch_size: int) -> list[float]:
    """The textbook version: full logits [B, L, V], log_softmax everywhere, then pick span tokens."""

    from stages.method.reward import reduce_reward, render

    out = []
    for i in range(0, len(rows), batch_size):
        views = [render(tok, tok, PromptsConfig(), r) for r in rows[i:i + batch_size]]
        s_lp = _full_logps(student, [v.s_ids for v in views], tok.pad_token_id, cfg.student_temperature)
        t_lp = _full_logps(teacher, [v.t_ids for v in views], tok.pad_token_id, cfg.teacher_temperature or 0.7)
        for b, v in enumerate(views):
            sol = [s_lp[b, k - 1, v.s_ids[k]].item() for k in v.sol]
            kl = [t_lp[b, j - 1, v.t_ids[j]].item() - s_lp[b, k - 1, v.s_ids[k]].item()
                  for k, j in zip(v.s_kl, v.t_kl)]
            out.append(reduce_reward(sol, kl, cfg.kl_coef, cfg.alpha, cfg.format_penalty)["reward"])
        del s_lp, t_lp
    return out


def _full_logps(model, seqs, pad, tau):
    import torch

    ids, mask = _pad(seqs, pad)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits.float()  # [B, L, V]
        return torch.log_softmax(logits / tau, dim=-1)


def _pad(seqs, pad):
    import torch

    L = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), L), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), L), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)], mask[i, :len(s)] = torch.tensor(s), 1
    return ids, mask


def bare_forwards(student, teacher, tok, rows, batch_size: int) -> None:
    """Only the two forward passes the reward needs (same padded batches, logits included)."""
    import torch

    from stages.method.reward import render

    views = sorted((render(tok, tok, PromptsConfig(), r) for r in rows), key=lambda v: len(v.s_ids))
    batches = [views[i:i + batch_size] for i in range(0, len(views), batch_size)]
    padded = [(_pad([v.s_ids for v in b], tok.pad_token_id), _pad([v.t_ids for v in b], tok.pad_token_id))
              for b in batches]
    t0 = time.perf_counter()
    with torch.no_grad():
        for (s_ids, s_mask), (t_ids, t_mask) in padded:
            student(input_ids=s_ids, attention_mask=s_mask)
            teacher(input_ids=t_ids, attention_mask=t_mask)
    return time.perf_counter() - t0


def timed(fn, repeat: int = 3) -> float:
    """Best of `repeat` wall times: the least disturbed by other load on shared CPUs."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def speed(args) -> None:
    from stages.method.reward import RLTReward

    teacher, student, tok = build_pair(args.hidden)
    rows = make_rows(args.rows, args.tokens)
    cfg = RewardConfig(teacher_temperature=0.7)
    batched = RLTReward(student, tok, cfg, PromptsConfig(), teacher=teacher, reward_batch_size=args.rows)
    one = RLTReward(student, tok, cfg, PromptsConfig(), teacher=teacher, reward_batch_size=1)
    res = batched.score(rows)  # warm-up
    n_expl = [r["explanation_tokens"] for r in res]
    print(f"rows: {len(rows)}, explanation tokens {min(n_expl)}-{max(n_expl)}, student view tokens "
          f"{min(r['student_tokens'] for r in res)}-{max(r['student_tokens'] for r in res)}, "
          f"hidden {args.hidden}, vocab {len(tok)}")
    t_batch = t_fwd = float("inf")
    for _ in range(3):  # interleaved, so both see the same background load
        t_batch = min(t_batch, timed(lambda: batched.score(rows), repeat=1))
        t_fwd = min(t_fwd, bare_forwards(student, teacher, tok, rows, args.rows))
    t_one = timed(lambda: [one.score([r]) for r in rows], repeat=2)
    t_naive_loop = timed(lambda: naive_scores(student, teacher, tok, rows, cfg, batch_size=1), repeat=2)
    ref = naive_scores(student, teacher, tok, rows, cfg, batch_size=1)
    err = max(abs(a["reward"] - b) for a, b in zip(res, ref))
    print(f"(a) batched reward: {len(rows) / t_batch:8.1f} rows/s ({t_batch:.3f} s)")
    print(f"    one row at a time, same code: {len(rows) / t_one:8.1f} rows/s -> batched is {t_one / t_batch:.1f}x")
    print(f"    one row at a time, full logits: {len(rows) / t_naive_loop:8.1f} rows/s -> batched is "
          f"{t_naive_loop / t_batch:.1f}x (max reward difference {err:.2e})")
    print(f"(b) bare student + teacher forwards: {t_fwd:.3f} s -> reward / forwards = {t_batch / t_fwd:.2f}x")


def memory_worker(kind: str, args) -> None:
    """Run one variant and print its peak resident memory above the loaded-model baseline."""

    from stages.method.reward import RLTReward

    teacher, student, tok = build_pair(64, vocab=args.vocab)
    rows = make_rows(args.long_rows, args.long_tokens, vary=False)
    base = _rss_mib()
    cfg = RewardConfig(teacher_temperature=0.7)
    t0 = time.perf_counter()
    if kind == "reward":
        RLTReward(student, tok, cfg, PromptsConfig(), teacher=teacher, reward_batch_size=args.long_rows).score(rows)
    else:
        naive_scores(student, teacher, tok, rows, cfg, batch_size=args.long_rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tokens = max(len(tok(r["explanation"], add_special_tokens=False).input_ids) for r in rows)
    print(f"{tokens} {peak - base:.0f} {time.perf_counter() - t0:.2f}")


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory(args) -> None:
    out = {}
    for kind in ("reward", "naive"):
        cmd = [sys.executable, __file__, "--memory-worker", kind, "--vocab", str(args.vocab),
               "--long-tokens", str(args.long_tokens), "--long-rows", str(args.long_rows)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        tokens, mib, secs = proc.stdout.split()[-3:]
        out[kind] = (float(mib), float(secs))
    (rm, rs), (nm, ns) = out["reward"], out["naive"]
    print(f"(c) {args.long_rows} rows of {tokens} explanation tokens, vocabulary {args.vocab}: "
          f"peak memory above the models: reward {rm:.0f} MiB ({rs:.1f} s), naive full logits "
          f"{nm:.0f} MiB ({ns:.1f} s) -> {nm / max(rm, 1):.1f}x less")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=32, help="completions in (a) and (b)")
    p.add_argument("--tokens", type=int, default=200, help="typical explanation tokens in (a) and (b)")
    p.add_argument("--hidden", type=int, default=256, help="hidden size of the models in (a) and (b)")
    p.add_argument("--vocab", type=int, default=32768, help="model vocabulary in (c)")
    p.add_argument("--long-tokens", type=int, default=3000, help="about this many explanation tokens per row in (c)")
    p.add_argument("--long-rows", type=int, default=4, help="rows in (c)")
    p.add_argument("--memory-worker", choices=("reward", "naive"), help=argparse.SUPPRESS)
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.memory_worker:
        memory_worker(args.memory_worker, args)
        return
    speed(args)
    memory(args)


if __name__ == "__main__":
    main()
