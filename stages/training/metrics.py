"""Per-step metrics of `rlt teach`: `.rlt/metrics.jsonl` and `.rlt/samples.jsonl` rows, and the run summary.

One row per logging step, written by the main process only (the keys are METRIC_KEYS).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

from stages import reward_record
from stages.artifacts.layout import SAMPLES, meta_path, metrics_path

log = logging.getLogger("stages.commands.teach")


# metrics.jsonl key -> trainer log key: the reward record's fields (logged as rlt/<field> by the reward
# function; "reward" is TRL's own mean of the same values), then TRL's.
METRIC_KEYS = {"reward": "reward", "reward_std": "reward_std",
               **{c: f"rlt/{c}" for c in reward_record.COLUMNS if c != "reward"},
               "completion_length": "completions/mean_length",
               "clipped_ratio": "completions/clipped_ratio", "kl_ref": "kl", "entropy": "entropy",
               "loss": "loss", "grad_norm": "grad_norm", "lr": "learning_rate"}


def _append_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "a") as f:
        f.writelines(json.dumps(r, default=str) + "\n" for r in rows)


def metrics_callback(out: Path, reward_fn):
    """A TrainerCallback writing metrics.jsonl and samples.jsonl on the main process."""
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
            log.debug("step %d reward=%.4f format_ok=%.2f sol_logp=%.3f kl=%.3f kl_ref=%.4f %.2fs/step",
                     row["step"], *(row[k] if row[k] is not None else math.nan
                                    for k in ("reward", "format_ok", "sol_logp_mean", "kl_mean", "kl_ref",
                                              "seconds_per_step")))
            _append_jsonl(meta_path(out, SAMPLES), [{"step": state.global_step, **s} for s in reward_fn.take_samples()])

    return MetricsLog()


def summarize(out: Path) -> dict:
    """First-fifth vs last-fifth mean reward of metrics.jsonl, for the manifest and the log."""
    rows = [json.loads(x) for x in metrics_path(out).read_text().splitlines()] \
        if metrics_path(out).is_file() else []
    rewards = [r["reward"] for r in rows if r.get("reward") is not None and math.isfinite(r["reward"])]
    if not rewards:
        return {}
    k = max(len(rewards) // 5, 1)
    secs = [r["seconds_per_step"] for r in rows if r.get("seconds_per_step")]
    return {"reward_first_fifth": sum(rewards[:k]) / k, "reward_last_fifth": sum(rewards[-k:]) / k,
            "seconds_per_step": sum(secs) / len(secs) if secs else None, "metric_rows": len(rows)}
