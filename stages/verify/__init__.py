"""Answer checking: one registry of pure checkers keyed by task name.

Used by `rlt eval` (stages/evaluate.py); no artifacts of its own.

    result = check("math", response, gold="\\frac{1}{2}")   # Check(extracted, correct)
    check_gold("math", "\\$18.90")                         # ValueError if no checker can read it

Tasks (the dataset's `task` column) and how each is decided:
- `math`: the final box of the solution part (extract.py) against the gold,
  both parsed by math-verify after one normalization; numbers compared
  exactly or with a relative tolerance (mathcheck.py);
- `choice`: the letter A-D of the last explicit answer statement (choice.py);
- `integer` (AIME) and `addition` (the synthetic task): the exact integer in the
  final box (`033`, `1,234`, `17.0`, `\\text{17}` read as integers; anything else
  math-verify must evaluate to exactly that integer).
`extracted` is exactly the text that was graded (the final box's content, or the
letter). math-verify's timeouts use `signal.alarm`, so `math` checks run in the
main thread (or in processes), never in threads.

GRADER_VERSION changes whenever a verdict can change; it is part of an eval
output's config hash, so `rlt run` re-grades outputs of an older grader.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from stages.errors import UserError
from stages.verify import mathcheck
from stages.verify.choice import LETTERS, extract_letter, parse_gold_letter
from stages.verify.extract import boxes, final_box, last_boxed, solution_part, unwrap

GRADER_VERSION = "5"
__all__ = ["CHECKERS", "GRADER_VERSION", "LETTERS", "Check", "boxes", "check", "check_gold", "extract_letter",
           "get_checker", "gold_from_row", "last_boxed", "parse_integer", "solution_part"]


@dataclass
class Check:
    """Outcome of checking one response: the answer read from it and whether it is right."""

    extracted: str
    correct: bool


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


# ----------------------------------------------------------------------------- integers


def parse_integer(text: str | None) -> int | None:
    """'1,234', '042', '$17$', '\\text{17}', '12.0' -> int; anything else -> None."""
    if text is None:
        return None
    t = unwrap(mathcheck.normalize(text)).replace("{,}", "").replace(",", "").replace("\\,", "").replace(" ", "")
    m = re.fullmatch(r"([+-]?\d+)(?:\.0*)?", t)
    return int(m.group(1)) if m else None


def _integer_value(text: str, timeout: int) -> int | None:
    """The exact integer an answer denotes (plain digits, else math-verify's exact value)."""
    direct = parse_integer(text)
    if direct is not None:
        return direct
    mathcheck.require_main_thread()
    for parsed in mathcheck.parse_answer(text, timeout):
        parsed = mathcheck.right_hand_side(parsed)  # `x = 204` answers 204
        exact = [v for v in mathcheck.number_values(parsed) or [] if v.is_Integer]
        if exact:
            return int(exact[0])
    return None


def check_integer(response: str, gold: str, timeout: int = 5) -> Check:
    """Exact integer in the final box of the solution part."""
    want = parse_integer(_gold_text(gold))
    if want is None:
        raise ValueError(f"gold answer {gold!r} is not an integer")
    box = final_box(solution_part(response))
    if box is None or box[1] is None:
        return Check(extracted="", correct=False)
    got = _integer_value(box[1], timeout)
    return Check(extracted=box[1], correct=got is not None and got == want)


# ----------------------------------------------------------------------------- choice / math


def check_choice(response: str, gold: str, timeout: int = 5) -> Check:
    """Multiple choice answered by letter (stages/verify/choice.py)."""
    want = parse_gold_letter(_gold_text(gold))
    got = extract_letter(solution_part(response))
    return Check(extracted=got or "", correct=got == want)


def _parse_gold_math(gold: str, timeout: int) -> tuple:
    parsed = mathcheck.parse_answer(_gold_text(gold), timeout)
    if not parsed:
        raise ValueError(f"gold answer {gold!r} cannot be parsed by math-verify")
    return parsed


def check_math(response: str, gold: str, timeout: int = 5) -> Check:
    """The final box of the solution part against the gold (stages/verify/mathcheck.py)."""
    mathcheck.require_main_thread()
    gold_parsed = _parse_gold_math(gold, timeout)
    box = final_box(solution_part(response))
    if box is None or box[1] is None:
        return Check(extracted="", correct=False)
    pred = mathcheck.parse_answer(box[1], timeout)
    return Check(extracted=box[1], correct=bool(pred) and mathcheck.equal(gold_parsed, pred, timeout))


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


def check(task: str, response: str, gold: str, timeout: int = 5) -> Check:
    """Check one response against its gold answer with the task's checker."""
    return get_checker(task)(response, gold, timeout=timeout)


def check_gold(task: str, gold: str, timeout: int = 5) -> None:
    """Raise ValueError when `gold` cannot be a gold answer of `task` (validated before generating)."""
    get_checker(task)
    if task in ("integer", "addition"):
        if parse_integer(_gold_text(gold)) is None:
            raise ValueError(f"gold answer {gold!r} is not an integer")
    elif task == "choice":
        parse_gold_letter(_gold_text(gold))
    else:
        _parse_gold_math(gold, timeout)
