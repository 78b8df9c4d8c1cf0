"""`rlt data decontaminate`: drop training rows whose question overlaps a benchmark question.

    rlt data decontaminate data/stratos --against data/math500 --against data/aime24 \
        --against data/gpqa --out data/stratos-clean [--ngram 8]

Input: a dataset (or traces) artifact or file, and one or more benchmark datasets
(`--against`). Output: the same kind of artifact holding the rows that were kept;
its manifest counts, per benchmark, the dropped rows and keeps their ids.

A training row is dropped as a copy of a benchmark question when, after both
are normalized the same way (`normalize`), its question
- equals the benchmark question (any length); or
- holds a benchmark question shorter than n words as a contiguous run of words
  (Bespoke-Stratos wraps every question: `Return your final response within
  \\boxed{}. Compute $\\dbinom{31}{28}$.` holds MATH-500's `Compute
  $\\dbinom{31}{28}$.`); or
- shares a word n-gram (default n = 8, as open-r1's decontamination script)
  with a benchmark question.
Phrases frequent across one benchmark's own questions are no sign of a copy:
an n-gram found in `frequent` (default 2) or more distinct questions of the
same benchmark (template phrases such as `let z be a complex number such
that`, Asymptote label runs), and a short question found inside that many of
its benchmark's questions, are set aside (whole-question equality still
counts); the manifest and the log say how many were set aside, with examples.
Frequency is counted per benchmark, so the same question in two benchmarks
(GPQA main and diamond) stays evidence. The normalization:
1. lower-case;
2. LaTeX spacing stripped: thin spaces (`\\,` `\\;` `\\:` `\\!` `\\thinspace` ...)
   deleted, wide ones (`~` `\\ ` `\\quad` `\\qquad` `\\enspace`) made a space; a comma
   between digits (`10,000`, `10{,}000`) deleted, so number formatting hides no copy;
3. every other character that is not a letter or digit (punctuation, `$`, `\\`,
   braces) replaced by a space;
4. split on whitespace into words.
Benchmark n-grams (tuples of words) go into one Python dict (hashed), then each
training question's n-grams, and its runs of each short-question length, are
looked up: time and memory are linear in the data (times the number of distinct
short-question lengths, at most n - 1).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from stages.artifacts.benchmarks import with_import_hint
from stages.artifacts.layout import read_manifest
from stages.artifacts.read import read_rows
from stages.artifacts.schemas import EVAL_REQUIRED, ROW_KEYS
from stages.artifacts.stage import run_stage
from stages.config import at_least, check_config, opt
from stages.errors import UserError
from stages.progress import with_article

log = logging.getLogger(__name__)
_THIN = re.compile(r"\\[,;:!]|\\(?:thinspace|negthinspace|medspace|thickspace)(?![a-z])")
_WIDE = re.compile(r"\\[> ]|\\(?:q?quad|enspace)(?![a-z])|~")
_DIGIT_COMMA = re.compile(r"(?<=\d)(?:,|\{,\})(?=\d)")
_NON_WORD = re.compile(r"[\W_]+")


@dataclass
class DecontaminateConfig:
    """Options of `rlt data decontaminate`."""

    src: str = opt("", "Training dataset (or traces) artifact or file to clean.", arg=True, input=True, required=True)
    against: list[str] = opt(list, "Benchmark dataset whose questions must not appear in training; repeat it.",
                             flag=True, input=True, required=True)
    out: str = opt("", "Output artifact: the rows that were kept.", hash=False, flag=True, required=True)
    ngram: int = opt(8, "Words per n-gram (open-r1's default 8); a shorter benchmark question matches as a "
                     "whole run of words inside a training question.", flag=True, check=at_least(1))
    frequent: int = opt(2, "An n-gram (or short question) found in at least this many questions of one "
                        "benchmark is a template phrase, not a sign of a copy, and is set aside; 0 keeps all.",
                        flag=True, check=at_least(0))
    force: bool = opt(False, "Overwrite an existing output.", hash=False, flag=True)


def normalize(text: str) -> list[str]:
    """The words of `text` after the module's normalization (steps 1-4)."""
    text = _WIDE.sub(" ", _THIN.sub("", str(text).lower()))
    text = _DIGIT_COMMA.sub("", text)
    return _NON_WORD.sub(" ", text).split()


def ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    """Every run of `n` consecutive words."""
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def _runs(words: tuple[str, ...], lengths: set[int]) -> Iterator[tuple[str, ...]]:
    """Every run of consecutive words of each length in `lengths`."""
    for k in lengths:
        for i in range(len(words) - k + 1):
            yield words[i:i + k]


