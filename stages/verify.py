"""Answer extraction and checking: one registry of pure checkers keyed by task name.

Used by `rlt eval` (stages/evaluate.py); no artifacts of its own.

    result = check("math", response, gold="\\frac{1}{2}")   # Check(extracted, correct)

Tasks (the dataset's `task` column):
- `math`: math-verify, the gold parsed first (fractions, sets, intervals, LaTeX);
- `choice`: a letter A-D from `\\boxed{C}`, else a clear final "answer is C";
- `integer` (AIME) and `addition` (the synthetic task): the exact integer in the
  last `\\boxed{}`.

The answer is read from the solution part of a response (inside the solution
tags when present, else the whole response). math-verify's timeouts use
`signal.alarm`, so `math` checks run in the main thread (or in processes),
never in threads.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from stages.errors import UserError
from stages.formats import BEGIN_SOLUTION, END_SOLUTION

LETTERS = "ABCD"
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_TEXT_WRAP = re.compile(r"^\\(?:text|textbf|mathrm|mathbf)\s*\{(.*)\}$", re.DOTALL)
_FINAL_LETTER = re.compile(
    r"(?:answer|option|choice)\s*(?:is|:)?\s*(?:option\s*)?[:\s]*\(?\s*([A-D])\s*\)?(?![A-Za-z])", re.IGNORECASE)


@dataclass
class Check:
    """Outcome of checking one response: the answer read from it and whether it is right."""

    extracted: str
    correct: bool


# ----------------------------------------------------------------------------- extraction


def solution_part(response: str) -> str:
    """Text between the solution tags (the last opened one), else the whole response."""
    start = response.rfind(BEGIN_SOLUTION)
    if start < 0:
        return response
    body = response[start + len(BEGIN_SOLUTION):]
    return body.split(END_SOLUTION, 1)[0]


def boxed_all(text: str) -> list[str]:
    """Contents of every `\\boxed{...}` / `\\fbox{...}`, nested braces balanced."""
    out = []
    for m in _BOX.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            out.append(text[m.end():i - 1].strip())
    return out


def last_boxed(text: str) -> str | None:
    """Content of the last complete `\\boxed{}` in `text`, or None."""
    found = boxed_all(text)
    return found[-1] if found else None


def _unwrap(text: str) -> str:
    text = text.strip().strip("$").strip()
    while (m := _TEXT_WRAP.match(text)) is not None:
        text = m.group(1).strip()
    return text


def gold_from_row(row: dict) -> str | None:
    """The row's gold answer: the `answer` column, else the last `\\boxed{}` of its solution."""
    answer = row.get("answer")
    if answer is not None and str(answer).strip():
        return str(answer).strip()
    return last_boxed(str(row.get("solution") or ""))


# ----------------------------------------------------------------------------- checkers


def parse_integer(text: str | None) -> int | None:
    """'1,234', '042', '$17$', '\\text{17}', '12.0' -> int; anything else -> None."""
    if text is None:
        return None
    t = _unwrap(text).replace(",", "").replace("\\,", "").replace(" ", "")
    m = re.fullmatch(r"([+-]?\d+)(?:\.0*)?", t)
    return int(m.group(1)) if m else None


def check_integer(response: str, gold: str) -> Check:
    """Exact integer in the last `\\boxed{}` of the solution part."""
    boxed = last_boxed(solution_part(response))
    want, got = parse_integer(gold), parse_integer(boxed)
    if want is None:
        raise ValueError(f"gold answer {gold!r} is not an integer")
    return Check(extracted=boxed or "", correct=got is not None and got == want)


def extract_letter(text: str) -> str | None:
    """A-D from the last `\\boxed{}` ('C', '(C)', '\\text{C}', 'C) text'), else a final 'answer is C'."""
    boxed = last_boxed(text)
    if boxed is not None:
        m = re.match(r"^\(?\s*([A-Da-d])\s*(?:\)|\.|:|$|\s)", _unwrap(boxed))
        return m.group(1).upper() if m else None
    found = _FINAL_LETTER.findall(text)
    if found:
        return found[-1].upper()
    stripped = _unwrap(text.strip().rstrip("."))
    return stripped.upper() if re.fullmatch(r"[A-Da-d]", stripped) else None


def check_choice(response: str, gold: str) -> Check:
    """Multiple choice answered by letter."""
    want = _unwrap(gold).strip("()").upper()
    if want not in LETTERS or len(want) != 1:
        raise ValueError(f"gold answer {gold!r} is not a letter A-D")
    got = extract_letter(solution_part(response))
    return Check(extracted=got or "", correct=got == want)


def _require_main_thread() -> None:
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("math checking uses signal.alarm (math-verify): run it in the main thread "
                           "or in a process, never in a thread")


def check_math(response: str, gold: str, timeout: int = 5) -> Check:
    """math-verify with the gold parsed first; the prediction from the solution part."""
    from math_verify import parse, verify

    _require_main_thread()
    gold_text = gold if _BOX.search(gold) or "$" in gold else f"\\boxed{{{gold}}}"
    gold_parsed = parse(gold_text, parsing_timeout=timeout)
    if not gold_parsed:
        raise ValueError(f"gold answer {gold!r} cannot be parsed")
    text = solution_part(response)
    pred = parse(text, parsing_timeout=timeout)
    boxed = last_boxed(text)
    extracted = boxed if boxed is not None else (str(pred[-1]) if pred else "")
    if not pred:
        return Check(extracted=extracted, correct=False)
    return Check(extracted=extracted, correct=bool(verify(gold_parsed, pred, timeout_seconds=timeout)))


CHECKERS: dict[str, Callable[[str, str], Check]] = {
    "math": check_math,
    "choice": check_choice,
    "integer": check_integer,
    "addition": check_integer,
}


def get_checker(task: str) -> Callable[[str, str], Check]:
    """The checker of `task`; UserError listing the valid names otherwise."""
    try:
        return CHECKERS[task]
    except KeyError:
        raise UserError(f"unknown task {task!r} (valid: {', '.join(sorted(CHECKERS))})") from None


def check(task: str, response: str, gold: str) -> Check:
    """Check one response against its gold answer with the task's checker."""
    return get_checker(task)(response, gold)


def check_gold(task: str, gold: str) -> None:
    """Raise ValueError when `gold` cannot be a gold answer of `task` (validated before generating)."""
    if task in ("integer", "addition"):
        if parse_integer(gold) is None:
            raise ValueError(f"gold answer {gold!r} is not an integer")
    elif task == "choice":
        check_choice("", gold)
