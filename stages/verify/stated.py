"""Answers stated without a box: which span of a boxless solution part is graded.

Used only when the solution part holds no `\\boxed{`/`\\fbox{` at all (a box, when
present, always wins, and an unclosed last box is no answer: extract.py) and the
solution part is complete (not cut off: extract.solution_complete, or the
engine's `truncated` flag). The span is located with math-verify's own
extraction targets (`math_verify.parser`: the patterns behind
`LatexExtractionConfig` and `ExprExtractionConfig`, tried with math-verify's
`extract_match`), not with answer patterns of ours; the located text is
returned verbatim, so `extracted` shows exactly what is then graded, through
the same normalization and parser as a box's content (mathcheck.py).

Fallbacks, in order (the first that yields a span math-verify can parse wins):

1. An explicit final-answer statement: math-verify's anchored targets, in its
   priority order, rightmost match of the best priority first (its rule), the
   value in LaTeX (`$..$`, `\\(..\\)`, `\\[..\\]`, `$$..$$`, a bare `\\frac`) or a
   plain number or expression:
   - `final answer is X. I hope` (priority 0): the Minerva format
     `Final Answer: The final answer is $16\\pi$. I hope it is correct.`
     (Lewkowycz et al. 2022, whose few-shot prompt ends every solution so;
     lm-evaluation-harness `minerva_math` reads exactly this sentence,
     `get_unnormalized_answer`, then applies Minerva's `normalize_final_answer`;
     Qwen2.5-Math's `extract_answer` tries it before anything else);
   - `final answer ... is X` (50), `answer: X` (100), `answer ... X` (200):
     `The answer is: 2` (MetaMath's format), `the answer is \\(45\\)`
     (Qwen2.5-Math's second fallback is likewise the text after "he answer is").
   These are what math-verify's `parse` extracts with
   `try_extract_without_anchor=False`; lm-evaluation-harness' `minerva_math`
   `math_verify` metric, `verify(parse(doc["solution"]), parse(response))`,
   uses them and then the unanchored targets of item 2.
   Narrowed where math-verify's `answer.{0,50}` window over-reaches: the
   keyword must be the noun `answer(s)` (not `answered`, not `to answer`), the
   value must follow in the same sentence, and the words between must state it
   (`is`, `are`, `was`, `be`, `equals`, `:`, `=`): "The answer depends on
   whether $n$ is even" states nothing.
2. The concluding sentence: its last LaTeX span, else its last plain number or
   expression (math-verify's unanchored targets, `try_extract_without_anchor`;
   typeset math first, since a number in prose, "3 cases", is less often the
   answer), but only in the sentence that ends the solution part, only when
   that sentence is finished (it ends in `.`, `!`, `?`, `。` or a closing math
   delimiter) and only when it concludes with a value: a verb or `=` before
   the value's end (is / are / equals / gives / get / have / =, or thus / so /
   therefore / hence): `Thus, the number on the card that was removed is
   \\(45\\).`, `So $x = 5$.`, `Counting them, there are 3 ways.`; not `Next we
   look at the case $y$ odd.`, not `So there are 5 ways` (unfinished). A
   solution part that is only a math span or a number (`45`, `$\\frac{1}{2}$`)
   is its own answer. math-verify alone (and Qwen2.5-Math's `extract_answer`
   with `use_last_number`) take the last math or number anywhere in the
   response; a value followed by more sentences, or one a sentence merely
   mentions, was not given as the answer, so rlt does not read it.
Nothing else: no answer from the thought, from a sentence before the last but
an explicit statement, or from a response cut off (it may stop inside the
answer's digits). An escaped `\\$` (currency) is blanked for the patterns, so
`The total is \\$18.90.` reads `18.90`.

math-verify's extraction runs under its own `signal.alarm` timeout, so it needs
the main thread (as every math check does).
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from stages.verify import mathcheck

log = logging.getLogger(__name__)
_KEYWORD = re.compile(r"(?i)(?:final\s+)?answers?(?![A-Za-z])")
_TO_ANSWER = re.compile(r"(?i)\bto\s*$")
_STATES = re.compile(r"(?i)\b(?:is|are|was|were|be|equals?)\b|[:=]")
_SENTENCE_END = re.compile(r"[.!?\u3002](?=\s|$)")
_MORE_SENTENCES = re.compile(r"(?:[.!?;\u3002](?=\s)|\n)\s*\S")
_BOUNDARY = re.compile(r"[.!?;\u3002](?=\s)")  # a sentence ends (it may run over lines: display math)
_CONCLUDES = re.compile(r"(?i)\b(?:is|are|was|were|be|equals?|gives?|gets?|got|obtains?|finds?|have|has|makes?|yields?"
                        r"|thus|so|therefore|hence|finally|altogether|overall)\b|=|\u6240\u4ee5|\u56e0\u6b64")
_BARE = re.compile(r"(?:[\s*_$]|\\[()\[\]])*")  # what may surround a solution part that is only its answer
_FINISHED = re.compile(r"(?:[.!?\u3002]|\$|\\\)|\\\])[\s*_)\]]*$")
_VALUE_GROUPS = ("expr", "integer", "decimal")


@lru_cache(maxsize=1)
def _patterns() -> tuple[list, list]:
    """math-verify's compiled targets: (anchored [(priority, pattern, target)], unanchored [same])."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig
    from math_verify.parser import get_extraction_regexes

    targets = [LatexExtractionConfig(try_extract_without_anchor=True, boxed_match_priority=-1),
               ExprExtractionConfig(try_extract_without_anchor=True)]
    anchored, unanchored = [], []
    for patterns, target in get_extraction_regexes(targets):
        for pattern, priority in patterns:
            (unanchored if priority >= 300 else anchored).append((priority, pattern, target))
    return sorted(anchored, key=lambda p: p[0]), unanchored


