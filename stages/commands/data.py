"""`rlt data synth|import|merge`: build, import and merge dataset/traces artifacts.

    rlt data synth --out data/train --n 2000 --split train
    rlt data import bespoke.parquet --out data/stratos --format stratos
    rlt data import gpqa_diamond.csv --out data/gpqa --format gpqa
    rlt data merge shards/0 shards/1 --out traces/all

Input: a local Parquet/JSONL/JSON/CSV file, a `datasets.save_to_disk` folder, a
folder of Parquet (or JSONL) files, or a hub id (where a network exists). In a
folder, names starting with `.` or `_` are skipped at every depth (macOS `._x`
files, `.ipynb_checkpoints/`, Spark's `_SUCCESS`), as pyarrow, pandas and
`datasets` skip them; one line names the files read and those left out. Output: a dataset artifact (`id, question, solution,
reasoning_trace, answer, task, source`, plus the benchmark's grouping columns
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

import difflib
import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from stages import verify
from stages.artifacts.benchmarks import raw_format
from stages.artifacts.layout import read_manifest
from stages.artifacts.read import parse_shard, read_table
from stages.artifacts.schemas import EVAL_REQUIRED, GROUP_COLUMNS, ROW_KEYS, distinct_ids, row_id, validate
from stages.artifacts.state import already_complete
from stages.artifacts.writer import ArtifactWriter
from stages.config import at_least, between, check_config, inputs_of, opt
from stages.errors import UserError
from stages.method import tasks
from stages.method.views import parse_stratos
from stages.models.loading import check_hub_dataset, hub_id, not_found
from stages.progress import plural

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
        w.write(rows)
        w.finish(extra)
        log.info("wrote %s to %s", plural(len(w.done), "row"), w.out)
    return w.out


# ----------------------------------------------------------------------------- import


def load_source(src: str, split: str) -> list[dict]:
    """Rows of a local file, save_to_disk folder, Parquet folder, or hub dataset."""
    p = Path(src)
    if p.is_file() or (p.is_dir() and read_manifest(p) is not None):
        return read_table(p).to_pylist()
    if p.is_dir():
        if (p / "dataset_dict.json").is_file() or (p / "state.json").is_file():
            return _load_from_disk(p, split)
        return [r for f in folder_files(p) for r in read_table(f).to_pylist()]
    if hub_id(src):  # not a mistyped local path (`src/nope.jsonl`): that is refused at once, below
        return _load_hub(src, split)
    raise not_found(src, "input")


def hidden(path: Path, base: Path) -> bool:
    """A file Parquet readers skip: a name under `base` (itself or a folder above it) starting with `.` or
    `_` (pyarrow.dataset's ignore_prefixes, which pandas and `datasets` use too)."""
    return any(part.startswith((".", "_")) for part in path.relative_to(base).parts)


def _data_files(folder: Path, pattern: str) -> list[Path]:
    """The files matching `pattern` at any depth under `folder` that are not hidden, sorted by path."""
    return sorted(f for f in folder.rglob(pattern) if f.is_file() and not hidden(f, folder))


def _names(files: list[Path], folder: Path, most: int = 10) -> str:
    """`a.parquet, sub/b.parquet` (paths under `folder`), the first `most` and how many more."""
    names = [str(f.relative_to(folder)) for f in files]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def folder_files(folder: Path) -> list[Path]:
    """The data files a folder import reads - its .parquet files at any depth, else its .jsonl files, hidden
    names left out (`hidden`) - said in one line with their names and the names of those left out.
    UserError when there is none."""
    parquet, jsonl = _data_files(folder, "*.parquet"), _data_files(folder, "*.jsonl")
    files = parquet or jsonl
    if not files:
        raise UserError(f"{folder} holds no dataset (no save_to_disk files, no .parquet or .jsonl; names "
                        "starting with . or _ are skipped)")
    left = [f"{_names(jsonl, folder)} (the folder has .parquet files: those are read)"] if parquet and jsonl else []
    hid = sorted(f for pattern in ("*.parquet", "*.jsonl") for f in folder.rglob(pattern)
                 if f.is_file() and hidden(f, folder))
    left += [f"{_names(hid, folder)} (names starting with . or _)"] if hid else []
    log.info("%s: reading %s: %s%s", folder, plural(len(files), "file"), _names(files, folder),
             f"; left out: {'; '.join(left)}" if left else "")
    return files


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

    check_hub_dataset(src)  # offline or unreachable: one line at once, not the hub client's retries
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


# where each format's source holds its grouping columns (GROUP_COLUMNS) and its own row id, by our name
_GROUPS = {
    "math500": {"level": ("level",), "subject": ("subject", "type"), "unique_id": ("unique_id",)},
    "gpqa": {"domain": ("High-level domain", "high_level_domain", "domain"),
             "subdomain": ("Subdomain", "subdomain"), "record_id": ("Record ID", "record_id")},
    "columns": {c: (c,) for c in GROUP_COLUMNS},
}


def _group_columns(row: dict, fmt: str) -> dict:
    """The grouping (and source id) columns of a source row under their dataset names, as text."""
    return {name: _text(_get(row, *sources)) for name, sources in _GROUPS.get(fmt, {}).items()}


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
    """MATH-500's row; without a solution the solution stays empty (an eval row), never made up."""
    q, a = _text(_get(row, "problem", "question")), _text(_get(row, "answer"))
    if not q or a is None:
        raise RowError("needs 'problem' and 'answer'")
    return {"question": q, "solution": _text(_get(row, "solution")), "answer": a}


def _aime_row(row: dict) -> dict:
    q, a = _text(_get(row, "problem", "question")), _text(_get(row, "answer"))
    if not q or a is None:
        raise RowError("needs 'problem' (or 'question') and 'answer'")
    try:
        a = str(int(a))  # '070' -> '70'
    except ValueError:
        raise RowError(f"answer {a!r} is not an integer") from None
    return {"question": q, "solution": _text(_get(row, "solution")), "answer": a}


_NEEDS = "needs 'question' and a 'solution' (a training set) or an 'answer' (an eval set)"


KEEP = ("id", "question", "solution", "reasoning_trace", "answer", "task", "source")  # a columns row's own
MAP_DESTINATIONS = KEEP + GROUP_COLUMNS  # what `--map dst=src` may name as dst


def _columns_row(row: dict, mapping: dict) -> dict:
    """A row of named columns: a question and a solution (training) or an answer (eval), or both."""
    merged = {**row, **{dst: row.get(col) for dst, col in mapping.items()}}
    if not _text(merged.get("question")) or (_text(merged.get("solution")) is None
                                              and _text(merged.get("answer")) is None):
        raise RowError(f"{_NEEDS} (rename with --map dst=src)")
    return {**{k: (str(merged[k]) if merged.get(k) is not None else None) for k in KEEP},
            **_group_columns(merged, "columns")}


def _nearest(name: str, names) -> str:
    """' (did you mean 'x'?)' for the closest of `names` (or one containing `name`), else ''."""
    names = sorted(set(map(str, names)))
    near = difflib.get_close_matches(name, names, n=1, cutoff=0.6) or \
        [n for n in names if name.lower() in n.lower()][:1] or difflib.get_close_matches(name, names, n=1, cutoff=0.4)
    return f" (did you mean '{near[0]}'?)" if near else ""


def check_map(mapping: dict, columns=None) -> None:
    """UserError naming a `--map dst=src` whose destination is not a dataset column or (given the input's
    `columns`) whose source column the input lacks, with the nearest name."""
    for dst, src in mapping.items():
        if dst not in MAP_DESTINATIONS:
            raise UserError(f"--map {dst}={src}: unknown destination column '{dst}'{_nearest(dst, MAP_DESTINATIONS)}; "
                            f"valid: {', '.join(MAP_DESTINATIONS)}")
        if columns is not None and src not in columns:
            raise UserError(f"--map {dst}={src}: the input has no column '{src}'{_nearest(src, columns)}; "
                            f"its columns: {', '.join(sorted(map(str, columns)))}")


def convert_row(row: dict, fmt: str, mapping: dict, seed: int, index: int) -> dict:
    """One source row -> dataset row (with its task); RowError(reason) when it does not parse."""
    if fmt == "gpqa":
        return {**gpqa_row(row, seed), **_group_columns(row, fmt)}
    if fmt == "columns":
        return _columns_row(row, mapping)
    converters = {"stratos": _stratos_row, "math500": _math500_row, "aime": _aime_row}
    return {**converters[fmt](row), "task": FORMAT_TASKS[fmt], **_group_columns(row, fmt)}


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
    solution = f"{expl}\n\n{_boxed(letter)}" if expl else None  # none without an explanation, never made up
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
    solution = f"{expl}\n\n{_boxed(letter)}" if expl else None
    return {"question": q, "solution": solution, "answer": letter, "task": "choice"}


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
    inputs = inputs_of(cfg)
    return _write_dataset(cfg, out, inputs, {"skipped_rows": len(bad), "repeated_ids": repeated, **counts,
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
    inputs = inputs_of(cfg)
    with ArtifactWriter(cfg.out, kind, cfg, inputs=inputs, force=cfg.force, key=key) as w:
        if not w.complete:
            w.write(list(merged.values()))
            w.finish()
        log.info("merged %s from %s into %s", plural(len(merged), "row"), plural(len(cfg.inputs), "artifact"), w.out)
    return w.out
