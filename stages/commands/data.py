"""`rlt data synth|import|merge`: build, import and merge dataset/traces artifacts.

    rlt data synth --out data/train --n 2000 --split train
    rlt data import bespoke.parquet --out data/stratos --format stratos
    rlt data import gpqa_diamond.csv --out data/gpqa --format gpqa
    rlt data merge shards/0 shards/1 --out traces/all

Input: a local Parquet/JSONL/JSON/CSV file, a `datasets.save_to_disk` folder, a
folder of Parquet files, or a hub id (where a network exists). Output: a dataset
artifact (`id, question, solution, reasoning_trace, answer, task, source`).
Rows that do not parse are counted and reported, never silently dropped.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from stages import verify
from stages.artifacts.layout import read_manifest
from stages.artifacts.read import read_table
from stages.artifacts.schemas import ROW_KEYS, row_id, validate
from stages.artifacts.state import already_complete
from stages.artifacts.writer import ArtifactWriter
from stages.config import at_least, between, check_config, inputs_of, opt
from stages.errors import UserError
from stages.method import tasks
from stages.method.views import parse_stratos
from stages.models.loading import hub_id, not_found

log = logging.getLogger(__name__)
FORMATS = ("columns", "stratos", "math500", "aime", "gpqa")
LETTERS = "ABCD"
BENCHMARKS = ("math500", "aime", "gpqa")  # their rows get source = the format name
FORMAT_TASKS = {"stratos": "math", "math500": "math", "aime": "integer", "gpqa": "choice"}


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
    return _write_dataset(cfg, rows, {})


def _write_dataset(cfg, rows: list[dict], inputs: dict, extra: dict | None = None) -> Path:
    with ArtifactWriter(cfg.out, "dataset", cfg, inputs=inputs, force=cfg.force) as w:
        if w.complete:
            return already_complete(w.out)
        w.write(_dedupe(rows))
        w.finish(extra)
        log.info("wrote %d rows to %s", len(w.done), w.out)
    return w.out


def _dedupe(rows: list[dict]) -> list[dict]:
    seen, out = set(), []
    for r in rows:
        if r["id"] not in seen:
            seen.add(r["id"])
            out.append(r)
    return out


# ----------------------------------------------------------------------------- import


def load_source(src: str, split: str) -> list[dict]:
    """Rows of a local file, save_to_disk folder, Parquet folder, or hub dataset."""
    p = Path(src)
    if p.is_file() or (p.is_dir() and read_manifest(p) is not None):
        return read_table(p).to_pylist()
    if p.is_dir():
        if (p / "dataset_dict.json").is_file() or (p / "state.json").is_file():
            return _load_from_disk(p, split)
        files = sorted(p.rglob("*.parquet")) or sorted(p.rglob("*.jsonl"))
        if not files:
            raise UserError(f"{p} holds no dataset (no save_to_disk files, no .parquet or .jsonl)")
        return [r for f in files for r in read_table(f).to_pylist()]
    if hub_id(src):  # not a mistyped local path (`src/nope.jsonl`): that is refused at once, below
        return _load_hub(src, split)
    raise not_found(src, "input")


def _load_from_disk(p: Path, split: str) -> list[dict]:
    import datasets

    ds = datasets.load_from_disk(str(p))
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise UserError(f"{p} has no split {split!r} (has: {', '.join(ds)})")
        ds = ds[split]
    return ds.to_list()


def _load_hub(src: str, split: str) -> list[dict]:
    import datasets

    try:
        return datasets.load_dataset(src, split=split).to_list()
    except Exception as e:  # noqa: BLE001 - offline or unknown id: one line, not a traceback
        raise UserError(f"cannot load {src!r} from the hub: {str(e).splitlines()[0][:200]}") from None


def _get(row: dict, *names: str):
    """First present column among `names`, matched case-insensitively."""
    lower = {k.lower(): v for k, v in row.items()}
    for n in names:
        if n.lower() in lower and lower[n.lower()] is not None:
            return lower[n.lower()]
    return None


def _boxed(ans: str) -> str:
    return f"The answer is \\boxed{{{ans}}}."


class RowError(ValueError):
    """A source row that does not parse; the message is the reason."""


def _text(value) -> str | None:
    return None if value is None else str(value).strip() or None


def _stratos_row(row: dict) -> dict:
    conv = row.get("conversations") or []
    user = next((c.get("value") for c in conv if c.get("from") in ("user", "human")), None)
    asst = next((c.get("value") for c in conv if c.get("from") in ("assistant", "gpt")), None)
    if not user or not isinstance(asst, str):
        raise RowError("no user and assistant turns in 'conversations'")
    parsed = parse_stratos(asst)
    if not parsed:
        raise RowError("the assistant turn lacks the thought and solution tags")
    trace, solution = parsed
    return {"question": user, "solution": solution, "reasoning_trace": trace}


def _math500_row(row: dict) -> dict:
    q, a = _text(_get(row, "problem", "question")), _text(_get(row, "answer"))
    if not q or a is None:
        raise RowError("needs 'problem' and 'answer'")
    return {"question": q, "solution": _text(_get(row, "solution")) or _boxed(a), "answer": a}


def _aime_row(row: dict) -> dict:
    q, a = _text(_get(row, "problem", "question")), _text(_get(row, "answer"))
    if not q or a is None:
        raise RowError("needs 'problem' (or 'question') and 'answer'")
    try:
        a = str(int(a))  # '070' -> '70'
    except ValueError:
        raise RowError(f"answer {a!r} is not an integer") from None
    return {"question": q, "solution": _text(_get(row, "solution")) or _boxed(a), "answer": a}


def _columns_row(row: dict, mapping: dict) -> dict:
    merged = {**row, **{dst: row.get(col) for dst, col in mapping.items()}}
    if not _text(merged.get("question")) or merged.get("solution") is None:
        raise RowError("needs 'question' and 'solution' (rename with --map dst=src)")
    keep = ("id", "question", "solution", "reasoning_trace", "answer", "task", "source")
    return {k: (str(merged[k]) if merged.get(k) is not None else None) for k in keep}


def convert_row(row: dict, fmt: str, mapping: dict, seed: int, index: int) -> dict:
    """One source row -> dataset row (with its task); RowError(reason) when it does not parse."""
    if fmt == "gpqa":
        return gpqa_row(row, seed)
    if fmt == "columns":
        return _columns_row(row, mapping)
    converters = {"stratos": _stratos_row, "math500": _math500_row, "aime": _aime_row}
    return {**converters[fmt](row), "task": FORMAT_TASKS[fmt]}


# ----------------------------------------------------------------------------- GPQA


_LETTERED = re.compile(r"^\s*\(?([A-D])[.):]\s", re.MULTILINE)


def gpqa_row(row: dict, seed: int) -> dict:
    """A GPQA row as released (Question, Correct Answer, Incorrect Answer 1-3) or pre-formatted."""
    if _get(row, "Correct Answer") is not None and _get(row, "Incorrect Answer 1") is not None:
        return _gpqa_released(row, seed)
    return _gpqa_formatted(row)


def _gpqa_released(row: dict, seed: int) -> dict:
    """Options shuffled by (seed, question) so a row always gets the same letters."""
    q, right = _text(_get(row, "Question")), _text(_get(row, "Correct Answer"))
    wrong = [_text(_get(row, f"Incorrect Answer {i}")) for i in (1, 2, 3)]
    if not q or right is None or any(w is None for w in wrong):
        raise RowError("needs 'Question', 'Correct Answer' and 'Incorrect Answer 1'-'3'")
    options = [right, *wrong]
    order = list(range(4))
    random.Random(f"{seed}:{q}").shuffle(order)
    letter = LETTERS[order.index(0)]
    body = "\n".join(f"{LETTERS[i]}) {options[j]}" for i, j in enumerate(order))
    question = f"{q}\n\n{body}\n\nAnswer with the letter of the correct option in \\boxed{{}}."
    expl = _text(_get(row, "Explanation"))
    solution = (f"{expl}\n\n" if expl else "") + _boxed(letter)
    return {"question": question, "solution": solution, "answer": letter, "task": "choice"}


_OPTION_COLUMNS = (tuple(LETTERS), ("choice1", "choice2", "choice3", "choice4"),
                   ("option_a", "option_b", "option_c", "option_d"))


def _option_list(row: dict) -> list[str] | None:
    """The four options from an 'options'/'choices' list, or from columns A-D / choice1-4 / option_a-d."""
    options = _get(row, "options", "choices")
    if options is None:
        names = next((n for n in _OPTION_COLUMNS if all(_get(row, c) is not None for c in n)), None)
        return None if names is None else [str(_get(row, c)).strip() for c in names]
    if isinstance(options, str):
        import json

        try:
            options = json.loads(options)
        except ValueError:
            raise RowError("'options' is text that is not a JSON list") from None
    options = [str(o).strip() for o in list(options)]
    if len(options) != len(LETTERS):
        raise RowError(f"'options' holds {len(options)} options, expected {len(LETTERS)}")
    return options


def _option_index(value) -> int | None:
    """0-3 from 2, 2.0 (a JSON column with gaps reads as floats) or '2'; None otherwise."""
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if number.is_integer() and 0 <= number < len(LETTERS) else None


def _letter(row: dict, options: list[str] | None) -> str:
    """The correct letter: a letter `answer`, else `correct_option_index`, else the option text's place."""
    answer = _text(_get(row, "answer", "correct_option", "label"))
    if answer is not None and answer.strip("()").upper() in LETTERS and len(answer.strip("()")) == 1:
        return answer.strip("()").upper()
    index = _option_index(_get(row, "correct_option_index", "answer_index"))
    if index is not None:
        return LETTERS[index]
    text = answer if answer is not None else _text(_get(row, "correct_answer"))
    if options and text in options:
        return LETTERS[options.index(text)]
    raise RowError(f"answer {answer!r} is not a letter {LETTERS[0]}-{LETTERS[-1]}, an option index "
                   "or one of the options")


