"""The built-in synthetic reasoning task: multi-digit addition with column carries.

Each row has a question, a short solution with the answer in `\\boxed{}`, a
step-by-step `reasoning_trace` and the integer `answer`. Train and test splits
are disjoint by construction: a question belongs to `test` iff a hash of its
operands falls in a fixed 20 % bucket.

Teaching quality. The gold trace works the columns least significant first with
explicit carries: every line follows from the question and the lines before it,
so a student can learn to write it without knowing the answer. A documented
share (`unhelpful`) of the rows instead get a trace that is *correct but
unhelpful*, like the paper's premise about R1 traces: it asserts the sum without
the column work (`asserted`) - the student would have to produce the answer in
one step. `explanation_style` classifies any explanation into these styles.

    rows = synth_rows(n=1000, seed=0, split="train", unhelpful=0.5)
"""

from __future__ import annotations

import hashlib
import random
import re

from stages.artifacts.schemas import row_id

TASK = "addition"
ONES = ("ones", "tens", "hundreds", "thousands", "ten-thousands", "hundred-thousands")  # 5 digits + a carry


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


def asserted_trace(a: int, b: int) -> str:
    """The sum stated without the column work: correct, but nothing a student can follow."""
    return f"Adding the two numbers gives {a + b}.\nSo {a} + {b} = {a + b}.\n"


UNHELPFUL = {"asserted": asserted_trace}
STYLES = ("columns", "asserted", "columns-wrong", "asserted-wrong", "other")
_QUESTION = re.compile(r"What is (\d+) \+ (\d+)\?")


def explanation_style(explanation: str, question: str) -> str:
    """Style of one explanation of an addition question (one of `STYLES`).

    `columns` (helpful): exactly the column work of the question, least
    significant column first, each line right, carries passed on, ending on
    the sum. `asserted` (unhelpful): the correct sum stated without column
    work. `columns-wrong` / `asserted-wrong`: the same first line (`ones:` /
    `Adding the two numbers gives`) with any line after it wrong, missing,
    extra or out of order. `other`: anything else (e.g. the columns most
    significant first). Raises nothing; a question that is not an addition of
    numbers up to 5 digits gives `other`.
    """
    m = _QUESTION.search(question or "")
    if not m:
        return "other"
    a, b = int(m.group(1)), int(m.group(2))
    if max(a, b) >= 10 ** (len(ONES) - 1):  # more columns than the task names
        return "other"
    lines = [ln.strip() for ln in (explanation or "").strip().splitlines() if ln.strip()]
    if not lines:
        return "other"
    if lines == [ln.strip() for ln in carry_trace(a, b).splitlines()]:
        return "columns"
    if lines == [ln.strip() for ln in asserted_trace(a, b).splitlines()]:
        return "asserted"
    if lines[0].startswith(f"{ONES[0]}:"):
        return "columns-wrong"
    if lines[0].startswith("Adding the two numbers gives"):
        return "asserted-wrong"
    return "other"


def is_helpful(style: str) -> bool:
    return style == "columns"


def in_test_split(a: int, b: int) -> bool:
    """Deterministic 20 % of all operand pairs form the test split."""
    h = hashlib.sha256(f"{a}+{b}".encode()).digest()[0]
    return h < 52  # 52/256 ~ 20 %


def synth_rows(n: int, seed: int = 0, split: str = "train", min_digits: int = 2,
               max_digits: int = 3, unhelpful: float = 0.0, style: str = "asserted") -> list[dict]:
    """`n` distinct addition problems of the split, reproducible from `seed`.

    A share `unhelpful` (0-1) of the rows, drawn with the same seed, gets the
    unhelpful trace `style` (a key of `UNHELPFUL`) instead of the column work;
    raises ValueError on a share outside [0, 1], an unknown style or too many rows.
    """
    if not 0.0 <= unhelpful <= 1.0:
        raise ValueError(f"unhelpful must be in [0, 1], got {unhelpful}")
    if style not in UNHELPFUL:
        raise ValueError(f"unknown unhelpful style {style!r} (valid: {', '.join(UNHELPFUL)})")
    rng = random.Random(f"{seed}-{split}")
    pick = random.Random(f"{seed}-{split}-style")
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
        trace = UNHELPFUL[style](a, b) if pick.random() < unhelpful else carry_trace(a, b)
        rows.append({"id": row_id(q, s), "question": q, "solution": s,
                     "reasoning_trace": trace, "answer": str(a + b),
                     "task": TASK, "source": f"synth-{split}"})
    return rows


def corpus(n: int = 2000, seed: int = 0) -> list[str]:
    """Text the tiny tokenizer is trained on: questions, traces and solutions."""
    out = []
    for r in synth_rows(n, seed, "train") + synth_rows(max(1, n // 4), seed, "test"):
        a, b = map(int, _QUESTION.search(r["question"]).groups())
        out += [r["question"], r["reasoning_trace"], r["solution"], asserted_trace(a, b)]
    return out
