"""Answer checking: one registry of pure checkers keyed by task name.

Used by `rlt eval` (stages/commands/evaluate.py); no artifacts of its own.

    result = check("math", response, gold="\\frac{1}{2}")   # Check(extracted, correct)
    check("math", response, gold, truncated=True)           # a cut-off response: boxes only
    check_gold("math", "\\$18.90")                         # ValueError if no checker can read it

Tasks (the dataset's `task` column) and how each is decided:
- `math`: the final answer of the solution part (`final_answer`) against the
  gold, both parsed by math-verify after one normalization; numbers compared
  exactly or with a relative tolerance (mathcheck.py);
- `choice`: the letter A-D of the last explicit answer statement (choice.py);
- `integer` (AIME) and `addition` (the synthetic task): the exact integer in the
  final answer (`033`, `1,234`, `17.0`, `\\text{17}` read as integers; a comma,
  `{,}` or a space (a LaTeX one too: `\\,`, `\\ `, `~`, `\\;`) separates thousands only in the shape
  `\\d{1,3}(,\\d{3})+`, so `1,2` and `3,5,7` are lists of numbers, never 12 or
  357, nor any integer; Minerva's `normalize_final_answer` drops every comma of
  an all-digit answer, math-verify reads `1,234` as 1234 and `1,2` as the set
  {1, 2}, as rlt does; anything else math-verify must evaluate to exactly that
  integer).
The final answer (`final_answer`) of a solution part (extract.py) is its last
box when it has one (an unclosed last box: no answer); without any box, the
answer it states in words (stated.py: an explicit final-answer statement, else
the last math span of its concluding sentence), but only when the response was
not cut off (extract.solution_complete, and `truncated=` from the engine).
`extracted` is exactly the text that was graded (the box's content, the stated
span, or the letter).

Bounds: `check` and `check_gold` run in a grading worker process (bounded.py) that
is killed after `timeout` seconds for the whole answer and limited to
`bounded.MEMORY_LIMIT` bytes, since math-verify's own timeouts (`signal.alarm`)
cannot stop one long C call (`\\boxed{9^{9^{9}}}`, `\\boxed{100000000!}`). An answer
not graded within those bounds is wrong, with `Check.ungraded` set (its `extracted` is
its final box, if any); a gold not read within them is unreadable (ValueError). A stop
request (SIGTERM) stops a check at once. The functions below them (`final_answer`,
`parse_integer`, `mathcheck`) run where they are called: math-verify's alarm needs the
main thread.

GRADER_VERSION changes whenever a verdict can change; it is part of an eval
output's config hash, so `rlt run` re-grades outputs of an older grader.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from stages.errors import UserError
from stages.verify import bounded, mathcheck
from stages.verify.choice import LETTERS, extract_letter, parse_gold_letter
from stages.verify.extract import boxes, final_box, last_boxed, solution_complete, solution_part, unwrap
from stages.verify.stated import stated_answer

log = logging.getLogger(__name__)
GRADER_VERSION = "7"
__all__ = ["CHECKERS", "GRADER_VERSION", "LETTERS", "Check", "boxes", "check", "check_gold", "extract_letter",
           "final_answer", "get_checker", "gold_from_row", "last_boxed", "parse_integer", "solution_part"]


@dataclass
class Check:
    """Outcome of checking one response: the answer read from it and whether it is right;
    `ungraded`: the check did not finish within its time or memory bound (then never right)."""

    extracted: str
    correct: bool
    ungraded: bool = False


def gold_from_row(row: dict) -> str | None:
    """The row's gold answer: the `answer` column, else the last `\\boxed{}` of its solution."""
    answer = row.get("answer")
    if answer is not None and str(answer).strip():
        return str(answer).strip()
    return last_boxed(str(row.get("solution") or ""))


def _gold_text(gold: str) -> str:
    """A gold written as a sentence with a box ('The answer is $\\boxed{3}$') -> its box content."""
    inner = last_boxed(gold)
    return inner if inner is not None else gold


def final_answer(response: str, timeout: int = 5, truncated: bool = False) -> str | None:
    """The graded answer text of a response (see the module rules), or None when it has none."""
    part = solution_part(response)
    box = final_box(part)
    if box is not None:
        return box[1]
    if truncated or not solution_complete(response):
        return None
    return stated_answer(part, timeout)


# ----------------------------------------------------------------------------- integers


_SEP = r"(?:\{,\}|,|" + mathcheck.SPACE + ")"  # thousands separators: `,`, `{,}`, a (LaTeX) space
_INTEGER = re.compile(r"([+-]?)\s*(\d+|\d{1,3}(" + _SEP + r")\d{3}(?:\3\d{3})*)(?:\.0*)?")
_DIGIT_LIST = re.compile(r"[+-]?\d+(?:\s*" + _SEP + r"\s*[+-]?\d+|\s*;\s*[+-]?\d+)+")  # 1,2 / 3, 5, 7 / 1 2


