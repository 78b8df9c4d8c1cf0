"""Settings of the method: the default system prompts, the reward's parameters, the teacher temperature."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from stages.config import opt
from stages.errors import UserError

log = logging.getLogger(__name__)


TEACHER_SYSTEM = (
    "You are a teacher. You are given a question and its correct solution. "
    "Write a clear step-by-step explanation that leads a student from the "
    "question to the solution, so that the solution follows naturally."
)


STUDENT_SYSTEM = (
    "You are a careful problem solver. Think step by step inside the thought "
    "block, then give the final solution with the answer in \\boxed{}."
)


EMPTY_RULES = ("floor", "reference")  # reward.empty_explanation (docs/method.md "Empty explanations")
SAMPLING_TEMPERATURE = 0.7  # the paper's teacher sampling temperature (docs/method.md "Temperatures")


@dataclass
class PromptsConfig:
    """System prompts of the two views (docs/method.md "Formats")."""

    teacher_system: str = opt(TEACHER_SYSTEM, "System prompt of the teacher view.")
    student_system: str = opt(STUDENT_SYSTEM, "System prompt of the student view; use the one your student was trained with.")


@dataclass
class RewardConfig:
    """The RLT reward (docs/method.md "The reward")."""

    kl_coef: float = opt(3.0, "lambda: weight of the KL term.", flag=True)
    alpha: float = opt(0.01, "Weight of the min (solution) / max (KL) reductions.")
    teacher_temperature: float | None = opt(
        None, "Temperature of the teacher log-probs. Unset: the temperature the explanations were sampled at "
        "(teach: its `temperature`), else 0.7. Set it apart only on purpose: the sampled-token KL assumes the two "
        "are equal.")
    student_temperature: float = opt(0.7, "Temperature of student log-probs.")
    format_penalty: float = opt(-1.0, "Added when the end tag is missing (<= 0); a row that cannot be scored gets its "
                                      "group's lowest reward plus it.")
    empty_explanation: str = opt("floor", "An empty explanation (the end tag alone): floor (scored as a row that cannot "
                                          "be scored: its group's lowest reward + format_penalty, so it never ranks "
                                          "above an explanation) or reference (the reference code's rule: its KL "
                                          "reads -format_penalty).", choices=EMPTY_RULES)
    full_kl: bool | None = opt(None, "KL estimator: true = full-distribution KL, false = sampled-token estimate, "
                                     "unset = by provenance (sampled for explanations this teacher sampled at "
                                     "teacher_temperature, as in teach; full otherwise).")
    kl_include_prefill: bool = opt(False, "Also average KL over the prefilled newlines (the reference code's numbers).")
    chunk_tokens: int = opt(1024, "Positions projected to the vocabulary at once (bounds memory).", hash=False)
    overlap_render: bool = opt(True, "Render and tokenize the next batch of rows on a worker thread while the "
                                     "current batch runs its forward passes (rlt score).", hash=False)


def with_teacher_temperature(reward: RewardConfig, sampling: float | None) -> RewardConfig:
    """The teacher-temperature rule, written once: a copy of `reward` whose teacher temperature is a
    number - the one set, else `sampling` (the temperature the explanations were sampled at; None or 0
    = not sampled), else 0.7.

    docs/method.md "Temperatures": the teacher's log-probs use the temperature it sampled at. Each
    command applies it once, when its config is finalized (`finalize_config` of teach, generate and
    score); the reward and the KL-estimator choice read the number (`resolved_teacher_temperature`).
    """
    tau = reward.teacher_temperature
    if tau is None:
        tau = sampling if sampling else SAMPLING_TEMPERATURE
    return dataclasses.replace(reward, teacher_temperature=tau)


def resolved_teacher_temperature(reward: RewardConfig) -> float:
    """The teacher temperature of a resolved `reward`, for the code that scores (the reward, the KL-estimator
    choice). Raises ValueError when it is unset: unset means "the temperature the explanations were sampled
    at", which only the caller knows, so a fallback here could disagree with it (resolve it once with
    `with_teacher_temperature`, as each command's finalize_config does)."""
    if reward.teacher_temperature is None:
        raise ValueError("reward.teacher_temperature is unresolved: resolve it once with "
                         "with_teacher_temperature(reward, the temperature the explanations were sampled at)")
    return reward.teacher_temperature


def check_reward(reward: RewardConfig) -> None:
    """One UserError line for reward settings the formula cannot use (before any model loads)."""
    tau = reward.teacher_temperature
    if (tau is not None and tau <= 0) or reward.student_temperature <= 0:
        raise UserError("reward.teacher_temperature and reward.student_temperature must be > 0")
    if reward.chunk_tokens < 1:
        raise UserError(f"reward.chunk_tokens must be >= 1, got {reward.chunk_tokens}")
    if reward.format_penalty > 0:
        raise UserError(f"reward.format_penalty is a penalty: it must be <= 0, got {reward.format_penalty}")


