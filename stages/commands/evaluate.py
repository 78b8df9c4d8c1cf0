"""`rlt eval`: accuracy of one or more models on benchmarks and the synthetic task.

    rlt eval --model runs/student --data data/test --out runs/eval
    rlt eval --model base --model runs/student --data data/math500 --out runs/cmp \
        --num-generations 4 --temperature 0.7
    rlt eval --regrade runs/eval          # re-check saved responses, generate nothing

Input: a dataset artifact (or Parquet/JSONL file) with `id, question` and an
`answer` or a `solution` (the gold is the answer, else the solution's last
`\\boxed{}`: an eval set needs no solution); a raw benchmark file (MATH-500's
`problem`, GPQA's `Question`) is refused naming the `rlt data import` command that
reads it. Optional:
`task` (math | choice | integer | addition; default math) and `source` (the
benchmark name, e.g. from `rlt data import --format math500|aime|gpqa`).

Output: ONE eval artifact for all models (`artifacts.SCHEMAS["eval"]`: id, sample,
question, answer, task, model, response, extracted, correct, response_tokens,
truncated, plus source), keyed by (model, id, sample), so a comparison is one
table and a killed run resumes without regenerating finished rows. Beside the
data, `.rlt/summary.json` holds per model, overall and per benchmark: n, accuracy
(= the mean of `correct`) with a 95 % Wilson interval, pass@1 (mean over
generations), pass@k (unbiased estimator) when num_generations > 1, mean response tokens,
the truncation rate (responses cut off at max_new_tokens) and the format rate (responses in the
tag format: thought block, then solution block, every tag closed; 0 for a model that never adopted it); and per benchmark `groups`: the same stats per value of
each grouping column the rows carry (`schemas.GROUP_COLUMNS`: MATH-500's level and
subject, GPQA's domain and subdomain), which eval copies from the dataset into its
rows as extra columns.

Each question is prompted in the student format (`formats.student_prompt` with
`prompts.student_system`), generation stops at `<|end_of_solution|>` or eos, and
the answer is checked by the task's checker (stages/verify/) in a grading
process bounded in time (`check_timeout` per answer) and memory: an answer not
graded within them is wrong, with a warning line, and counted (`ungraded` in
the manifest); a stop request during grading keeps the rows graded before it. Every gold is parsed by its checker
before anything is generated; an unreadable one stops the run (exit 2) naming
its row id and gold and how many there are, with nothing written; with
`--skip-unreadable-golds` those rows are left out instead, counted in the log and
the table, their ids in summary.json (`skipped_golds`) and the manifest. The grader's version
(`verify.GRADER_VERSION`) is part of the config hash: rerunning (or `rlt run`)
over an output of an older grader re-grades its saved responses in place
instead of generating them again; `--regrade OUT` does so explicitly.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from stages import interrupt, records, verify
from stages.artifacts.benchmarks import with_import_hint
from stages.artifacts.layout import SUMMARY, find_meta, input_record, read_manifest, summary_path
from stages.artifacts.read import LIMIT_HELP, SHARD_HELP, read_rows, select_rows
from stages.artifacts.schemas import EVAL_REQUIRED, GROUP_COLUMNS, ROW_KEYS
from stages.artifacts.stage import run_stage
from stages.artifacts.state import differences
from stages.artifacts.writer import ArtifactWriter, acquire_lock
from stages.config import at_least, between, check_config, config_hash, inputs_of, opt, resolve
from stages.engines.base import EngineConfig, check_generations, derive_seed, warn_damaged
from stages.errors import UserError
from stages.method.settings import PromptsConfig
from stages.method.views import END_SOLUTION, parse_stratos, student_prompt
from stages.progress import plural
from stages.verify.stats import wilson

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """Options of `rlt eval`."""

    HASH_EXTRA: ClassVar[dict] = {"grader": verify.GRADER_VERSION}  # a new grader re-grades old outputs

    models: list[str] = opt(list, "Models to evaluate (HF directories or hub ids); several give one comparison.",
                            flag="--model", input=True, required="regrade")
    data: str = opt("", "Dataset artifact (or Parquet/JSONL file): question, solution, answer, task, source.",
                    flag=True, input=True, required="regrade")
    out: str = opt("", "Output eval artifact directory.", hash=False, flag=True, required="regrade")
    max_new_tokens: int = opt(1024, "Most tokens generated per response (longer ones count as truncated).", flag=True, check=at_least(1))
    temperature: float = opt(0.0, "Sampling temperature; 0 = greedy (the paper's setting).", flag=True, check=at_least(0))
    top_p: float = opt(1.0, "Nucleus sampling threshold.", flag=True, check=between(0, 1, low_open=True))
    num_generations: int = opt(1, "Responses per question; >1 reports pass@k and needs temperature > 0.", flag=True,
                               aliases=("samples",), check=at_least(1))
    seed: int = opt(0, "Sampling seed.", flag=True)
    shard: str | None = opt(None, SHARD_HELP, flag=True)
    limit: int | None = opt(None, LIMIT_HELP, flag=True, check=at_least(1))
    check_timeout: int = opt(5, "Seconds the grading of one answer may take (math-verify's parses and "
                             "comparisons included); an answer not graded in time is wrong and counted "
                             "(`ungraded` in the manifest).", check=at_least(1))
    # out of the hash: the rows evaluated are the same either way whenever the refusing default can run
    skip_bad_golds: bool = opt(False, "Evaluate the other rows when some golds cannot be read by their task's "
                               "checker (default: refuse the data); the rows left out are counted and their "
                               "ids listed in the summary and the manifest.", hash=False,
                               flag="--skip-unreadable-golds/--refuse-unreadable-golds")
    force: bool = opt(False, "Overwrite an existing output of another config.", hash=False, flag=True)
    regrade: str | None = opt(None, "Re-check the responses of this finished eval artifact with the current "
                              "grader, in place, without generating (other options are ignored).", hash=False,
                              flag=True)
    prompts: PromptsConfig = opt(PromptsConfig, "System prompts; set prompts.student_system to your model's.")
    engine: EngineConfig = opt(EngineConfig, "Generation engine (hf, vllm, openai) and its settings.")


# ----------------------------------------------------------------------------- statistics (pure)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k = 1 - C(n-c, k) / C(n, k) for n samples of which c are correct."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def k_values(num_generations: int) -> list[int]:
    """k reported for pass@k: powers of two below `num_generations`, and `num_generations` itself."""
    ks, k = [], 1
    while k < num_generations:
        ks.append(k)
        k *= 2
    return ks + [num_generations]


def group_stats(rows: list[dict]) -> dict:
    """Stats of one (model, benchmark) group of eval rows."""
    by_q: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        by_q[r["id"]].append(bool(r["correct"]))
    n_q = len(by_q)
    accuracy = sum(bool(r["correct"]) for r in rows) / len(rows)
    num_generations = min(len(v) for v in by_q.values())
    lo, hi = (round(x, 12) for x in wilson(accuracy, n_q))  # float noise (3.5e-18) reads as the 0 it is
    stats = {"n": n_q, "rows": len(rows), "num_generations": num_generations,
             "correct": sum(bool(r["correct"]) for r in rows), "accuracy": accuracy, "ci95": [lo, hi], "pass@1": accuracy,
             "mean_response_tokens": sum(int(r["response_tokens"] or 0) for r in rows) / len(rows),
             "truncation_rate": sum(bool(r["truncated"]) for r in rows) / len(rows),
             "format_rate": sum(in_tag_format(r.get("response") or "") for r in rows) / len(rows)}
    if num_generations > 1:
        for k in k_values(num_generations)[1:]:
            stats[f"pass@{k}"] = sum(pass_at_k(len(v), sum(v), k) for v in by_q.values()) / n_q
    return stats


def in_tag_format(response: str) -> bool:
    """Does a response follow the student format: a thought block, then a solution block, every tag closed
    (`views.parse_stratos`)? A model that never adopted the format scores 0 here, one that answers wrong
    in it does not: the two read apart beside accuracy."""
    return parse_stratos(response) is not None


def benchmark_of(row: dict) -> str:
    return row.get("source") or row.get("task") or "all"


def group_key(value: str) -> tuple:
    """Sort key of group values: numbers by value (level 2 before level 10), then text."""
    try:
        return (0, float(value), "")
    except ValueError:
        return (1, 0.0, value)


def subsets(rows: list[dict]) -> dict[str, dict[str, dict]]:
    """{column: {value: stats}} of one benchmark's rows for each grouping column they carry
    (schemas.GROUP_COLUMNS: level, subject, domain, subdomain); rows without a value are left out."""
    out = {}
    for column in GROUP_COLUMNS:
        by_value: dict[str, list[dict]] = defaultdict(list)
        for r in rows:
            if r.get(column) not in (None, ""):
                by_value[str(r[column])].append(r)
        if by_value:
            out[column] = {v: group_stats(by_value[v]) for v in sorted(by_value, key=group_key)}
    return out


def summarize(rows: list[dict], skipped: dict | None = None) -> dict:
    """{"models": {model: {"overall": stats, "benchmarks": {name: stats},
    "groups": {name: {column: {value: stats}}}}}} of eval rows (groups: `subsets`), plus
    "skipped_golds" (`read_golds`) when rows were left out for unreadable golds."""
    by_model: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_model[r["model"]].append(r)
    out = {}
    for model, mrows in by_model.items():
        groups: dict[str, list[dict]] = defaultdict(list)
        for r in mrows:
            groups[benchmark_of(r)].append(r)
        out[model] = {"overall": group_stats(mrows),
                      "benchmarks": {b: group_stats(g) for b, g in sorted(groups.items())}}
        per_group = {b: sub for b, g in sorted(groups.items()) if (sub := subsets(g))}
        if per_group:
            out[model]["groups"] = per_group
    summary = {"models": out}
    if skipped:
        summary["skipped_golds"] = skipped
    return summary


# ----------------------------------------------------------------------------- inputs


def validate_config(cfg: EvalConfig) -> None:
    """Every option problem as one UserError, before anything is loaded or written."""
    check_config(cfg)
    if len(set(cfg.models)) != len(cfg.models):
        raise UserError(f"--model given twice: {', '.join(cfg.models)}")
    check_generations(cfg.num_generations, cfg.temperature)


def _gold(r: dict) -> str:
    """The row's gold answer as its task's checker reads it; ValueError saying why when it has none or
    the checker cannot read it (an unknown task is a UserError: no row of it can be graded)."""
    task = r.get("task") or "math"
    verify.get_checker(task)
    gold = verify.gold_from_row(r)
    if gold is None:
        raise ValueError("has no answer (no answer column value and no \\boxed{} in its solution; an eval "
                         "set's answers import with --map answer=COLUMN)")
    try:
        verify.check_gold(task, gold)
    except ValueError as e:  # the checker says why, naming the gold
        raise ValueError(f"{e}: it cannot be read by the {task} checker") from None
    return gold


def read_golds(rows: list[dict], source: str, skip: bool) -> tuple[list[dict], dict | None]:
    """(the rows whose gold their task's checker reads, each with `answer` set to that gold; the record
    of the rows left out, or None). Every gold is read, before anything is generated.

    An unreadable gold is a UserError naming the first such row, its id and gold, and how many there are,
    unless `skip` (--skip-unreadable-golds): then those rows are left out and the record lists them:
    {"count": questions left out, "rows": rows left out, "ids": [...], "examples": the first 20
    {"row", "id", "gold", "reason"}}. UserError too when no row is left."""
    kept, bad = [], []
    for i, r in enumerate(rows):
        try:
            kept.append({**r, "answer": _gold(r)})
        except ValueError as e:
            bad.append({"row": i, "id": r["id"], "gold": r.get("answer"), "reason": str(e)})
    if not bad:
        return kept, None
    ids = sorted({b["id"] for b in bad})
    first = bad[0]
    if not skip:
        more = f"; {len(ids)} of {len(rows)} rows have no readable gold" if len(ids) > 1 else ""
        raise UserError(f"{source}: row {first['row']} (id {first['id']}) {first['reason']}{more} "
                        "(--skip-unreadable-golds evaluates the other rows and lists these)")
    if not kept:
        raise UserError(f"{source}: no row has a gold its checker reads (first: row {first['row']} "
                        f"(id {first['id']}) {first['reason']})")
    log.warning("%s: skipped %s with no readable gold (ids: %s); they are listed in the summary and the "
                "manifest", source, plural(len(ids), "question"), ", ".join(ids[:10]) + (" ..." if len(ids) > 10 else ""))
    return kept, {"count": len(ids), "rows": len(bad), "ids": ids, "examples": bad[:20]}


def _item(r: dict, columns: list[str]) -> dict:
    """One dataset row whose gold was read (`read_golds`) -> eval item with the grouping `columns` (text)."""
    task = r.get("task") or "math"
    groups = {c: None if r.get(c) in (None, "") else str(r[c]).strip() for c in columns}
    return {"id": r["id"], "question": r["question"], "answer": r["answer"], "task": task,
            "source": r.get("source") or task, **groups}


def read_dataset(path: str) -> list[dict]:
    """The rows of the dataset to evaluate (a question and a gold; no solution needed); a raw
    benchmark file (MATH-500's `problem` ...) is refused naming the import command that reads it."""
    try:
        return read_rows(path, "dataset", required=EVAL_REQUIRED)
    except UserError as e:
        raise with_import_hint(e, path) from None


def read_items(cfg: EvalConfig) -> tuple[list[dict], dict | None]:
    """Dataset rows -> (items with id, question, gold, task, source and grouping columns, the record
    of rows skipped for an unreadable gold or None); see `read_golds`."""
    rows = select_rows(read_dataset(cfg.data), cfg.shard, cfg.limit)
    if not rows:
        raise UserError(f"{cfg.data}: shard {cfg.shard} holds no rows")
    kept, skipped = read_golds(rows, cfg.data, cfg.skip_bad_golds)
    columns = [c for c in GROUP_COLUMNS if any(r.get(c) not in (None, "") for r in kept)]  # every item has them
    items = [_item(r, columns) for r in kept]
    letters = sum(it["task"] == "math" and it["answer"].strip("()") in verify.LETTERS for it in items)
    if letters:  # a likely multiple-choice set imported without its task
        log.warning("%s: %d math gold(s) are single letters %s-%s; if these are multiple-choice questions, "
                    "import them with --task choice", cfg.data, letters, verify.LETTERS[0], verify.LETTERS[-1])
    return items, skipped


def load_items(cfg: EvalConfig) -> list[dict]:
    """The items of `read_items` (golds read before anything is generated)."""
    return read_items(cfg)[0]


def grade(row: dict, timeout: int, counts: Counter | None = None) -> dict:
    """`row` (with task, answer, response, truncated) plus `extracted` and `correct` from its task's
    checker; a truncated response (the engine stopped at max_new_tokens) has no answer but a closed box.
    An answer not graded within `timeout` seconds (or the grader's memory bound) is wrong: one
    warning line, counted in `counts["ungraded"]`."""
    result = verify.check(row["task"], row["response"], row["answer"], timeout=timeout,
                          truncated=bool(row.get("truncated")))
    if result.ungraded:
        log.warning("%s: the answer of question %s (sample %s) %r was not graded within %s s or %d MiB: "
                    "graded wrong", row.get("model", ""), row["id"], row["sample"], result.extracted[:80],
                    timeout, verify.bounded.MEMORY_LIMIT >> 20)
        if counts is not None:
            counts["ungraded"] += 1
    return {**row, "extracted": result.extracted, "correct": result.correct}


def eval_row(item: dict, model: str, sample: int, completion, timeout: int, counts: Counter | None = None) -> dict:
    """One eval row from a completion (checked here)."""
    row = {"id": item["id"], "sample": sample, "question": item["question"], "answer": item["answer"],
           "task": item["task"], "model": model, "response": completion.text,
           "response_tokens": int(completion.tokens), "truncated": not completion.finished,
           "source": item["source"], **{c: item[c] for c in GROUP_COLUMNS if c in item}}
    return grade(row, timeout, counts)


# ----------------------------------------------------------------------------- compute


def _pending(items: list[dict], model: str, num_generations: int, done: set) -> list[dict]:
    return [it for it in items if any((model, it["id"], s) not in done for s in range(num_generations))]


def eval_model(cfg: EvalConfig, model: str, items: list[dict], writer: ArtifactWriter, bar, counts: Counter) -> None:
    """Generate and check every pending (id, sample) of one model, one part per batch.

    A batch holds `engine.batch_size` sequences: batch_size // num_generations questions (at least one).
    A stop request during grading writes the rows graded before it (the rest are generated again).
    """
    from stages.engines import make_engine

    todo = _pending(items, model, cfg.num_generations, writer.done)
    if not todo:
        return
    engine = make_engine(cfg.engine, model)
    try:
        system = cfg.prompts.student_system
        size = max(1, cfg.engine.batch_size // cfg.num_generations)
        for start in interrupt.stoppable(range(0, len(todo), size)):  # SIGTERM: the batch in flight is written
            batch = todo[start:start + size]
            prompts = [student_prompt(engine.tokenizer, system, it["question"]) for it in batch]
            outs = engine.generate(prompts, n=cfg.num_generations, max_new_tokens=cfg.max_new_tokens,
                                   temperature=cfg.temperature, top_p=cfg.top_p, stop=[END_SOLUTION],
                                   seed=derive_seed(cfg.seed, sorted(it["id"] for it in batch)))  # as generate
            counts["damaged_text"] += sum(c.damaged for comps in outs for c in comps[:cfg.num_generations])
            rows = []
            try:
                for it, comps in zip(batch, outs):
                    rows += [eval_row(it, model, s, c, cfg.check_timeout, counts)
                             for s, c in enumerate(comps[:cfg.num_generations])]
            finally:
                writer.write(rows)
            bar.advance(rows=len(rows), tokens=sum(r["response_tokens"] for r in rows))
    finally:
        engine.close()


def _check_models(cfg: EvalConfig) -> None:
    if cfg.engine.name != "hf":
        return  # vllm and openai resolve their own model names
    from stages.models.loading import check_model_path, check_remote_code

    for m in cfg.models:
        check_model_path(m, allow_pickle=cfg.engine.allow_pickle)
        check_remote_code(m, cfg.engine.trust_remote_code)  # before the data's first batch, not at load
        warn_other_prompt(cfg, m)


def warn_other_prompt(cfg: EvalConfig, model: str) -> None:
    """One warning line when `model` is a student rlt trained (its manifest records its config) with another
    student system prompt than this eval's: it answers best in the view it learned."""
    manifest = read_manifest(Path(model)) if Path(model).is_dir() else None
    trained = ((manifest or {}).get("config") or {}).get("prompts", {}).get("student_system")
    if manifest and manifest.get("config", {}).get("role", "student") == "student" and trained is not None \
            and trained != cfg.prompts.student_system:
        log.warning("%s was trained with another student system prompt than this eval's (%r, not %r): set "
                    "prompts.student_system to the one it learned", model, _short(trained),
                    _short(cfg.prompts.student_system))


def _short(text: str, most: int = 40) -> str:
    return text if len(text) <= most else text[:most - 3] + "..."


def write_summary(out: Path, rows: list[dict], skipped: dict | None = None) -> dict:
    """summary.json of `rows` (`summarize`), with the record of rows skipped for their gold."""
    summary = summarize(rows, skipped)
    summary_path(out).write_text(records.dumps(summary, indent=2))
    return summary


def read_summary(out: str | Path) -> dict:
    """summary.json of a finished eval artifact."""
    p = find_meta(out, SUMMARY)
    if p is None:
        raise UserError(f"{out} has no {SUMMARY}: is it an eval artifact?")
    return json.loads(p.read_text())


def _finish(w: ArtifactWriter, rows: list[dict], skipped: dict | None = None, counts: Counter | None = None,
            extra: dict | None = None) -> dict:
    """summary.json, then the manifest (with the grader's version, any rows skipped for their gold, and
    of this run the answers not graded within the grader's bounds, `ungraded`, and the responses whose
    text the engine gave as invalid Unicode, `damaged_text`, plus `extra`) last.
    The summary lists the models in `--models` order: rlt report's default differences read that order."""
    order = {m: i for i, m in enumerate(w.cfg.models)}
    summary = write_summary(w.out, sorted(rows, key=lambda r: order.get(r["model"], len(order))), skipped)
    w.finish({"summary": {m: s["overall"] for m, s in summary["models"].items()},
              "grader_version": verify.GRADER_VERSION, "generation_hash": config_hash(w.cfg, extra=False),
              "ungraded": (counts or Counter())["ungraded"], "damaged_text": (counts or Counter())["damaged_text"],
              **({"skipped_golds": skipped} if skipped else {}), **(extra or {})})
    warn_damaged((counts or Counter())["damaged_text"], w.out, log)
    if counts and counts["ungraded"]:
        log.warning("%s: %d answers were not graded within the grader's bounds (check_timeout=%s s) and count "
                    "as wrong", w.out, counts["ungraded"], w.cfg.check_timeout)
    for m, s in summary["models"].items():
        o = s["overall"]
        log.info("%s: accuracy %.1f %% over %s; %.1f %% of responses in the tag format, %.1f %% cut off",
                 m, 100 * o["accuracy"], plural(o["n"], "question"), 100 * o["format_rate"],
                 100 * o["truncation_rate"])
    return summary


def run(cfg: EvalConfig) -> Path:
    """validate -> load rows (golds parsed) -> generate and check per model -> summary.json -> manifest.

    With `regrade`, re-check that artifact's responses instead. A finished output that differs from
    `cfg` only by the grader's version is re-graded in place, not generated again.
    """
    from stages.progress import progress

    check_config(cfg)
    if cfg.regrade:
        return regrade(cfg.regrade)
    validate_config(cfg)
    items, skipped = read_items(cfg)
    _check_models(cfg)
    if _graded_by_older_grader(cfg):
        log.info("%s was graded by an older grader: re-grading its responses", cfg.out)
        return regrade(cfg.out, cfg)

    def write(w: ArtifactWriter) -> None:
        total = len(items) * len(cfg.models) * cfg.num_generations  # responses: questions x models x generations
        done = sum((m, it["id"], k) in w.done for m in cfg.models for it in items for k in range(cfg.num_generations))
        desc = f"eval ({plural(len(items), 'question')} x {plural(len(cfg.models), 'model')})"
        counts = Counter()
        with progress(total=total, desc=desc, unit="responses", done=done) as bar:
            for model in cfg.models:
                eval_model(cfg, model, items, w, bar, counts)
        _finish(w, [r for r in w.all_rows() if r["model"] in cfg.models], skipped, counts)

    return run_stage(cfg, "eval", write)


# ----------------------------------------------------------------------------- re-grading


def _graded_by_older_grader(cfg: EvalConfig) -> bool:
    """A finished eval at `cfg.out` with the same generation config and data but another grader."""
    manifest = read_manifest(cfg.out) if Path(cfg.out).is_dir() else None
    if not manifest or manifest.get("kind") != "eval" or manifest.get("config_hash") == config_hash(cfg):
        return False
    # outputs written before the grader joined the hash carry the generation hash as config_hash
    if manifest.get("generation_hash", manifest.get("config_hash")) != config_hash(cfg, extra=False):
        return False
    # evals written before models were recorded inputs hold the data alone: compare what they hold
    recorded = manifest.get("inputs") or {}
    inputs = {k: v for k, v in inputs_of(cfg).items() if k == "data" or k in recorded}
    return not differences(manifest, None, None, inputs)


def _config_of(out: Path, manifest: dict) -> EvalConfig:
    known = {f.name for f in dataclasses.fields(EvalConfig)} - {"regrade", "force"}
    options = {k: v for k, v in (manifest.get("config") or {}).items() if k in known}
    try:
        return resolve(EvalConfig, options={**options, "out": str(out)})
    except UserError as e:
        raise UserError(f"{out}: cannot read its recorded config: {e}") from None


def regrade(out: str | Path, cfg: EvalConfig | None = None) -> Path:
    """Re-check every response of the finished eval artifact `out` with the current grader.

    Nothing is generated. The new rows, summary and manifest (config hash with the current
    grader) are written to a sibling directory that then takes `out`'s place, so an
    interruption never leaves `out` half re-graded. UserError when `out` is not a finished
    eval artifact or a gold cannot be read.
    """
    out = Path(out)
    manifest = read_manifest(out) if out.is_dir() else None
    if manifest is None or manifest.get("kind") != "eval":
        raise UserError(f"{out} is not a finished eval artifact (nothing to re-grade)")
    inputs = manifest.get("inputs") or {}
    if cfg is not None:  # an eval from before models were recorded inputs gets the run's (its rows name them)
        inputs = {**{k: input_record(v) for k, v in inputs_of(cfg).items() if k not in inputs}, **inputs}
    cfg = cfg or _config_of(out, manifest)
    rows = [{**r, "task": r.get("task") or "math"} for r in read_rows(out, "eval")]
    kept, skipped = read_golds(rows, str(out), cfg.skip_bad_golds)
    before = {tuple(r[k] for k in ROW_KEYS["eval"]): bool(r["correct"]) for r in rows}
    counts = Counter()
    new = [grade(r, cfg.check_timeout, counts) for r in kept]
    changed = sum(before[tuple(r[k] for k in ROW_KEYS["eval"])] != r["correct"] for r in new)
    _replace_artifact(out, cfg, inputs, new,
                      merge_skipped(manifest.get("skipped_golds"), skipped), counts)
    log.info("re-graded %d responses in %s with grader %s: %d verdicts changed",
             len(new), out, verify.GRADER_VERSION, changed)
    return out


def finish_merged(w: ArtifactWriter, rows: list[dict], manifests: list[dict], extra: dict) -> dict:
    """Finish an eval merged from its shards (`rlt run`'s merge job): the summary and manifest one unsharded
    eval writes, the shards' skipped golds together, and `extra` (the shards)."""
    return _finish(w, rows, merge_skipped(*(m.get("skipped_golds") for m in manifests)), extra=extra)


def merge_skipped(*records: dict | None) -> dict | None:
    """One record of rows skipped for their gold (`read_golds`) from several (an earlier run's, a re-grade's)."""
    records = [r for r in records if r]
    if not records:
        return None
    ids = sorted({i for r in records for i in r["ids"]})
    return {"count": len(ids), "rows": sum(r.get("rows", r["count"]) for r in records), "ids": ids,
            "examples": [e for r in records for e in r.get("examples", [])][:20]}


def _replace_artifact(out: Path, cfg: EvalConfig, inputs: dict, rows: list[dict],
                      skipped: dict | None = None, counts: Counter | None = None) -> None:
    """Write `rows` as a finished eval artifact next to `out`, then swap it into place."""
    pid = os.getpid()
    tmp, old = out.with_name(f".{out.name}.regrade-{pid}"), out.with_name(f".{out.name}.old-{pid}")
    lock = acquire_lock(out)
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        with ArtifactWriter(tmp, "eval", cfg) as w:
            w.inputs = inputs  # the responses still come from the same data
            w.write(rows)
            _finish(w, rows, skipped, counts)
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        lock.unlink(missing_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