def parse_integer(text: str | None) -> int | None:
    """'1,234', '12,345,678', '042', '$17$', '\\text{17}', '12.0' -> int; anything else -> None.

    A separator is a thousands separator only in the shape `\\d{1,3}(,\\d{3})+` (one kind of
    separator throughout): '1,2', '3,5,7', '1,23' and '1234,567' are not integers."""
    if text is None:
        return None
    m = _INTEGER.fullmatch(unwrap(mathcheck.normalize(text)).strip())
    if m is None:
        return None
    digits = m.group(2) if m.group(3) is None else m.group(2).replace(m.group(3), "")
    return int(m.group(1) + digits)


def _integer_value(text: str, timeout: int) -> int | None:
    """The exact integer an answer denotes (plain digits, else math-verify's exact value);
    a list of numbers (`1,2`, `3, 5, 7`, `1 2`) is none, whatever math-verify makes of it."""
    direct = parse_integer(text)
    if direct is not None:
        return direct
    if _DIGIT_LIST.fullmatch(unwrap(mathcheck.normalize(text)).strip()):
        return None
    mathcheck.require_main_thread()
    for parsed in mathcheck.parse_answer(text, timeout):
        parsed = mathcheck.right_hand_side(parsed)  # `x = 204` answers 204
        exact = [v for v in mathcheck.number_values(parsed) or [] if v.is_Integer]
        if exact:
            return int(exact[0])
    return None


def check_integer(response: str, gold: str, timeout: int = 5, truncated: bool = False) -> Check:
    """Exact integer in the final answer of the solution part."""
    want = parse_integer(_gold_text(gold))
    if want is None:
        raise ValueError(f"gold answer {gold!r} is not an integer")
    answer = final_answer(response, timeout, truncated)
    if answer is None:
        return Check(extracted="", correct=False)
    got = _integer_value(answer, timeout)
    return Check(extracted=answer, correct=got is not None and got == want)


# ----------------------------------------------------------------------------- choice / math


def check_choice(response: str, gold: str, timeout: int = 5, truncated: bool = False) -> Check:
    """Multiple choice answered by letter (stages/verify/choice.py); a letter already stated counts
    in a cut-off response too (`truncated` changes nothing: an unclosed last box is no letter)."""
    want = parse_gold_letter(_gold_text(gold))
    got = extract_letter(solution_part(response))
    return Check(extracted=got or "", correct=got == want)


def _parse_gold_math(gold: str, timeout: int) -> tuple:
    parsed = mathcheck.parse_answer(_gold_text(gold), timeout)
    if not parsed:
        raise ValueError(f"gold answer {gold!r} cannot be parsed by math-verify")
    return parsed


def check_math(response: str, gold: str, timeout: int = 5, truncated: bool = False) -> Check:
    """The final answer of the solution part against the gold (stages/verify/mathcheck.py)."""
    mathcheck.require_main_thread()
    gold_parsed = _parse_gold_math(gold, timeout)
    answer = final_answer(response, timeout, truncated)
    if answer is None:
        return Check(extracted="", correct=False)
    pred = mathcheck.parse_answer(answer, timeout)
    return Check(extracted=answer, correct=bool(pred) and mathcheck.equal(gold_parsed, pred, timeout))


CHECKERS: dict[str, Callable[..., Check]] = {
    "math": check_math,
    "choice": check_choice,
    "integer": check_integer,
    "addition": check_integer,
}


def get_checker(task: str) -> Callable[..., Check]:
    """The checker of `task`; UserError listing the valid names otherwise."""
    try:
        return CHECKERS[task]
    except KeyError:
        raise UserError(f"unknown task {task!r} (valid: {', '.join(sorted(CHECKERS))})") from None


def check(task: str, response: str, gold: str, timeout: int = 5, truncated: bool = False) -> Check:
    """Check one response against its gold answer with the task's checker, in the grading worker
    within `timeout` seconds (see the module rules); `truncated` (the engine stopped at its token
    limit) leaves a response no answer but a closed box. UserError for an unknown task."""
    get_checker(task)
    try:
        return bounded.call(_check_here, task, response, gold, timeout, truncated, seconds=timeout)
    except bounded.OutOfBounds as e:
        box = final_box(solution_part(response))
        log.debug("answer not graded: %s", e)
        return Check(extracted=box[1] if box else "", correct=False, ungraded=True)


def _check_here(task: str, response: str, gold: str, timeout: int, truncated: bool) -> Check:
    return CHECKERS[task](response, gold, timeout=timeout, truncated=truncated)


def check_gold(task: str, gold: str, timeout: int = 5) -> None:
    """Raise ValueError when `gold` cannot be a gold answer of `task` (validated before generating),
    read in the grading worker within `timeout` seconds; UserError for an unknown task."""
    get_checker(task)
    try:
        bounded.call(_check_gold_here, task, gold, timeout, seconds=timeout)
    except bounded.OutOfBounds as e:
        raise ValueError(f"gold answer {gold!r} could not be read ({e})") from None


def _check_gold_here(task: str, gold: str, timeout: int) -> None:
    if task in ("integer", "addition"):
        if parse_integer(_gold_text(gold)) is None:
            raise ValueError(f"gold answer {gold!r} is not an integer")
    elif task == "choice":
        parse_gold_letter(_gold_text(gold))
    else:
        _parse_gold_math(gold, timeout)