def _gpqa_formatted(row: dict) -> dict:
    """Pre-formatted rows: the question with lettered options and a letter answer (+ options)."""
    q = _text(_get(row, "question", "problem", "prompt"))
    if not q:
        raise RowError("no 'Question'/'Correct Answer' columns and no pre-formatted 'question'")
    options = _option_list(row)
    letter = _letter(row, options)
    if options and len(set(_LETTERED.findall(q))) < len(LETTERS):  # options not in the text yet
        q += "\n\n" + "\n".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options))
    elif len(set(_LETTERED.findall(q))) < len(LETTERS):
        raise RowError("the question does not list options A-D and there is no 'options' column")
    expl = _text(_get(row, "explanation", "solution"))
    solution = (f"{expl}\n\n" if expl else "") + _boxed(letter)
    return {"question": q, "solution": solution, "answer": letter, "task": "choice"}


# ----------------------------------------------------------------------------- import


def _missing_columns(cfg: ImportConfig, rows: list[dict]) -> str:
    """For --format columns: '; missing column(s) ...' when the source lacks question/solution."""
    if cfg.format != "columns" or not rows:
        return ""
    missing = [c for c in ("question", "solution") if c not in set(rows[0]) | set(cfg.map)]
    return f"; missing column(s) {', '.join(missing)}, rename with --map dst=src" if missing else ""


