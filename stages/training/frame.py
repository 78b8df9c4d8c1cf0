"""The training frame teach and distill share, written once: start (relaunch or resume), fit, save, finish.

    def run(cfg):
        validate(cfg)
        if not frame.start("distill", cfg):     # relaunched under accelerate, or already complete
            return Path(cfg.out)
        with RankZeroWriter(cfg.out, "checkpoint", cfg, inputs=inputs_of(cfg), force=cfg.force) as w:
            trainer = ...
            resume = frame.fit(trainer, cfg.out, logs=(metrics_path(cfg.out),))
            frame.save(trainer, cfg.out, tok, cfg.lora, cfg.model)
            frame.finish(w, trainer, cfg.out, extra, rows=n, keep_checkpoints=cfg.keep_checkpoints)

The order is what makes a kill at any moment resumable: a damaged checkpoint is refused before
a model loads; a run resumes from its newest complete checkpoint with the log rows after it
truncated (they are written again); intermediate checkpoints are dropped only after the
manifest is written. The stage's config needs `out`, `force`, `launch`, `nproc`, `gpus` and
`launch_args`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from stages.artifacts.checkpoints import (
    check_resumable,
    checkpoint_dir,
    drop_checkpoints,
    last_checkpoint,
    truncate_jsonl,
)
from stages.artifacts.state import already_complete, require
from stages.config import inputs_of, to_dict
from stages.progress import close_training_progress, plural
from stages.training import launch, lora
from stages.training.stopping import run_trainer

log = logging.getLogger(__name__)


def start(command: str, cfg: Any) -> bool:
    """Whether this process trains: False once the run was relaunched under accelerate (`cfg.launch`, this
    process not launched: the launched ranks trained) or the output is already complete.

    Raises UserError for a damaged checkpoint or a conflicting output, before any model
    loads, and what `launch.relaunch` raises.
    """
    check_resumable(cfg.out, cfg.force)
    if cfg.launch and not launch.in_launched_process():
        child = dataclasses.replace(cfg, launch=None)
        launch.relaunch(command, to_dict(child), cfg.launch, launch.processes(cfg.nproc, cfg.gpus), cfg.launch_args)
        return False
    launch.die_with_launcher()
    if require(cfg.out, "checkpoint", cfg, inputs_of(cfg), cfg.force).complete:
        already_complete(cfg.out)
        return False
    return True


def fit(trainer, out: str | Path, logs: Iterable[Path], rewards: Callable[[], Iterable[float]] | None = None,
        save_last: bool = True) -> str | None:
    """Train `trainer` to its end, resuming from the newest complete checkpoint under `out` (returned, None
    without one); the main process first truncates the JSONL `logs` to that checkpoint's step.

    A stop request saves a checkpoint at the next optimizer step and stops (stages/interrupt.py); a non-finite
    loss, gradient norm or reward (`rewards`) raises Diverged at the end of its step, nothing of it saved
    (stages/training/stopping.py `run_trainer`).
    """
    resume, step = last_checkpoint(checkpoint_dir(out))
    if trainer.is_world_process_zero():  # rows after the checkpoint (or of a run killed before one) come again
        for path in logs:
            truncate_jsonl(path, step)
    if resume:
        log.info("resuming from %s (step %d)", resume, step)
    try:
        run_trainer(trainer, resume, rewards=rewards, save_last=save_last)
    finally:
        close_training_progress(trainer)
    return resume


def save(trainer, out: str | Path, tok, lora_cfg, base: str, finalize: Callable = lambda model: None,
         trust_remote_code: bool = False) -> None:
    """The trained model (LoRA merged into `base` when it trained adapters) and `tok` into `out`, as
    safetensors; the Trainer's pickled arguments removed (the manifest records the config)."""
    lora.save(trainer, Path(out), lora_cfg, base, finalize, trust_remote_code)
    if trainer.is_world_process_zero():
        tok.save_pretrained(str(out))
        (Path(out) / "training_args.bin").unlink(missing_ok=True)


def finish(writer, trainer, out: str | Path, extra: dict, rows: int, keep_checkpoints: bool) -> dict:
    """The manifest (rank 0 writes it, every rank waits for it), then the intermediate checkpoints dropped
    unless kept: a kill before the manifest can still resume. Returns the manifest."""
    manifest = writer.finish(extra, rows=rows)
    if launch.rank() == 0 and not keep_checkpoints:
        drop_checkpoints(out)
    log.info("trained %s -> %s", plural(trainer.state.global_step, "step"), out)
    return manifest
