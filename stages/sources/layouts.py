"""Published dataset layouts -> dataset rows (`id, question, solution, reasoning_trace, answer, task, source`
plus the benchmark's grouping columns `schemas.GROUP_COLUMNS`): Bespoke-Stratos conversations, MATH-500,
AIME, GPQA (released CSV or formatted with options) and plain named columns (`--map dst=src`).

    convert_row({"problem": "1+1?", "solution": "\\\\boxed{2}", "answer": "2"}, "math500", {}, seed=0, index=0)
    # -> {"question": "1+1?", "solution": ..., "answer": "2", "task": "math", ...}

A row that does not parse raises RowError with the reason; the importer counts and reports those.
GPQA's options are shuffled by (`seed`, the question), so a row always gets the same letters.
"""

from __future__ import annotations

import difflib
import random
import re

from stages.artifacts.schemas import GROUP_COLUMNS
from stages.errors import UserError
from stages.method.views import parse_stratos

FORMATS = ("columns", "stratos", "math500", "aime", "gpqa")
LETTERS = "ABCD"
BENCHMARKS = ("math500", "aime", "gpqa")  # their rows get source = the format name
FORMAT_TASKS = {"stratos": "math", "math500": "math", "aime": "integer", "gpqa": "choice"}


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