class Index:
    """Benchmark questions, each piece of evidence mapped to its benchmarks (see the module rules):
    whole questions, short questions (fewer than n words) as runs of words, and the n-grams that
    fewer than `frequent` questions of their benchmark share. `set_aside[benchmark]` counts what the
    frequency rule left out: {"ngrams", "short_questions", "examples"} (the 10 most shared phrases)."""

    def __init__(self, n: int, frequent: int = 2):
        self.n, self.frequent = n, frequent
        self.whole: dict[tuple[str, ...], set[str]] = {}
        self.runs: dict[tuple[str, ...], set[str]] = {}
        self.lengths: set[int] = set()
        self.grams: dict[tuple[str, ...], set[str]] = {}
        self.set_aside: dict[str, dict] = {}

    def _common(self, counts: Counter) -> set[tuple[str, ...]]:
        return {g for g, c in counts.items() if c >= self.frequent} if self.frequent else set()

    def add_benchmark(self, questions: Iterable[str], benchmark: str) -> None:
        """Index one benchmark's questions (distinct after normalization; empty ones have no words)."""
        texts = {tuple(normalize(q)) for q in questions} - {()}
        grams = Counter(g for w in texts for g in ngrams(list(w), self.n))
        short = {w for w in texts if len(w) < self.n}
        lengths = {len(w) for w in short}
        inside = Counter(r for w in texts for r in {r for r in _runs(w, lengths) if r in short})
        common_grams, common_short = self._common(grams), self._common(inside)
        for w in texts:
            self.whole.setdefault(w, set()).add(benchmark)
        for g in grams.keys() - common_grams:
            self.grams.setdefault(g, set()).add(benchmark)
        for w in short - common_short:
            self.runs.setdefault(w, set()).add(benchmark)
            self.lengths.add(len(w))
        shared = sorted(((grams[g], " ".join(g)) for g in common_grams), reverse=True)
        shared += sorted(((inside[w], " ".join(w)) for w in common_short), reverse=True)
        self.set_aside[benchmark] = {"ngrams": len(common_grams), "short_questions": len(common_short),
                                     "examples": [f"{text} ({count} questions)" for count, text in shared[:10]]}

    def hits(self, question: str) -> set[str]:
        """Benchmarks of which `question` holds a copy (a whole question, a short one inside it, a shared n-gram)."""
        words, n, grams, runs = tuple(normalize(question)), self.n, self.grams, self.runs
        found = set(self.whole.get(words, ()))
        for r in _runs(words, self.lengths):
            if r in runs:
                found |= runs[r]
        for i in range(len(words) - n + 1):
            hit = grams.get(words[i:i + n])
            if hit:
                found |= hit
        return found


def _check(cfg: DecontaminateConfig) -> None:
    check_config(cfg)


def build_index(paths: list[str], n: int, frequent: int = 2) -> Index:
    """Index of every benchmark's questions (read as eval sets: a question is all they need; a raw
    benchmark file is refused naming the import command that reads it)."""
    index = Index(n, frequent)
    for p in paths:
        try:
            rows = read_rows(p, "dataset", required=EVAL_REQUIRED)
        except UserError as e:
            raise with_import_hint(e, p) from None
        index.add_benchmark((r["question"] for r in rows), p)
    return index


def run(cfg: DecontaminateConfig) -> Path:
    """read benchmarks -> index their n-grams -> keep the training rows without a hit -> write."""
    _check(cfg)
    kind = (read_manifest(cfg.src) or {}).get("kind", "dataset") if Path(cfg.src).is_dir() else "dataset"
    if kind not in ("dataset", "traces"):
        raise UserError(f"{cfg.src} is {with_article(kind)} artifact; decontaminate datasets or traces")
    index = build_index(cfg.against, cfg.ngram, cfg.frequent)
    rows = read_rows(cfg.src, kind)
    kept, dropped = [], {p: [] for p in cfg.against}
    for r in rows:
        hits = index.hits(r["question"])
        for p in hits:
            dropped[p].append(r["id"])
        if not hits:
            kept.append(r)
    if not kept:
        raise UserError(f"{cfg.src}: every row overlaps a benchmark; nothing would be left")
    per_benchmark = {p: {"dropped": len(ids), "ids": sorted(set(ids))} for p, ids in dropped.items()}
    set_aside = {"frequent": cfg.frequent, "ngrams": sum(a["ngrams"] for a in index.set_aside.values()),
                 "short_questions": sum(a["short_questions"] for a in index.set_aside.values()),
                 "benchmarks": index.set_aside}

    def write(w) -> None:
        w.write(kept)
        w.finish({"decontamination": {"ngram": cfg.ngram, "rows_in": len(rows), "rows_kept": len(kept),
                                      "rows_dropped": len(rows) - len(kept), "benchmarks": per_benchmark,
                                      "set_aside": set_aside}})
        for p, d in per_benchmark.items():
            a = index.set_aside[p]
            log.info("%s: dropped %d rows overlapping %s (set aside as template phrases: %d n-grams and %d short "
                     "questions shared by %d+ of its questions)", cfg.src, d["dropped"], p, a["ngrams"],
                     a["short_questions"], cfg.frequent)
        log.info("kept %d of %d rows in %s", len(kept), len(rows), w.out)

    return run_stage(cfg, kind, write, key=ROW_KEYS[kind])
