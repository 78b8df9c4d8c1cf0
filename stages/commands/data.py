"""`rlt data synth|import|merge`: build, import and merge dataset/traces artifacts.

    rlt data synth --out data/train --n 2000 --split train
    rlt data import bespoke.parquet --out data/stratos --format stratos
    rlt data import gpqa_diamond.csv --out data/gpqa --format gpqa
    rlt data merge shards/0 shards/1 --out traces/all

Input: a local Parquet/JSONL/JSON/CSV file, a `datasets.save_to_disk` folder, a
folder of Parquet (or JSONL) files, or a hub id (where a network exists): read by
stages/sources/files.py; its layout converted by stages/sources/layouts.py.
Output: a dataset artifact (`id, question, solution, reasoning_trace, answer,
task, source`, plus the benchmark's grouping columns
`schemas.GROUP_COLUMNS` - MATH-500's `level`, `subject` (and `unique_id`), GPQA's
`domain`, `subdomain` (and `record_id`) - as text). A training set needs a
solution; an eval set needs an answer: a row with a question and an answer but
no solution imports with an empty (null) solution, never a made-up one, and the
manifest counts rows without a solution and rows without a gold answer. Rows
that do not parse are counted and reported, never silently dropped; every other
row is kept, repeated ones too (`schemas.REPEATED_IDS`: rows sharing an id stay
apart, renamed `<id>#<n>`, counted as `repeated_ids`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from stages import verify
from stages.artifacts.benchmarks import raw_format
from stages.artifacts.layout import read_manifest
from stages.artifacts.read import parse_shard, read_table
from stages.artifacts.schemas import EVAL_REQUIRED, ROW_KEYS, distinct_ids, row_id, validate
from stages.artifacts.stage import run_stage
from stages.config import at_least, between, check_config, opt
from stages.errors import UserError
from stages.method import tasks
from stages.progress import plural
from stages.sources.files import load_source
from stages.sources.layouts import BENCHMARKS, FORMATS, RowError, check_map, convert_row

log = logging.getLogger(__name__)


@dataclass
class SynthConfig:
    """Options of `rlt data synth`."""

    out: str = opt("", "Output dataset artifact.", hash=False, flag=True, required=True)
    n: int = opt(1000, "Number of problems.", flag=True, check=at_least(1))
    seed: int = opt(0, "Sampling seed.", flag=True)
    split: str = opt("train", "train or test (disjoint question sets).", flag=True, choices=("train", "test"))
    min_digits: int = opt(2, "Fewest digits of an operand.", check=between(1, 5))
    max_digits: int = opt(3, "Most digits of an operand.", check=between(1, 5))
    unhelpful: float = opt(0.0, "Share (0-1) of rows whose trace is correct but unhelpful (see style).", flag=True, check=between(0, 1))
    style: str = opt("asserted", "Unhelpful trace style: asserted (the sum without the column work).")
    force: bool = opt(False, "Overwrite an existing output.", hash=False, flag=True)


@dataclass
class ImportConfig:
    """Options of `rlt data import`."""

    src: str = opt("", "Local file/folder (or hub id) to import.", arg=True, input=True, required=True)
    out: str = opt("", "Output dataset artifact.", hash=False, flag=True, required=True)
    format: str = opt("columns", f"Source layout: {', '.join(FORMATS)}.", flag=True, choices=FORMATS)
    map: dict = opt(dict, "Column renames dst=src for the columns format, e.g. question=prompt.", flag="--map")
    split: str = opt("train", "Split of a DatasetDict folder or hub dataset.", flag=True)
    task: str | None = opt(None, "Task of every imported row (math, choice, integer, addition); needed for "
                           "--format columns of multiple-choice or integer data, overrides a format's own.",
                           flag=True)
    seed: int = opt(0, "Seed of the GPQA option shuffle.")
    limit: int | None = opt(None, "Import only the first N rows.", flag=True, check=at_least(1))
    force: bool = opt(False, "Overwrite an existing output.", hash=False, flag=True)


@dataclass
class MergeConfig:
    """Options of `rlt data merge`."""

    inputs: list[str] = opt(list, "Artifacts to merge (shards, resumed runs).", arg=True, input=True, required=True)
    out: str = opt("", "Output artifact.", hash=False, flag=True, required=True)
    force: bool = opt(False, "Overwrite an existing output.", hash=False, flag=True)


# ----------------------------------------------------------------------------- synth


def synth(cfg: SynthConfig) -> Path:
    """Write `n` synthetic addition problems of one split."""
    check_config(cfg)
    if cfg.min_digits > cfg.max_digits:
        raise UserError(f"min_digits ({cfg.min_digits}) must not exceed max_digits ({cfg.max_digits})")
    try:
        rows = tasks.synth_rows(cfg.n, cfg.seed, cfg.split, cfg.min_digits, cfg.max_digits,
                                unhelpful=cfg.unhelpful, style=cfg.style)
    except ValueError as e:
        raise UserError(str(e)) from None
    return _write_dataset(cfg, rows)


def _write_dataset(cfg, rows: list[dict], extra: dict | None = None) -> Path:
    def write(w) -> None:
        w.write(rows)
        w.finish(extra)
        log.info("wrote %s to %s", plural(len(w.done), "row"), w.out)

    return run_stage(cfg, "dataset", write)


# ----------------------------------------------------------------------------- import


def _missing_columns(cfg: ImportConfig, rows: list[dict]) -> str:
    """For --format columns: '; missing column(s) ...' when the source lacks a question, or both a
    solution (a training set's) and an answer (an eval set's); the benchmark format that reads it when
    it is a raw benchmark file (MATH-500's `problem`: --format math500)."""
    if cfg.format != "columns" or not rows:
        return ""
    columns = set(rows[0]) | set(cfg.map)
    missing = [] if "question" in columns else ["question"]
    if not {"solution", "answer"} & columns:
        missing.append("solution (a training set) or answer (an eval set)")
    if not missing:
        return ""
    raw = raw_format(columns, cfg.src)
    hint = f"; it is a raw {raw[1]} file: import it with --format {raw[0]}" if raw else ""
    return f"; missing column(s) {', '.join(missing)}, rename with --map dst=src{hint}"


def _check_import_config(cfg: ImportConfig) -> None:
    check_config(cfg)
    if cfg.map and cfg.format != "columns":
        raise UserError("--map applies to --format columns only")
    check_map(cfg.map)
    if cfg.task is not None:
        verify.get_checker(cfg.task)  # UserError listing the valid tasks


def _finish_row(c: dict, cfg: ImportConfig) -> dict:
    """Task, source and id of a converted row; its gold must be readable by its task's checker."""
    if cfg.task is not None:
        c["task"] = cfg.task
    c.setdefault("source", cfg.format if cfg.format in BENCHMARKS else Path(cfg.src).name)
    c["id"] = c.get("id") or row_id(c["question"], c.get("solution"))
    if c.get("answer") is not None:
        try:
            verify.check_gold(c.get("task") or "math", c["answer"])
        except ValueError:
            raise RowError(f"gold answer {c['answer']!r} cannot be read by the {c.get('task') or 'math'} "
                           "checker") from None
    return c


def import_(cfg: ImportConfig) -> Path:
    """Convert a local dataset in a known layout to a dataset artifact.

    Rows that do not parse are skipped with a warning naming the first one and its reason
    (counts and examples in the manifest); when none parses, UserError naming the file,
    the row and the reason.
    """
    _check_import_config(cfg)
    rows = load_source(cfg.src, cfg.split)[: cfg.limit]
    check_map(cfg.map, {k for r in rows for k in r})
    out, bad = [], []
    for i, r in enumerate(rows):
        try:
            out.append(_finish_row(convert_row(r, cfg.format, cfg.map, cfg.seed, i), cfg))
        except RowError as e:
            bad.append((i, str(e)))
    if not out:
        first = f"; row {bad[0][0]}: {bad[0][1]}" if bad else ""
        raise UserError(f"{cfg.src}: no row parsed as format {cfg.format} ({len(rows)} rows read"
                        f"{_missing_columns(cfg, rows) or first})")
    if bad:
        log.warning("%s: %d of %d rows did not parse as %s (first: row %d: %s)", cfg.src, len(bad), len(rows),
                    cfg.format, *bad[0])
    repeated = distinct_ids(out, cfg.src)
    columns = list(dict.fromkeys(k for c in out for k in c))  # every row the same columns (to_table reads row 0's)
    out = [{k: c.get(k) for k in columns} for c in out]
    table = pa.Table.from_pylist(out)
    validate(table, "dataset", cfg.src, required=EVAL_REQUIRED)
    counts = _report_golds(cfg, out)
    return _write_dataset(cfg, out, {"skipped_rows": len(bad), "repeated_ids": repeated, **counts,
                                             "skipped_examples": [{"row": i, "reason": why} for i, why in bad[:20]]})


def _report_golds(cfg: ImportConfig, rows: list[dict]) -> dict:
    """Say how many rows lack a solution (eval rows: training needs one) and how many lack a gold answer
    (no answer, no box in the solution: they can train, not be evaluated); the manifest's counts."""
    no_solution = sum(not r.get("solution") for r in rows)
    no_answer = sum(verify.gold_from_row(r) is None for r in rows)
    if no_solution:
        (log.info if no_solution == len(rows) else log.warning)(
            "%s: %d of %d rows have no solution: they are eval rows (question + answer), left without one; "
            "training on them is refused", cfg.src, no_solution, len(rows))
    if no_answer:
        log.warning("%s: %d of %d rows have no gold answer (no answer value, no \\boxed{} in the solution): they "
                    "can train but not be evaluated; import an eval set's answers with --map answer=COLUMN",
                    cfg.src, no_answer, len(rows))
    return {"rows_without_solution": no_solution, "rows_without_answer": no_answer}


# ----------------------------------------------------------------------------- merge


# Recorded inputs that are the rows' own source: shards of one run read the same data, imports of different
# files may be merged (their rows are compared); every other input (a teacher, a model) must be the same.
ROW_SOURCES = ("data", "src", "inputs")


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in (d or {}).items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def check_one_run(manifests: dict[str, dict]) -> None:
    """Inputs of a merge must come from one run: the same config but for `--shard` and the same inputs but
    the data (UserError naming the keys or inputs that differ); an incomplete i/n set of shards is warned of."""
    recorded = {p: m for p, m in manifests.items() if m and m.get("unsharded_hash")}
    if recorded:
        first, m0 = next(iter(recorded.items()))
        for p, m in recorded.items():
            if m["unsharded_hash"] != m0["unsharded_hash"]:
                a, b = _flat(m0.get("config")), _flat(m.get("config"))
                keys = sorted(k for k in set(a) | set(b) if k.split(".")[0] not in ("shard", "out", "force")
                              and a.get(k) != b.get(k))
                what = ", ".join(keys) or "hashed settings"
                raise UserError(f"cannot merge {first} and {p}: their configs differ in {what} "
                                "(only --shard may differ between the parts of one run)")
    for p, m in manifests.items():
        for name, inp in ((m or {}).get("inputs") or {}).items():
            if name.split("[")[0] in ROW_SOURCES:
                continue
            others = {q: ((n or {}).get("inputs") or {}).get(name) for q, n in manifests.items() if q != p}
            for q, other in others.items():
                if other is not None and other.get("hash") != inp.get("hash"):
                    raise UserError(f"cannot merge {p} and {q}: input {name} differs ({inp.get('path')} vs "
                                    f"{other.get('path')}); the parts of one run share every input but their data")
    shards: dict[int, set[int]] = {}
    for m in manifests.values():
        spec = (m or {}).get("shard") or ((m or {}).get("config") or {}).get("shard")
        if spec:
            i, n = parse_shard(spec)
            shards.setdefault(n, set()).add(i)
    for n, got in shards.items():
        missing = sorted(set(range(n)) - got)
        if missing:
            log.warning("merging %s of %d: shard%s %s missing, the merged artifact holds only part of the rows",
                        plural(len(got), "shard"), n, "s" * (len(missing) > 1),
                        ", ".join(f"{i}/{n}" for i in missing) + (" are" if len(missing) > 1 else " is"))


def merge(cfg: MergeConfig) -> Path:
    """Join artifacts of one kind; identical duplicates collapse, conflicting ones are refused.

    The inputs must be parts of one run (`check_one_run`): UserError when their configs differ in
    anything but the shard, or a model they were made with differs; a warning when shards are missing.
    """
    check_config(cfg)
    kinds, manifests = {}, {}
    for p in cfg.inputs:
        m = read_manifest(p)
        if m is None:
            read_table(p)  # raises the right message for missing/incomplete inputs
        kinds[p], manifests[p] = (m or {}).get("kind", "dataset"), m
    if len(set(kinds.values())) > 1:
        raise UserError(f"cannot merge artifacts of different kinds: {kinds}")
    check_one_run(manifests)
    kind = next(iter(kinds.values()))
    key = ROW_KEYS[kind]
    merged: dict[tuple, dict] = {}
    for p in cfg.inputs:
        for r in read_table(p).to_pylist():
            k = tuple(r.get(c) for c in key)
            if k in merged and merged[k] != r:
                raise UserError(f"conflicting rows for {dict(zip(key, k))} in {p}")
            merged[k] = r

    def write(w) -> None:
        w.write(list(merged.values()))
        w.finish()
        log.info("merged %s from %s into %s", plural(len(merged), "row"), plural(len(cfg.inputs), "artifact"), w.out)

    return run_stage(cfg, kind, write, key=key)
