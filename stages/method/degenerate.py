"""Degenerate explanations: empty, truncated or untagged rows, counted, warned about and optionally dropped.

One definition for every stage that writes or reads explanations (docs/method.md "Degenerate
explanations"): `rlt generate` and `rlt score` record the shares in their manifests, `rlt distill`
records them and drops the kinds named by `drop=...`, `rlt teach` logs the shares of each step.

- `empty`: the explanation is empty or whitespace only (the teacher wrote nothing);
- `truncated`: generation stopped at `max_new_tokens` (the row's `truncated` column);
- `untagged`: the teacher never wrote `<|end_of_explanation|>` (`format_ok` false).

A share above `WARN_SHARE` (10 %) of the rows is warned about in one line.
"""

from __future__ import annotations

import logging

from stages.errors import UserError

KINDS = ("empty", "truncated", "untagged")
WARN_SHARE = 0.10  # docs/method.md "Degenerate explanations"


def is_empty(explanation: str | None) -> bool:
    """No explanation, or whitespace only."""
    return not (explanation or "").strip()


def kinds_of(row: dict) -> set[str]:
    """The degenerate kinds of one traces row (`explanation`, `truncated`, `format_ok`; a missing column
    counts as fine: imported traces have no `truncated`)."""
    out = set()
    if is_empty(row.get("explanation")):
        out.add("empty")
    if row.get("truncated") is True:
        out.add("truncated")
    if row.get("format_ok") is False:
        out.add("untagged")
    return out


def counts(rows: list[dict]) -> dict[str, int]:
    """{"rows": n, "empty": k, "truncated": k, "untagged": k} (a row may count in several kinds)."""
    out = {"rows": len(rows), **{k: 0 for k in KINDS}}
    for r in rows:
        for k in kinds_of(r):
            out[k] += 1
    return out


def shares(c: dict[str, int]) -> dict[str, float]:
    """Counts -> the share of rows of each kind (0 for no rows)."""
    n = c.get("rows", 0)
    return {k: (c.get(k, 0) / n if n else 0.0) for k in KINDS}


def record(c: dict[str, int]) -> dict:
    """The manifest entry: counts and shares of each kind, and the warning threshold."""
    return {**c, "shares": shares(c), "warn_share": WARN_SHARE}


def warn(c: dict[str, int], where: str, log: logging.Logger, hint: str = "") -> bool:
    """One warning line when a kind exceeds WARN_SHARE of the rows; returns whether it warned."""
    high = {k: v for k, v in shares(c).items() if v > WARN_SHARE}
    if not high:
        return False
    parts = ", ".join(f"{c[k]} of {c['rows']} {k} ({100 * v:.0f} %)" for k, v in high.items())
    log.warning("%s: degenerate explanations: %s, above %.0f %%%s", where, parts, 100 * WARN_SHARE, hint)
    return True


def parse_drop(kinds: list[str]) -> set[str]:
    """Validate `drop=...` (a list of kinds); UserError naming the valid ones."""
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise UserError(f"drop: unknown kind(s) {', '.join(bad)} (valid: {', '.join(KINDS)})")
    return set(kinds)


def drop(rows: list[dict], kinds: set[str]) -> list[dict]:
    """The rows with none of `kinds`."""
    return [r for r in rows if not (kinds_of(r) & kinds)] if kinds else rows
