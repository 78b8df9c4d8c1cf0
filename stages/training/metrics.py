"""Training metrics, one writer and one reader for both trainers: the `.rlt/metrics.jsonl` rows of `rlt teach`
(`grpo_metrics_callback`, with `.rlt/samples.jsonl`) and `rlt distill` (`sft_metrics_callback`), and the figures
a manifest records from `metrics.jsonl` (`mean_loss`, `summarize`) so they do not depend on a resume.

One row per logging step, written by the main process only (teach's keys are METRIC_KEYS).
`log_at_saves()` makes every checkpoint step (and the last step) a logging step: each row's loss
then covers the steps since the previous row, a resumed run starts its first interval at the
checkpoint it resumed from, and the rows - with `mean_loss` computed from them - are those of an
uninterrupted run (transformers keeps its running loss in memory only, so the `training_loss` it
returns averages the steps after a resume).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

from stages import records, reward_record
from stages.artifacts.layout import SAMPLES, meta_path, metrics_path
from stages.method.grpo import SHARES

log = logging.getLogger(__name__)


# metrics.jsonl key -> trainer log key: the reward record's fields (logged as rlt/<field> by the reward
# function; "reward" is TRL's own mean of the same values), then TRL's.
METRIC_KEYS = {"reward": "reward", "reward_std": "reward_std",
               **{c: f"rlt/{c}" for c in reward_record.COLUMNS if c != "reward"},
               **{c: f"rlt/{c}" for c in SHARES},  # shares of empty, misaligned, untagged, unscorable completions
               "completion_length": "completions/mean_length",
               "clipped_ratio": "completions/clipped_ratio", "kl_ref": "kl", "entropy": "entropy",
               "loss": "loss", "grad_norm": "grad_norm", "lr": "learning_rate"}


def _append_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "a") as f:
        f.writelines(records.dumps(r, default=str) + "\n" for r in rows)


def grpo_metrics_callback(out: Path, reward_fn):
    """teach's TrainerCallback writing metrics.jsonl (METRIC_KEYS) and samples.jsonl on the main process."""
    from transformers import TrainerCallback

    class MetricsLog(TrainerCallback):
        def __init__(self):
            self.t_last, self.step_seconds = time.time(), []

        def on_step_end(self, args, state, control, **kw):
            now = time.time()
            self.step_seconds.append(now - self.t_last)
            self.t_last = now

        def on_log(self, args, state, control, logs=None, **kw):
            if not state.is_world_process_zero or not logs or "reward" not in logs:
                return
            row = {"step": state.global_step, "epoch": logs.get("epoch")}
            row.update({k: logs.get(src) for k, src in METRIC_KEYS.items()})
            secs, self.step_seconds = self.step_seconds, []
            row["seconds_per_step"] = sum(secs) / len(secs) if secs else None
            _append_jsonl(metrics_path(out), [row])
            log.debug("step %d reward=%.4f sol_logp=%.3f kl=%.3f kl_ref=%.4f empty=%.2f misaligned=%.2f "
                      "untagged=%.2f %.2fs/step", row["step"], *(row[k] if row[k] is not None else math.nan
                                                                   for k in ("reward", "sol_logp_mean", "kl_mean",
                                                                             "kl_ref", "empty", "misaligned",
                                                                             "untagged", "seconds_per_step")))
            _append_jsonl(meta_path(out, SAMPLES), [{"step": state.global_step, **s} for s in reward_fn.take_samples()])

    return MetricsLog()


def sft_metrics_callback(out: Path):
    """distill's TrainerCallback appending {step, epoch, loss, lr, tokens_per_s, ...} to metrics.jsonl (main
    process)."""
    from transformers import TrainerCallback

    class MetricsCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            self._t, self._tokens = time.time(), state.num_input_tokens_seen

        def on_log(self, args, state, control, logs=None, **kw):
            if not state.is_world_process_zero or not logs or not ({"loss", "eval_loss"} & set(logs)):
                return
            now, tokens = time.time(), state.num_input_tokens_seen
            rec = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
            # TRL's `num_tokens` is a count kept in memory that restarts at a resume: num_input_tokens_seen,
            # restored from the checkpoint, is the record (the rows must not depend on a resume)
            rec.update({k: v for k, v in logs.items()
                        if isinstance(v, (int, float)) and k not in ("learning_rate", "num_tokens")})
            rec["lr"] = logs.get("learning_rate")
            if "loss" in logs:
                rec["tokens_per_s"] = round((tokens - self._tokens) / max(now - self._t, 1e-9), 1)
                self._t, self._tokens = now, tokens
            _append_jsonl(metrics_path(out), [rec])
            log.debug("step %d %s", state.global_step, " ".join(
                f"{k}={v:.4g}" for k, v in rec.items() if k in ("loss", "eval_loss", "lr", "tokens_per_s") and v))

    return MetricsCallback()


def log_at_saves():
    """A TrainerCallback (add it after the Trainer's own) that turns every checkpoint step and the last
    step into a logging step (see the module docstring)."""
    from transformers import TrainerCallback

    class LogAtSaves(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if control.should_save or state.global_step >= state.max_steps:
                control.should_log = True
            return control

    return LogAtSaves()


def read_metrics(out: Path) -> list[dict]:
    """The rows of `out`'s metrics.jsonl ([] when there is none; a line cut by a kill is skipped)."""
    path = metrics_path(out)
    rows = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def mean_loss(rows: list[dict]) -> float | None:
    """Mean training loss per optimizer step over the whole run: sum_i loss_i * (step_i - step_(i-1)) /
    last step, over the rows holding `loss` (each the mean over the steps since the previous row);
    None without such rows."""
    total, prev = 0.0, 0
    for r in sorted((r for r in rows if r.get("loss") is not None), key=lambda r: r["step"]):
        total += float(r["loss"]) * (r["step"] - prev)
        prev = r["step"]
    return total / prev if prev else None


def summarize(out: Path) -> dict:
    """First-fifth vs last-fifth mean reward of metrics.jsonl, for the manifest and the log."""
    rows = read_metrics(out)
    rewards = [r["reward"] for r in rows if r.get("reward") is not None and math.isfinite(r["reward"])]
    if not rewards:
        return {}
    k = max(len(rewards) // 5, 1)
    secs = [r["seconds_per_step"] for r in rows if r.get("seconds_per_step")]
    return {"reward_first_fifth": sum(rewards[:k]) / k, "reward_last_fifth": sum(rewards[-k:]) / k,
            "seconds_per_step": sum(secs) / len(secs) if secs else None, "metric_rows": len(rows)}
