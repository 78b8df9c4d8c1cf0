"""The built-in synthetic reasoning task: multi-digit addition with column carries.

Each row has a question, a short solution with the answer in `\\boxed{}`, a gold
step-by-step `reasoning_trace` (one line per column, carries explicit) and the
integer `answer`. Train and test splits are disjoint by construction: a question
belongs to `test` iff a hash of its operands falls in a fixed 20 % bucket.

    rows = synth_rows(n=1000, seed=0, split="train")
"""

from __future__ import annotations

import hashlib
import random

from stages.artifacts import row_id

TASK = "addition"
ONES = ("ones", "tens", "hundreds", "thousands", "ten-thousands")


def question_text(a: int, b: int) -> str:
    return f"What is {a} + {b}?"


def solution_text(a: int, b: int) -> str:
    return f"{a} + {b} = {a + b}. The answer is \\boxed{{{a + b}}}."


def carry_trace(a: int, b: int) -> str:
    """Column-by-column addition, least significant digit first."""
    da, db = str(a)[::-1], str(b)[::-1]
    lines, carry = [], 0
    for i in range(max(len(da), len(db))):
        x = int(da[i]) if i < len(da) else 0
        y = int(db[i]) if i < len(db) else 0
        s = x + y + carry
        step = f"{ONES[i]}: {x} + {y}" + (f" + {carry}" if carry else "") + f" = {s}"
        carry = s // 10
        step += f", write {s % 10}" + (f", carry {carry}" if carry else "") + "."
        lines.append(step)
    if carry:
        lines.append(f"{ONES[len(lines)]}: write the carry {carry}.")
    lines.append(f"So {a} + {b} = {a + b}.")
    return "\n".join(lines) + "\n"


def in_test_split(a: int, b: int) -> bool:
    """Deterministic 20 % of all operand pairs form the test split."""
    h = hashlib.sha256(f"{a}+{b}".encode()).digest()[0]
    return h < 52  # 52/256 ~ 20 %


def synth_rows(n: int, seed: int = 0, split: str = "train", min_digits: int = 2,
               max_digits: int = 3) -> list[dict]:
    """`n` distinct addition problems of the split, reproducible from `seed`."""
    rng = random.Random(f"{seed}-{split}")
    lo, hi = 10 ** (min_digits - 1), 10 ** max_digits - 1
    capacity = (hi - lo + 1) ** 2 * (0.2 if split == "test" else 0.8)  # pairs in the split's pool
    if n > int(capacity * 0.7):  # keep rejection sampling fast
        raise ValueError(f"n={n} is too many distinct problems for {min_digits}-{max_digits} digits")
    seen, rows = set(), []
    while len(rows) < n:
        a, b = rng.randint(lo, hi), rng.randint(lo, hi)
        if (a, b) in seen or in_test_split(a, b) != (split == "test"):
            continue
        seen.add((a, b))
        q, s = question_text(a, b), solution_text(a, b)
        rows.append({"id": row_id(q, s), "question": q, "solution": s,
                     "reasoning_trace": carry_trace(a, b), "answer": str(a + b),
                     "task": TASK, "source": f"synth-{split}"})
    return rows


def corpus(n: int = 2000, seed: int = 0) -> list[str]:
    """Text the tiny tokenizer is trained on: questions, traces and solutions."""
    out = []
    for r in synth_rows(n, seed, "train") + synth_rows(max(1, n // 4), seed, "test"):
        out += [r["question"], r["reasoning_trace"], r["solution"]]
    return out
