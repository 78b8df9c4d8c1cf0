"""Resuming training stages (`rlt distill`, `rlt teach`) from their intermediate checkpoints.

    resume, step = last_checkpoint(checkpoint_dir(out))
    truncate_jsonl(metrics_path(out), step)

A checkpoint artifact is a Hugging Face model directory (what `from_pretrained`
loads: config, safetensors, tokenizer, chat template, generation config) with
rlt's records in `.rlt/`; intermediate Trainer checkpoints sit under
`checkpoints/` until the manifest is written.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from stages.config import at_least, opt

CHECKPOINTS = "checkpoints"


def save_total_limit_opt():
    """The `save_total_limit` option of a training stage's config (distill, teach)."""
    return opt(1, "Resumable checkpoints kept under out/checkpoints while training (1 = the last: all a resume "
                  "needs).", hash=False, check=at_least(1))


def keep_checkpoints_opt():
    """The `keep_checkpoints` option of a training stage's config (distill, teach): see `drop_checkpoints`."""
    return opt(False, "Keep out/checkpoints (with optimizer state) after a successful run; by default only the "
                      "trained model stays.", hash=False)


def checkpoint_dir(out: str | Path) -> Path:
    """Where a training stage keeps its intermediate Trainer checkpoints."""
    return Path(out) / CHECKPOINTS


def last_checkpoint(ckdir: Path) -> tuple[str | None, int]:
    """Newest complete checkpoint and its step (trainer_state.json is written last: a save cut short lacks it)."""
    best, step = None, 0
    for d in ckdir.glob("checkpoint-*") if ckdir.is_dir() else []:
        state = d / "trainer_state.json"
        if state.is_file():
            try:
                s = json.loads(state.read_text())["global_step"]
            except (json.JSONDecodeError, KeyError):
                continue
            if s > step:
                best, step = str(d), s
    return best, step


def drop_checkpoints(out: str | Path) -> None:
    """Remove a finished training artifact's intermediate checkpoints (model and optimizer state for resuming):
    what stays is the trained model. Call it only after the manifest is written."""
    shutil.rmtree(checkpoint_dir(out), ignore_errors=True)


def truncate_jsonl(path: Path, last_step: int) -> None:
    """Keep rows up to `last_step` (a resumed run rewrites the steps after its checkpoint)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill
            continue
        if row.get("step", 0) <= last_step:
            keep.append(line + "\n")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(keep))
    os.replace(tmp, path)
