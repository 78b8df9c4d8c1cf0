"""Which KL estimator scores a row: sampled-token for explanations the teacher sampled, full otherwise."""

from __future__ import annotations

import logging
from pathlib import Path

from stages.method.settings import RewardConfig, with_teacher_temperature

log = logging.getLogger(__name__)


def _same_model(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    pa_, pb = Path(a), Path(b)
    if pa_.exists() and pb.exists():
        return pa_.resolve() == pb.resolve()
    return a == b


def sampled_by(row: dict, teacher: str, temperature: float, default: dict | None = None) -> bool:
    """Whether `row`'s explanation was sampled from `teacher` at `temperature` with top-p 1.

    Reads the row's `teacher`, `temperature` and `top_p` columns (written by
    `rlt generate`), falling back to `default` (the input artifact's generate
    config) for the last two; an unknown origin counts as not sampled.
    """
    default = default or {}
    temp = row.get("temperature", default.get("temperature"))
    top_p = row.get("top_p", default.get("top_p", 1.0))
    if temp is None or top_p is None:
        return False
    return _same_model(row.get("teacher"), teacher) and abs(float(temp) - temperature) < 1e-6 \
        and float(top_p) >= 1.0


def kl_estimator(row: dict, teacher: str, reward: RewardConfig, default: dict | None = None) -> str:
    """`full` or `sampled` for one row: forced by `reward.full_kl`, else by provenance."""
    if reward.full_kl is not None:
        return "full" if reward.full_kl else "sampled"
    tau = with_teacher_temperature(reward, None).teacher_temperature  # unset: 0.7 (docs/method.md "Temperatures")
    return "sampled" if sampled_by(row, teacher, tau, default) else "full"


def score_by_estimator(scorer, rows: list[dict], estimators: list[str]) -> list[dict]:
    """Score `rows`, each with its estimator (rows grouped so each group is one batched call)."""
    import dataclasses

    out: list[dict | None] = [None] * len(rows)
    base = scorer.reward
    try:
        for name in ("sampled", "full"):
            idx = [i for i, e in enumerate(estimators) if e == name]
            if not idx:
                continue
            scorer.reward = dataclasses.replace(base, full_kl=name == "full")
            group = rows if len(idx) == len(rows) else [rows[i] for i in idx]  # same list: prefetch applies
            for i, res in zip(idx, scorer.score(group)):
                out[i] = {**res, "kl_estimator": name}
    finally:
        scorer.reward = base
    return out  # type: ignore[return-value]


