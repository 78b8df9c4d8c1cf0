"""Intervals and correlation shared by eval and report (Wilson 1927; Newcombe 1998; Pearson)."""

from __future__ import annotations

import math
import statistics

Z95 = 1.959963984540054


def wilson(p: float, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion `p` observed over `n` trials."""
    if n <= 0:
        return 0.0, 1.0
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(c1: int, n1: int, c2: int, n2: int) -> tuple[float, float, float]:
    """Difference p1 - p2 of two independent proportions and its 95 % interval.

    Newcombe's hybrid score interval (Newcombe 1998, Stat. Med. 17:873, method
    10), built from the two Wilson intervals. Needs n1, n2 >= 1.
    """
    p1, p2 = c1 / n1, c2 / n2
    (l1, u1), (l2, u2) = wilson(p1, n1), wilson(p2, n2)
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def pearson(xs: list[float], ys: list[float]) -> float | None:
    """Pearson correlation coefficient (statistics.correlation); None below 3 points or without spread."""
    if len(xs) < 3:
        return None
    try:
        return statistics.correlation(xs, ys)
    except statistics.StatisticsError:
        return None