def _value_span(m: re.Match, latex: bool) -> list[tuple[int, int]]:
    """(start, end) of the answer text(s) inside a match of math-verify's pattern."""
    spans = []
    for name, value in m.groupdict().items():
        if value is None:
            continue
        if latex and "_latex" in name or not latex and name.startswith(_VALUE_GROUPS):
            spans.append(m.span(name))
    spans.sort()
    if not latex and spans:  # one number (integer + decimal part), plus a `%` written after it
        start, end = spans[0][0], spans[-1][1]
        pct = m.groupdict().get("percent")
        if pct and pct.strip() in ("%", "\\%"):
            end = m.end("percent")
        spans = [(start, end)]
    return spans


def _raw(text: str, spans: list[tuple[int, int]]) -> str:
    return ", ".join(text[a:b].strip() for a, b in spans)


def _states_answer(text: str, m: re.Match, first: int) -> bool:
    """An anchored match is a statement: the noun `answer`, the value in the same sentence, a verb."""
    kw = _KEYWORD.match(text, m.start())
    if kw is None or (m.start() > 0 and text[m.start() - 1].isalpha()):
        return False
    if _TO_ANSWER.search(text[:m.start()]):
        return False
    between = text[kw.end():first]
    return _SENTENCE_END.search(between) is None and _STATES.search(between) is not None


def _first_parsed(text: str, candidates, accept) -> list[tuple[int, int]] | None:
    """math-verify's loop: rightmost match first; the first that math-verify parses wins."""
    from math_verify import LatexExtractionConfig
    from math_verify.parser import extract_match

    found = []
    for _, pattern, target in candidates:
        latex = isinstance(target, LatexExtractionConfig)
        found += [(m, target, latex) for m in pattern.finditer(text)]
    found.sort(key=lambda f: (f[0].end(), -f[0].start()), reverse=True)
    for m, target, latex in found:
        spans = _value_span(m, latex)
        if not spans or not accept(m, spans):
            continue
        value, _ = extract_match(m, target)
        if value is not None:
            return spans
    return None


def _scan(original: str) -> str | None:
    # an escaped dollar (currency, `\\$18.90`) is blanked for the patterns, length kept, so that spans
    # index the original: math-verify's patterns neither open math at it nor read the number after it
    text = original.replace("\\$", "  ")
    got = _scan_blanked(text)
    return None if got is None else _raw(original, got)


def _scan_blanked(text: str) -> list[tuple[int, int]] | None:
    anchored, unanchored = _patterns()
    for priority in sorted({p for p, _, _ in anchored}):
        got = _first_parsed(text, [c for c in anchored if c[0] == priority],
                            lambda m, spans: _states_answer(text, m, spans[0][0]))
        if got:
            return got
    finished = _FINISHED.search(text.rstrip()) is not None  # else the last sentence is unfinished

    def concluding(m: re.Match, spans) -> bool:
        end = spans[-1][1]  # the match itself may run on over spaces and newlines
        if _BARE.fullmatch(text, 0, spans[0][0]) and _BARE.fullmatch(text, end):
            return True  # the whole solution part is the answer: `45`, `$\frac{1}{2}$`
        if not finished or _MORE_SENTENCES.search(text, end) is not None:
            return False  # unfinished, or more sentences follow: not the concluding sentence
        start = max((b.end() for b in _BOUNDARY.finditer(text, 0, spans[0][0])), default=0)
        return _CONCLUDES.search(text, start, spans[-1][1]) is not None

    from math_verify import LatexExtractionConfig

    for kind in (True, False):  # LaTeX spans first, then bare numbers / expressions
        got = _first_parsed(text, [c for c in unanchored if isinstance(c[2], LatexExtractionConfig) is kind],
                            concluding)
        if got:
            return got
    return None


def stated_answer(text: str, timeout: int = 5) -> str | None:
    """The answer a boxless, complete solution part states (see the module rules), verbatim; or None."""
    from math_verify.errors import TimeoutException
    from math_verify.utils import timeout as with_timeout

    if not text.strip():
        return None
    mathcheck.require_main_thread()
    try:
        return with_timeout(timeout)(_scan)(text)
    except TimeoutException:
        log.warning("reading a stated answer timed out after %ss; counted as no answer", timeout)
        return None
