"""The RLT reward as a TRL GRPO reward function (used by `rlt teach`, stages/commands/teach.py).

`RLTRewardFunc` scores each sampled explanation with `stages.method.reward.RLTReward`
(docs/method.md "The reward") under the current policy: bound to the trainer, it
reads `trainer.model` at every call, so with LoRA the teacher pass runs the
adapted policy (adapters on), while TRL's reference pass runs the base.
Each call logs, besides the reward record's means, the shares of completions
that were empty, misaligned or untagged (no end tag) and could not be scored
(`rlt/empty`, `rlt/misaligned`, `rlt/untagged`, `rlt/unscorable`).
"""

from __future__ import annotations

from contextlib import nullcontext

from stages import reward_record
from stages.method.degenerate import is_empty
from stages.method.reward import floor_unscorable, group_minima
from stages.method.views import decode_keeping_tags, special_ids_except_tags

SHARES = ("empty", "misaligned", "untagged", "unscorable")  # logged per step as rlt/<name>


def completion_shares(scored: list[dict]) -> dict[str, float]:
    """Shares of scored completions that were empty (or whitespace), misaligned, without the end tag,
    and that the reward could not score. {} for no rows."""
    if not scored:
        return {}
    n = len(scored)
    return {"empty": sum(is_empty(r["explanation"]) for r in scored) / n,
            "misaligned": sum(not r["aligned"] for r in scored) / n,
            "untagged": sum(not r["format_ok"] for r in scored) / n,
            "unscorable": sum(bool(r.get("unscorable")) for r in scored) / n}


def policy_for_scoring(trainer):
    """A context yielding the trainer's policy, unwrapped for the reward's teacher pass.

    Under DeepSpeed ZeRO-3 every forward of a partitioned module all-gathers its weights, so a rank
    that scores more tokens, or a batch without a scorable explanation, would make more or fewer
    collectives than the others (a mismatch on gloo, a hang or corruption on NCCL). The whole policy
    is gathered once per reward call instead, as TRL gathers it for generation
    (`trl.models.utils.unwrap_model_for_generation`): one collective, the same on every rank, and the
    scoring inside makes none whatever its rows. Elsewhere it only unwraps.
    """
    from trl.models.utils import unwrap_model_for_generation

    return unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator, gather_deepspeed3_params=True)


class RLTRewardFunc:
    """GRPO reward function: the RLT reward of each completion under the current policy.

    Bound to the trainer after construction (`bind`), it reads the policy from
    `trainer.model` at every call. Completion text is decoded from
    `completion_ids` by the one decode rule (`views.decode_keeping_tags`: tags
    kept, other special tokens dropped), so the end tag survives whatever TRL's
    own decoding removed.
    """

    def __init__(self, scorer, tokenizer, samples_per_log: int = 4):
        self.__name__ = "rlt"
        self.scorer, self.tok, self.samples_per_log = scorer, tokenizer, samples_per_log
        self.stop_ids = {i for i in (tokenizer.eos_token_id, tokenizer.pad_token_id) if i is not None}
        self._drop = special_ids_except_tags(tokenizer)
        self._policy = None
        self._scoring = None  # a context yielding the policy to score with (bind: gathered under ZeRO-3)
        self._accelerator = None  # set by bind: groups split over processes are floored together
        self.samples: list[dict] = []
        self.rewards: list[float] = []  # computed since the last `take_rewards` (training checks them)

    def bind(self, trainer) -> RLTRewardFunc:
        """Take teacher log-probs from `trainer.model` (unwrapped from accelerate) from now on."""
        self.stop_ids |= set(getattr(trainer, "eos_token_ids", []) or [])
        self._policy = lambda: trainer.accelerator.unwrap_model(trainer.model)
        self._scoring = lambda: policy_for_scoring(trainer)
        self._accelerator = trainer.accelerator
        return self

    def bind_model(self, model) -> RLTRewardFunc:
        """Use a fixed model as the teacher (scoring outside a trainer)."""
        self._policy = lambda: model
        self._scoring = lambda: nullcontext(model)
        return self

    def completion_text(self, ids) -> str:
        ids = list(ids)
        while ids and ids[-1] in self.stop_ids:  # eos / padding after the completion
            ids.pop()
        return decode_keeping_tags(self.tok, ids, self._drop)

    def __call__(self, prompts, completions, completion_ids, question, solution, log_metric=None, **_) -> list[float]:
        import torch

        if self._policy is None:
            raise RuntimeError("RLTRewardFunc used before bind(trainer) or bind_model(model)")
        rows = [{"question": q, "solution": s, "completion": self.completion_text(ids)}
                for q, s, ids in zip(question, solution, completion_ids)]
        with self._scoring() as teacher:
            was_training = teacher.training
            teacher.eval()
            try:
                with torch.no_grad():
                    scored = self.scorer.score(rows, teacher=teacher)
            finally:
                teacher.train(was_training)
        self._floor_across_processes(rows, scored)
        if log_metric is not None:
            for name, value in {**reward_record.summary(scored), **completion_shares(scored)}.items():
                log_metric(f"rlt/{name}", value)
        self._keep(rows, scored)
        rewards = [float(r["reward"]) for r in scored]
        self.rewards += rewards
        return rewards

    def take_rewards(self) -> list[float]:
        """The rewards computed since the last call (stages/training/stopping.py stops on a non-finite one)."""
        out, self.rewards = self.rewards, []
        return out

    def _floor_across_processes(self, rows: list[dict], scored: list[dict]) -> None:
        """TRL may split a group over processes (it gathers rewards before computing advantages): re-floor
        the unscorable rows with each group's lowest computed reward over every process."""
        acc = self._accelerator
        if acc is None or acc.num_processes < 2:
            return
        from accelerate.utils import gather_object

        keys = [(r["question"], r["solution"]) for r in rows]
        merged: dict = {}
        for part in gather_object([group_minima(scored, keys)]):
            for key, low in part.items():
                merged[key] = min(merged.get(key, low), low)
        floor_unscorable(scored, keys, self.scorer.reward.format_penalty, merged)

    def _keep(self, rows: list[dict], scored: list[dict]) -> None:
        room = max(self.samples_per_log - len(self.samples), 0)
        self.samples += [{"question": row["question"], "solution": row["solution"], "explanation": r["explanation"],
                          **reward_record.record(r)} for row, r in zip(rows[:room], scored)]

    def take_samples(self) -> list[dict]:
        out, self.samples = self.samples, []
        return out

