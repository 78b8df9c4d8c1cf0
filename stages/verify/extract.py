"""Which part of a response is graded: the solution part and its final `\\boxed{`.

Rules (one place, used by every checker):
- the solution part is the text after the last `<|begin_of_solution|>` (up to
  `<|end_of_solution|>`); a response that opened a thought block but never
  closed it was cut off before any answer and has an empty solution part; a
  response without tags is its own solution part;
- the final answer of a boxed task is the LAST `\\boxed{` / `\\fbox{` opened in
  the solution part; if that box is never closed (the response was cut off
  inside it) there is no answer, even when an earlier box is complete;
- a solution part is complete (`solution_complete`) unless the response was cut
  off: a `<|begin_of_solution|>` never followed by `<|end_of_solution|>`, or a
  thought block never closed. Only a complete solution part may state its
  answer without a box (stages/verify/stated.py): a closed box is a finished
  answer wherever the response stops, a sentence cut off may be missing digits.
"""

from __future__ import annotations

import re

from stages.method.views import BEGIN_SOLUTION, BEGIN_THOUGHT, END_SOLUTION, END_THOUGHT

_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_TEXT_WRAP = re.compile(r"^(?:\\(?:text|textbf|textrm|mathrm|mathbf|mbox)\s*)?\{(.*)\}$", re.DOTALL)


def solution_part(response: str) -> str:
    """The graded part of a response (see the module rules)."""
    start = response.rfind(BEGIN_SOLUTION)
    if start >= 0:
        return response[start + len(BEGIN_SOLUTION):].split(END_SOLUTION, 1)[0]
    if BEGIN_THOUGHT in response:
        _, closed, after = response.rpartition(END_THOUGHT)
        return after if closed else ""
    return response


def solution_complete(response: str) -> bool:
    """False when the response was cut off (see the module rules): an opened solution or thought
    block never closed."""
    start = response.rfind(BEGIN_SOLUTION)
    if start >= 0:
        return END_SOLUTION in response[start:]
    if BEGIN_THOUGHT in response:
        return END_THOUGHT in response
    return True


def _close(text: str, start: int) -> int | None:
    """Index just past the `}` that closes the brace opened before `start`, or None."""
    depth, i = 1, start
    while i < len(text):
        c = text[i]
        if c == "\\":  # an escaped brace \{ \} does not count
            i += 2
            continue
        depth += {"{": 1, "}": -1}.get(c, 0)
        i += 1
        if depth == 0:
            return i
    return None


def boxes(text: str) -> list[tuple[int, str | None]]:
    """(position, content) of every box opened in `text`; content None when never closed."""
    out = []
    for m in _BOX.finditer(text):
        end = _close(text, m.end())
        out.append((m.start(), None if end is None else text[m.end():end - 1].strip()))
    return out


def final_box(text: str) -> tuple[int, str | None] | None:
    """(position, content) of the last box opened in `text`; None when there is no box."""
    found = boxes(text)
    return found[-1] if found else None


def last_boxed(text: str) -> str | None:
    """Content of the last box opened in `text`; None when there is none or it is unclosed."""
    box = final_box(text)
    return None if box is None else box[1]


def unwrap(text: str) -> str:
    """Strip `$` delimiters, `\\text{...}`-style wrappers and bare braces around an answer."""
    text = text.strip().strip("$").strip()
    while (m := _TEXT_WRAP.match(text)) is not None:
        text = m.group(1).strip()
    return text
