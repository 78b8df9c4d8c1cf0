"""Math answers: math-verify parses, rlt decides how numbers compare.

Only the final answer's text is handed to math-verify (the final box's content,
or the span a boxless solution states, stages/verify/stated.py; wrapped in a
fresh `\\boxed{}`), so earlier boxes are never merged into a set with it. Golds go
through the same normalization, then the same parser:

- `\\$` (an escaped dollar: currency, as in MATH-500's `\\$18.90`) is dropped,
  as are `$` math delimiters around the whole answer; `,\\!`, a LaTeX space
  (`\\,`, `\\:`, `\\;`, `\\ `, `~`, `\\thinspace`) or a space between digit
  groups is a thousands separator in the shape
  `\\d{1,3}(,\\d{3})+` only (`11,\\! 111,\\! 100`, `12\\,345`), other `\\!` are
  dropped (plain `,` and `{,}` are math-verify's: `1,234` is 1234, `1,2` the set
  {1, 2});
- a plain `1.5e-7` becomes `1.5\\times10^{-7}` (math-verify reads `e` as Euler's
  number);
- the rest (thousands separators `{,}`, `\\text{}` units, degrees, percent,
  `\\dfrac`, sets, intervals, matrices) is math-verify's normalization.

Numbers (scalars, and tuples/sets/intervals made only of numbers) are compared
here, because math-verify's numeric test rounds to 6 decimals and chops tiny
differences (10^-30 == 10^-31):
- both sides exact (integers, rationals, powers, factorials, radicals): exactly
  (`sympy.simplify(a - b) == 0`);
- either side holds a decimal: |a - b| <= REL_TOL * max(|a|, |b|), with
  REL_TOL = 1e-4, the relative tolerance of the Qwen2.5-Math grader (its
  `math_equal`), which the SkyThought evaluation of the paper's students uses;
- a percentage `p\\%` matches both p/100 and p (math-verify's convention).
Everything else (expressions, equations, symbols, matrices) is math-verify's
`verify`, gold first.
"""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache

log = logging.getLogger(__name__)
REL_TOL = 1e-4
# A space between digits in LaTeX: thin `\,`, medium `\:` `\>`, thick `\;`, `\ `, a tie `~`, `\thinspace`...,
# or a plain space; with ,\! (MATH-500's `32,\!348`) the thousands separators of `_GROUPED`.
SPACE = r"(?:\\[,:;> ]|\\(?:thin|med|thick|en)space\s*|~| )"
_GROUP_SEP = r"(?:,\\!\s*|" + SPACE + ")"
_GROUPED = re.compile(r"(?<![\w.^_])\d{1,3}(?:" + _GROUP_SEP + r"\d{3})+(?!\d|" + _GROUP_SEP + r"\d)")
_SCI = re.compile(r"^([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*[eE]\s*([+-]?\d+)$")


def require_main_thread() -> None:
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("math checking uses signal.alarm (math-verify): run it in the main thread "
                           "or in a process, never in a thread")


def normalize(answer: str) -> str:
    """An answer's LaTeX as handed to math-verify (see the module rules)."""
    text = _GROUPED.sub(lambda m: re.sub(_GROUP_SEP, "", m.group(0)), answer.replace("\\$", ""))
    text = text.replace("\\!", "").replace("\u2212", "-").strip()
    if len(text) >= 2 and text[0] == "$" and text[-1] == "$":
        text = text.strip("$").strip()
    m = _SCI.match(text)
    if m:
        text = f"{m.group(1)}\\times10^{{{m.group(2)}}}"
    return text


