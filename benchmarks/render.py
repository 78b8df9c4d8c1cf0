"""CPU benchmark of the reward's host path (stages/method/reward.py), old and new in one run.

Renders 64 rows of about 1000 explanation tokens into both views, tokenizes them,
locates the spans, and builds the padded batches' index tensors, two ways:
- old: one tokenizer call per view, spans by scanning every offset, index
  tensors from Python lists (the code before the batched host path, kept here);
- new: `render_batch` (one batch-encode call, spans by binary search) and
  `pack_batch` (array ops, one buffer per batch).
Checks that both give the same ids and spans, then prints times and ratios.

    python benchmarks/render.py [--rows 64] [--tokens 1000] [--vocab 400] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stages.method.settings import PromptsConfig

# ----------------------------------------------------------------------------- the old path, kept to measure against


def old_token_span(offsets, start, end):
    return [k for k, (a, b) in enumerate(offsets) if start <= a and b <= end and b > a]


def old_render(tok, prompts: PromptsConfig, row: dict) -> dict:
    """One row: both views tokenized one call each, spans by a linear scan of the offsets."""
    from stages.method.reward import _texts

    x = _texts(tok, tok, prompts, row)  # the same template rendering as the new path
    s = tok(x.student, add_special_tokens=False, return_offsets_mapping=True)
    t = tok(x.teacher, add_special_tokens=False, return_offsets_mapping=True)
    s_ids, s_off = list(s["input_ids"]), [tuple(o) for o in s["offset_mapping"]]
    t_ids, t_off = list(t["input_ids"]), [tuple(o) for o in t["offset_mapping"]]
    n = len(x.explanation)
    s_kl, t_kl = old_token_span(s_off, x.s_expl, x.s_expl + n), old_token_span(t_off, x.t_expl, x.t_expl + n)
    return {"s_ids": s_ids, "t_ids": t_ids, "sol": old_token_span(s_off, x.s_sol, x.s_sol + x.sol_len),
            "s_kl": s_kl, "t_kl": t_kl, "aligned": [s_ids[k] for k in s_kl] == [t_ids[k] for k in t_kl],
            "n_expl": len(old_token_span(s_off, x.s_expl, x.s_expl + n))}


def old_indices(seqs, wanted, pad_id, left):
    """The old hidden_at host work: padded ids/mask/positions and gather indices from Python lists."""
    import torch

    B, L = len(seqs), max(len(s) for s in seqs)
    ids = torch.full((B, L), pad_id, dtype=torch.long)
    mask = torch.zeros((B, L), dtype=torch.long)
    rows, cols = [], []
    for i, (s, w) in enumerate(zip(seqs, wanted)):
        off = L - len(s) if left else 0
        ids[i, off:off + len(s)] = torch.tensor(s)
        mask[i, off:off + len(s)] = 1
        rows += [i] * len(w)
        cols += [off + k - 1 for k in w]
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    targets = torch.tensor([s[k] for s, w in zip(seqs, wanted) for k in w], dtype=torch.long)
    is_kl = torch.tensor([k >= 0 for w in wanted for k in range(len(w))], dtype=torch.bool)
    return ids, mask, pos, torch.tensor(rows), torch.tensor(cols), targets, is_kl


# ----------------------------------------------------------------------------- runs


def old_path(tok, rows, batch: int, indices: bool):
    views = [old_render(tok, PromptsConfig(), r) for r in rows]
    if indices:
        for i in range(0, len(views), batch):
            b = views[i:i + batch]
            old_indices([v["s_ids"] for v in b], [v["sol"] + v["s_kl"] for v in b], 0, True)
            old_indices([v["t_ids"] for v in b], [v["t_kl"] for v in b], 0, True)
    return views


def new_path(tok, rows, batch: int, indices: bool):
    import numpy as np

    from stages.method.reward import pack_batch, render_batch

    views = render_batch(tok, tok, PromptsConfig(), rows)
    if indices:
        for i in range(0, len(views), batch):
            b = views[i:i + batch]
            pack_batch([v.s_ids for v in b], [np.concatenate([v.sol, v.s_kl]) for v in b], 0, True)
            pack_batch([v.t_ids for v in b], [v.t_kl for v in b], 0, True)
    return views


def same(old: list[dict], new: list) -> bool:
    keys = ("s_ids", "t_ids", "sol", "s_kl", "t_kl")
    return all(list(getattr(n, k)) == o[k] for o, n in zip(old, new) for k in keys) and \
        all(o["aligned"] == n.aligned and o["n_expl"] == n.n_expl for o, n in zip(old, new))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=64)
    p.add_argument("--tokens", type=int, default=1000, help="typical explanation tokens per row")
    p.add_argument("--vocab", type=int, default=400, help="BPE vocabulary of the locally trained tokenizer")
    p.add_argument("--batch-size", type=int, default=8, help="rows per padded batch (index tensors)")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    from reward import make_rows
    from reward import timed as best

    from stages.commands.tinymodel import train_tokenizer

    tok = train_tokenizer(args.vocab)
    rows = make_rows(args.rows, args.tokens)
    old, new = old_path(tok, rows, args.batch_size, False), new_path(tok, rows, args.batch_size, False)
    assert same(old, new), "old and new host paths disagree"
    n_expl = [v.n_expl for v in new]
    print(f"{len(rows)} rows, explanation tokens {min(n_expl)}-{max(n_expl)} (mean {sum(n_expl) / len(n_expl):.0f}), "
          f"student view tokens up to {max(len(v.s_ids) for v in new)}, tokenizer vocab {len(tok)}; "
          "ids and spans identical")
    print(f"{'host path':<34}{'old s':>9}{'new s':>9}{'new/old speed':>15}")
    for name, indices in (("render + tokenize + spans", False), ("... + padded index tensors", True)):
        t_old = t_new = float("inf")
        for _ in range(args.repeat):  # interleaved, so both see the same background load
            t_old = min(t_old, best(lambda i=indices: old_path(tok, rows, args.batch_size, i), 1))
            t_new = min(t_new, best(lambda i=indices: new_path(tok, rows, args.batch_size, i), 1))
        print(f"{name:<34}{t_old:>9.3f}{t_new:>9.3f}{t_old / t_new:>14.1f}x")
    from stages.method.reward import _texts

    views = [_texts(tok, tok, PromptsConfig(), r) for r in rows]
    texts = [v.student for v in views] + [v.teacher for v in views]
    backend = tok.backend_tokenizer
    t_one = t_enc = float("inf")
    for _ in range(args.repeat):  # interleaved, as above
        t_one = min(t_one, best(lambda: [backend.encode(x, add_special_tokens=False) for x in texts], 1))
        t_enc = min(t_enc, best(lambda: backend.encode_batch(texts, add_special_tokens=False), 1))
    print(f"{'tokenizer alone (the floor)':<34}{t_one:>9.3f}{t_enc:>9.3f}{t_one / t_enc:>14.1f}x"
          "   (one encode per view vs one batch encode, same texts)")


if __name__ == "__main__":
    main()
