"""Multiple-choice answers: the letter (A-D) of the last explicit answer statement.

A letter counts only where it is stated as the answer, in the solution part:
- a box: `\\boxed{C}`, `\\boxed{(C)}`, `\\boxed{\\text{C}}`, `\\boxed{C) 42 J}`;
- an answer statement: "answer" (or "correct/right/best option|choice")
  followed by is / would be / : / =, then markup (`**`, `$`, `(`,
  `\\textbf{`) and an upper-case letter standing alone: "Answer: C",
  "the answer is (B)", "The correct answer is **C. The mass ...**"; or the
  letter first: "(C) is the correct answer", "Option C is correct";
- a last line that is only the letter: `C`, `(C)`, `**C**`, `C.`; a `(C)` that
  ends the solution part ("... hence (C).");
- the solution part opening with an option label: `(C) ...`, `C. ...`, `C) ...`.
The rightmost statement decides (a box whose letter cannot be read, or that is
never closed, is a statement with no letter). Never an article ("a bit"), a
letter inside a word, or an option merely discussed ("Option D is wrong").
"""

from __future__ import annotations

import re

from stages.verify.extract import boxes, unwrap

LETTERS = "ABCD"
_MARKUP = r"(?:\s|\*|_|\$|\(|\[|\\text(?:bf|rm)?\s*\{|\\mathrm\s*\{|\\mathbf\s*\{)*"
_STATEMENT = re.compile(
    r"\b(?i:answer|(?:correct|right|best)\s+(?:option|choice))\b[\s*_]*"
    r"(?i:(?:is|would\s+be|should\s+be|must\s+be|will\s+be)\s*[:=]?|[:=]|\s[-\u2013\u2014])" + _MARKUP +
    r"(?:(?i:option|choice|letter)" + _MARKUP + r")?"
    r"([A-D])(?![A-Za-z0-9])")
_LETTER_FIRST = re.compile(  # "(C) is the correct answer", "Option C is correct"
    r"(?<![A-Za-z0-9])\(?([A-D])\)?[*_]*\s+(?i:is)\s+(?:(?i:the)\s+)?"
    r"(?:(?i:(?:correct|right|best|final)\s+)?(?i:answer|option|choice)|(?i:correct|right))\b")
_LINE = re.compile(r"^[\s*_$]*\(?([A-D])\)?[\s*_$.]*$", re.MULTILINE)
_CLOSING = re.compile(r"\(([A-D])\)[\s*_$.!]*$")  # "... hence (C)." ending the solution part
_OPENING = re.compile(r"^[\s*_]*(?:\(([A-D])\)|([A-D])[.)](?=\s|$))")
_BOXED_LETTER = re.compile("^" + _MARKUP + r"([A-Da-d])(?![A-Za-z0-9])")


def _box_letter(content: str | None) -> str | None:
    if content is None:
        return None
    m = _BOXED_LETTER.match(unwrap(content))
    return m.group(1).upper() if m else None


def statements(text: str) -> list[tuple[int, str | None]]:
    """(position, letter or None) of every answer statement in `text`."""
    found = [(pos, _box_letter(content)) for pos, content in boxes(text)]
    found += [(m.start(), m.group(1)) for pattern in (_STATEMENT, _LETTER_FIRST) for m in pattern.finditer(text)]
    found += [(m.start(), m.group(1)) for m in _LINE.finditer(text)]
    found += [(m.start(), m.group(1)) for m in _CLOSING.finditer(text)]
    m = _OPENING.match(text)
    if m:
        found.append((-1, m.group(1) or m.group(2)))
    return sorted(found, key=lambda s: s[0])


def extract_letter(text: str) -> str | None:
    """The letter of the rightmost answer statement of `text`, or None."""
    found = statements(text)
    return found[-1][1] if found else None


def parse_gold_letter(gold: str) -> str:
    """'C', '(C)', '\\text{C}' -> 'C'; ValueError for anything that is not one letter A-D."""
    want = unwrap(gold).strip().strip("()").strip().upper()
    if len(want) != 1 or want not in LETTERS:
        raise ValueError(f"gold answer {gold!r} is not a letter {LETTERS[0]}-{LETTERS[-1]}")
    return want
