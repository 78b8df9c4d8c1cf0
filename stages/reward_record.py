"""The RLT reward of one row, defined once: every place that stores or shows it derives from `RewardRecord`.

`RLTReward.score` (stages/method/reward.py) returns these fields for each row (plus the
row's `explanation` and `text`); the reward columns of the traces schema
(stages/artifacts/), the columns `rlt score` and `rlt generate --student`
write, teach's per-step metrics and samples (stages/method/grpo.py,
stages/training/metrics.py) and the report's reward plots (stages/commands/report.py) all
come from its fields. The formulas are in docs/method.md "The reward".

    summary([scorer.score(rows)...])   # {"reward": mean, ..., "format_ok": share, "aligned": share, ...}
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field


def _col(help: str):
    return field(metadata={"help": help})


@dataclass(frozen=True)
class RewardRecord:
    """One scored row (docs/method.md "The reward"). Log-probs in nats per token."""

    reward: float = _col("r = r_SS - kl_coef * r_KL, + format_penalty without the end tag; a row that cannot "
                         "be scored (misaligned, empty solution, empty explanation unless "
                         "reward.empty_explanation=reference, ...) reads its group's lowest reward + format_penalty")
    sol_logp_mean: float = _col("mean student log-prob of the solution tokens")
    sol_logp_min: float = _col("lowest student log-prob of a solution token")
    kl_mean: float = _col("mean per-token KL(teacher || student) over the explanation tokens")
    kl_max: float = _col("largest per-token KL over the explanation tokens")
    format_ok: bool = _col("the teacher's completion ended with <|end_of_explanation|>")
    aligned: bool = _col("the explanation is the same token ids in the teacher and the student view")
    explanation_tokens: int = _col("explanation tokens in the student view")
    solution_tokens: int = _col("solution tokens in the student view")
    student_tokens: int = _col("tokens of the whole student view")


_TYPES = typing.get_type_hints(RewardRecord)
COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RewardRecord))
COMPONENTS: tuple[str, ...] = tuple(c for c in COLUMNS if _TYPES[c] is float)  # reward and its reductions
FLAGS: tuple[str, ...] = tuple(c for c in COLUMNS if _TYPES[c] is bool)  # summarised as shares of rows
HELP: dict[str, str] = {f.name: f.metadata["help"] for f in dataclasses.fields(RewardRecord)}


def arrow_fields() -> list[tuple[str, object]]:
    """(column, pyarrow type) of every field, for an artifact schema."""
    import pyarrow as pa

    types = {float: pa.float64(), bool: pa.bool_(), int: pa.int64()}
    return [(c, types[_TYPES[c]]) for c in COLUMNS]


def record(values: dict) -> dict:
    """The record's fields of a scored row (a KeyError names a missing one)."""
    return {c: values[c] for c in COLUMNS}


def summary(rows: list[dict]) -> dict[str, float]:
    """Means over rows of every field; booleans as the share of rows where they hold. {} for no rows."""
    if not rows:
        return {}
    return {c: sum(float(r[c]) for r in rows) / len(rows) for c in COLUMNS}