@lru_cache(maxsize=4096)
def parse_answer(answer: str, timeout: int = 5) -> tuple:
    """math-verify's parsed values of one answer (no surrounding text); () when unreadable."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    require_main_thread()
    text = normalize(answer)
    if not text:
        return ()
    found = parse(f"\\boxed{{{text}}}", extraction_config=[LatexExtractionConfig(boxed_match_priority=0),
                                                           ExprExtractionConfig()],
                  fallback_mode="no_fallback", parsing_timeout=timeout)
    return tuple(found)


# ----------------------------------------------------------------------------- numbers


def number_values(x) -> list | None:
    """Candidate numeric values of a scalar (two for a percentage), or None if not a number."""
    import sympy
    from math_verify.grader import get_pct_val

    if not isinstance(x, sympy.Expr) or isinstance(x, sympy.logic.boolalg.Boolean):
        return None
    base = get_pct_val(x)
    try:
        v = x.doit()
    except Exception:  # noqa: BLE001 - sympy raises many kinds on odd input
        return None
    if not v.is_number or v.free_symbols or v.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        return None
    return [v] if base is None else [v, base.doit()]


def numbers_equal(a, b) -> bool:
    """Exact comparison when both are exact; relative tolerance REL_TOL when either has a decimal."""
    import sympy

    try:
        if a.has(sympy.Float) or b.has(sympy.Float):
            fa, fb = sympy.N(a, 40), sympy.N(b, 40)
            return bool(abs(fa - fb) <= REL_TOL * max(abs(fa), abs(fb)))
        if a.is_Rational and b.is_Rational:
            return bool(a == b)
        return sympy.simplify(a - b) == 0
    except (TypeError, ValueError, ArithmeticError):
        return False


def _scalar_equal(a, b) -> bool | None:
    va, vb = number_values(a), number_values(b)
    if va is None or vb is None:
        return None
    return any(numbers_equal(x, y) for x in va for y in vb)


def _container_equal(g, p) -> bool | None:
    """Tuples, sets and intervals made only of numbers, element by element; None if not such."""
    import sympy

    if isinstance(g, sympy.Interval) and isinstance(p, sympy.Interval):
        ends = [_scalar_equal(x, y) for x, y in ((g.start, p.start), (g.end, p.end))]
        if None in ends:
            return None
        return all(ends) and g.left_open == p.left_open and g.right_open == p.right_open
    for kind in (sympy.Tuple, sympy.FiniteSet):
        if isinstance(g, kind) and isinstance(p, kind):
            ga, pa = list(g.args), list(p.args)
            if any(number_values(x) is None for x in ga + pa):
                return None
            if len(ga) != len(pa):
                return False
            if kind is sympy.Tuple:
                return all(_scalar_equal(x, y) for x, y in zip(ga, pa))
            return all(any(_scalar_equal(x, y) for y in pa) for x in ga) and \
                all(any(_scalar_equal(x, y) for x in ga) for y in pa)
    return None


def right_hand_side(x):
    """The last right-hand side of an equation (`x = y = 5` -> 5); anything else unchanged."""
    from math_verify.grader import is_equation, take_last_relation

    try:
        return take_last_relation(x).rhs if is_equation(x) else x
    except Exception:  # noqa: BLE001 - odd sympy objects
        return x


def _unwrap_equation(g, p):
    """math-verify's rule: `x = 5` answers a gold `5` (the last right-hand side is compared);
    two assignments to the same variable compare their right-hand sides."""
    from math_verify.grader import is_assignment_relation, is_equation, is_relation, take_last_relation

    if is_assignment_relation(g) and is_assignment_relation(p):
        gl, pl = take_last_relation(g), take_last_relation(p)
        if gl.lhs == pl.lhs:
            return gl.rhs, pl.rhs
    elif is_equation(p) and not is_relation(g):
        p = take_last_relation(p).rhs
    elif is_assignment_relation(g) and not is_equation(p):
        g = take_last_relation(g).rhs
    return g, p


def _pair_equal(g, p, timeout: int) -> bool:
    from math_verify import verify

    try:
        gu, pu = _unwrap_equation(g, p)
    except Exception:  # noqa: BLE001
        gu, pu = g, p
    for decide in (_scalar_equal, _container_equal):
        verdict = decide(gu, pu)
        if verdict is not None:
            return verdict
    return bool(verify(g, p, timeout_seconds=timeout))


def equal(gold: tuple, pred: tuple, timeout: int = 5) -> bool:
    """Whether any parsed gold value equals any parsed prediction value."""
    from math_verify.errors import TimeoutException
    from math_verify.utils import timeout as with_timeout

    require_main_thread()
    compare = with_timeout(timeout)(_pair_equal)
    for g in gold:
        for p in pred:
            try:
                if compare(g, p, timeout):
                    return True
            except TimeoutException:
                log.warning("answer comparison timed out after %ss; counted as wrong", timeout)
            except Exception:
                log.debug("comparison failed", exc_info=True)
    return False
