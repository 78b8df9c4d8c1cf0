"""`rlt data decontaminate` at Bespoke-Stratos-17k scale: hashed n-gram sets vs an all-pairs scan.

Writes a synthetic training set the size of Bespoke-Stratos-17k (17 000
questions of 40-400 words of math-like text, 1 % planted copies of benchmark
questions) and benchmark sets the size of MATH-500 + AIME 2024 + GPQA-Diamond
(500 + 30 + 198 questions), times the stage end to end through its config
(reading, normalizing, indexing, writing), and times an all-pairs scan (every
training question against every benchmark question, n-gram strings searched
in the joined words) on a slice of the rows, extrapolated linearly. Prints
seconds and the ratio.

    .venv/bin/python benchmarks/decontaminate.py [--rows 17000] [--pairs-rows 200]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

WORDS = ["let", "find", "the", "number", "of", "real", "value", "sum", "integer", "triangle", "side", "length", "circle", "radius", "prime", "x", "y", "z", "$f(x)$", "\\frac{1}{2}", "10{,}000", "probability", "that", "a", "b", "c", "is", "are", "with", "for", "each", "such", "than"]


def _question(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) + rng.choice(["", ",", ".", "?"]) for _ in range(rng.randint(lo, hi)))


def make_data(root: Path, rows: int, seed: int = 0) -> tuple[Path, list[Path]]:
    rng = random.Random(seed)
    benches = []
    for name, n in (("math500", 500), ("aime", 30), ("gpqa", 198)):
        path = root / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"id": f"{name}{i}", "question": _question(rng, 15, 120),
                                            "solution": "s"}) + "\n" for i in range(n)))
        benches.append(path)
    bench_qs = [json.loads(line)["question"] for p in benches for line in p.read_text().splitlines()]
    with open(root / "train.jsonl", "w") as f:
        for i in range(rows):
            q = rng.choice(bench_qs) if i % 100 == 0 else _question(rng, 40, 400)
            f.write(json.dumps({"id": f"t{i}", "question": q, "solution": "s"}) + "\n")
    return root / "train.jsonl", benches


def all_pairs(train: list[str], benches: list[list[str]], n: int, frequent: int = 2) -> int:
    """Dropped count by the plain method: every pair, every benchmark n-gram (or whole short question)
    searched as a string, those found in `frequent`+ questions of their own benchmark left out; an equal
    question always counts."""
    from stages.commands.decontaminate import normalize

    evidence, whole = set(), set()
    for bench in benches:
        texts = [f" {' '.join(w)} " for w in {tuple(normalize(q)) for q in bench} - {()}]
        whole |= set(texts)
        for t in texts:
            words = t.split()
            for g in [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)] or [" ".join(words)]:
                if sum(f" {g} " in o for o in texts) < frequent:
                    evidence.add(g)
    dropped = 0
    for q in train:
        text = f" {' '.join(normalize(q))} "
        dropped += text in whole or any(f" {g} " in text for g in evidence)
    return dropped


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=17000)
    ap.add_argument("--pairs-rows", type=int, default=200)
    args = ap.parse_args()
    from stages.artifacts.layout import read_manifest
    from stages.artifacts.read import read_rows
    from stages.commands.decontaminate import DecontaminateConfig, run

    with tempfile.TemporaryDirectory() as tmp:
        train, benches = make_data(Path(tmp), args.rows)
        t0 = time.perf_counter()
        out = run(DecontaminateConfig(src=str(train), against=[str(b) for b in benches], out=f"{tmp}/clean"))
        fast = time.perf_counter() - t0
        report = read_manifest(out)["decontamination"]
        rows = read_rows(train, "dataset")[: args.pairs_rows]
        bench_qs = [[r["question"] for r in read_rows(b, "dataset")] for b in benches]
        t0 = time.perf_counter()
        slow_dropped = all_pairs([r["question"] for r in rows], bench_qs, 8)
        slow = (time.perf_counter() - t0) * args.rows / len(rows)
        fast_dropped = sum(1 for r in rows if r["id"] not in {x["id"] for x in read_rows(out, "dataset")})
        print(f"rows {args.rows}, benchmark questions {sum(map(len, bench_qs))}, dropped {report['rows_dropped']}, "
              f"n-grams set aside {report['set_aside']['ngrams']}")
        print(f"hashed n-gram sets (whole stage): {fast:.2f} s")
        print(f"all-pairs scan (extrapolated from {len(rows)} rows): {slow:.1f} s")
        print(f"ratio all-pairs / hashed: {slow / fast:.0f}x; same verdicts on the slice: "
              f"{slow_dropped == fast_dropped}")


if __name__ == "__main__":
    main()