def _check_import_config(cfg: ImportConfig) -> None:
    check_config(cfg)
    if cfg.map and cfg.format != "columns":
        raise UserError("--map applies to --format columns only")
    if cfg.task is not None:
        verify.get_checker(cfg.task)  # UserError listing the valid tasks


def _finish_row(c: dict, cfg: ImportConfig) -> dict:
    """Task, source and id of a converted row; its gold must be readable by its task's checker."""
    if cfg.task is not None:
        c["task"] = cfg.task
    c.setdefault("source", cfg.format if cfg.format in BENCHMARKS else Path(cfg.src).name)
    c["id"] = c.get("id") or row_id(c["question"], c["solution"])
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
    table = pa.Table.from_pylist(out)
    validate(table, "dataset", cfg.src)
    inputs = inputs_of(cfg)
    return _write_dataset(cfg, out, inputs, {"skipped_rows": len(bad),
                                             "skipped_examples": [{"row": i, "reason": why} for i, why in bad[:20]]})


# ----------------------------------------------------------------------------- merge


def merge(cfg: MergeConfig) -> Path:
    """Join artifacts of one kind; identical duplicates collapse, conflicting ones are refused."""
    check_config(cfg)
    kinds = {}
    for p in cfg.inputs:
        m = read_manifest(p)
        if m is None:
            read_table(p)  # raises the right message for missing/incomplete inputs
        kinds[p] = (m or {}).get("kind", "dataset")
    if len(set(kinds.values())) > 1:
        raise UserError(f"cannot merge artifacts of different kinds: {kinds}")
    kind = next(iter(kinds.values()))
    key = ROW_KEYS[kind]
    merged: dict[tuple, dict] = {}
    for p in cfg.inputs:
        for r in read_table(p).to_pylist():
            k = tuple(r.get(c) for c in key)
            if k in merged and merged[k] != r:
                raise UserError(f"conflicting rows for {dict(zip(key, k))} in {p}")
            merged[k] = r
    inputs = inputs_of(cfg)
    with ArtifactWriter(cfg.out, kind, cfg, inputs=inputs, force=cfg.force, key=key) as w:
        if not w.complete:
            w.write(list(merged.values()))
            w.finish()
        log.info("merged %d rows from %d artifacts into %s", len(merged), len(cfg.inputs), w.out)
    return w.out
