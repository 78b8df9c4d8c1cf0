"""Which KL estimator scores a row: sampled-token for explanations the teacher sampled, full otherwise."""

from __future__ import annotations

import logging
from pathlib import Path

from stages.method.settings import RewardConfig, resolved_teacher_temperature

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
    """`full` or `sampled` for one row: forced by `reward.full_kl`, else by provenance.

    The provenance test compares the row's sampling temperature with `reward.teacher_temperature`,
    which the command resolved when its config was finalized (unset: 0.7, docs/method.md "Temperatures").
    """
    if reward.full_kl is not None:
        return "full" if reward.full_kl else "sampled"
    tau = resolved_teacher_temperature(reward)  # resolved when the command's config was finalized
    return "sampled" if sampled_by(row, teacher, tau, default) else "full"


def kl_estimators(rows: list[dict], teacher: str, reward: RewardConfig, default: dict | None = None) -> list[str]:
    """`kl_estimator` of every row: what `RLTReward.score(rows, estimators=...)` takes."""
    return [kl_estimator(r, teacher, reward, default) for r in rows]
