"""`rlt data decontaminate`: drop training rows whose question overlaps a benchmark question.

    rlt data decontaminate data/stratos --against data/math500 --against data/aime24 \
        --against data/gpqa --out data/stratos-clean [--ngram 8]

Input: a dataset (or traces) artifact or file, and one or more benchmark datasets
(`--against`). Output: the same kind of artifact holding the rows that were kept;
its manifest counts, per benchmark, the dropped rows and keeps their ids.

A training row is dropped when its question shares a word n-gram (default
n = 8, as open-r1's decontamination script) with any benchmark question, or
equals a benchmark question shorter than n words. Both sides are normalized
the same way first (`normalize`):
1. lower-case;
2. LaTeX spacing stripped: thin spaces (`\\,` `\\;` `\\:` `\\!` `\\thinspace` ...)
   deleted, wide ones (`~` `\\ ` `\\quad` `\\qquad` `\\enspace`) made a space; a comma
   between digits (`10,000`, `10{,}000`) deleted, so number formatting hides no copy;
3. every other character that is not a letter or digit (punctuation, `$`, `\\`,
   braces) replaced by a space;
4. split on whitespace into words.
Benchmark n-grams (tuples of words) go into one Python set (hashed), then each
training question's n-grams are looked up: time and memory are linear in the
data.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from stages.artifacts.layout import read_manifest
from stages.artifacts.read import read_rows
from stages.artifacts.schemas import ROW_KEYS
from stages.artifacts.state import already_complete
from stages.artifacts.writer import ArtifactWriter
from stages.config import at_least, check_config, inputs_of, opt
from stages.errors import UserError

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
    ngram: int = opt(8, "Words per n-gram (open-r1's default 8); shorter benchmark questions match whole.",
                     flag=True, check=at_least(1))
    force: bool = opt(False, "Overwrite an existing output.", hash=False, flag=True)


def normalize(text: str) -> list[str]:
    """The words of `text` after the module's normalization (steps 1-4)."""
    text = _WIDE.sub(" ", _THIN.sub("", str(text).lower()))
    text = _DIGIT_COMMA.sub("", text)
    return _NON_WORD.sub(" ", text).split()


def ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    """Every run of `n` consecutive words."""
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


class Index:
    """Benchmark questions as hashed n-grams (and whole short questions), each mapped to its benchmarks."""

    def __init__(self, n: int):
        self.n = n
        self.grams: dict[tuple[str, ...], set[str]] = {}
        self.short: dict[tuple[str, ...], set[str]] = {}

    def add(self, question: str, benchmark: str) -> None:
        words = normalize(question)
        if len(words) < self.n:
            self.short.setdefault(tuple(words), set()).add(benchmark)
        for g in ngrams(words, self.n):
            self.grams.setdefault(g, set()).add(benchmark)

    def hits(self, question: str) -> set[str]:
        """Benchmarks whose questions overlap `question`."""
        words, n, grams = normalize(question), self.n, self.grams
        found = set(self.short.get(tuple(words), ()))
        for i in range(len(words) - n + 1):
            hit = grams.get(tuple(words[i:i + n]))
            if hit:
                found |= hit
        return found


def _check(cfg: DecontaminateConfig) -> None:
    check_config(cfg)


def build_index(paths: list[str], n: int) -> Index:
    """Index of every benchmark's questions (read and validated as datasets)."""
    index = Index(n)
    for p in paths:
        for r in read_rows(p, "dataset"):
            index.add(r["question"], p)
    return index


def run(cfg: DecontaminateConfig) -> Path:
    """read benchmarks -> index their n-grams -> keep the training rows without a hit -> write."""
    _check(cfg)
    kind = (read_manifest(cfg.src) or {}).get("kind", "dataset") if Path(cfg.src).is_dir() else "dataset"
    if kind not in ("dataset", "traces"):
        raise UserError(f"{cfg.src} is a {kind} artifact; decontaminate datasets or traces")
    index = build_index(cfg.against, cfg.ngram)
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
    inputs = inputs_of(cfg)
    key = ROW_KEYS[kind]
    with ArtifactWriter(cfg.out, kind, cfg, inputs=inputs, force=cfg.force, key=key) as w:
        if w.complete:
            return already_complete(w.out)
        w.write(kept)
        w.finish({"decontamination": {"ngram": cfg.ngram, "rows_in": len(rows), "rows_kept": len(kept),
                                      "rows_dropped": len(rows) - len(kept), "benchmarks": per_benchmark}})
    for p, d in per_benchmark.items():
        log.info("%s: dropped %d rows overlapping %s", cfg.src, d["dropped"], p)
    log.info("kept %d of %d rows in %s", len(kept), len(rows), w.out)
    return w.out
