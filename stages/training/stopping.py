"""Training stops gracefully: on SIGTERM or the scheduler's warning signal (stages/interrupt.py) a run
saves a checkpoint at the next optimizer-step boundary, logs that step's metrics row and ends; the
rerun resumes from that checkpoint and ends at the asked step count, each metrics row once.

    resume, step = last_checkpoint(checkpoint_dir(out))
    run_trainer(trainer, resume)      # instead of trainer.train(resume_from_checkpoint=resume)

Every rank of a multi-process run stops at the same step: the ranks agree on the request at each
step's end (one all-reduce of a flag), so a signal that reaches them a step apart cannot leave one
rank waiting for the others. A stop asked during the last step lets the run finish.

A run that diverges stops at once: when a micro-batch's loss, the gradient norm of an optimizer step
or (teach) a reward is NaN or infinite on any rank, every rank raises `errors.Diverged` at the end of
that step, before it is logged or saved (the ranks agree in the same all-reduce). The newest
checkpoint stays the last good one, no manifest is written, and the CLI says the step and what went
non-finite in one line (exit 1).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from stages import interrupt
from stages.artifacts.checkpoints import guard_loading
from stages.errors import Diverged
from stages.training.launch import DIVERGED_FILE_ENV, in_launched_process, local_rank, rank, world_size

log = logging.getLogger(__name__)
WATCHED = ("loss", "grad_norm", "reward")  # the values that stop a run when one is not finite


def _agreed(args, local: list[bool]) -> list[bool]:
    """Each flag OR-ed over the ranks (every rank takes part at every step, in one all-reduce)."""
    if world_size() <= 1:
        return local
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return local
    flags = torch.tensor([1.0 if f else 0.0 for f in local], device=args.device)
    dist.all_reduce(flags, op=dist.ReduceOp.MAX)
    return [bool(f) for f in flags.tolist()]


def _finite(value) -> bool:
    """Is `value` (a float, a tensor, or None = not computed) free of NaN and infinities?"""
    if value is None:
        return True
    if hasattr(value, "detach"):
        import torch

        return bool(torch.isfinite(value.detach()).all())
    return math.isfinite(float(value))


class FiniteWatch:
    """Notes, over one optimizer step, which of WATCHED went non-finite on this process.

    `watch(trainer)` wraps the trainer's micro-batch step (its loss) and its gradient-norm computation
    (`Trainer._get_grad_norm`, the norm it clips and logs); `rewards` returns the rewards computed since
    its last call (teach's reward function).
    """

    def __init__(self, rewards: Callable[[], Iterable[float]] | None = None):
        self.rewards = rewards
        self.bad: dict[str, bool] = dict.fromkeys(WATCHED, False)

    def watch(self, trainer) -> None:
        def noting(name, fn):
            def wrapped(*a, **kw):
                out = fn(*a, **kw)
                if not _finite(out):
                    self.bad[name] = True
                return out
            return wrapped

        trainer.training_step = noting("loss", trainer.training_step)
        if hasattr(trainer, "_get_grad_norm"):
            trainer._get_grad_norm = noting("grad_norm", trainer._get_grad_norm)

    def take(self) -> list[bool]:
        """The flags of the step that just ended (in WATCHED order); reset for the next step."""
        if self.rewards is not None and not all(math.isfinite(float(r)) for r in self.rewards()):
            self.bad["reward"] = True
        flags, self.bad = [self.bad[k] for k in WATCHED], dict.fromkeys(WATCHED, False)
        return flags


def diverged_line(args, step: int, what: list[str]) -> str:
    """The one line that says a run diverged: the step, what went non-finite, what was kept."""
    from stages.artifacts.checkpoints import last_checkpoint

    newest, _ = last_checkpoint(Path(args.output_dir))
    kept = f"the newest checkpoint, {Path(newest).name}, is the last good one; lower the learning rate and rerun " \
        "with --force" if newest else "no checkpoint was saved; lower the learning rate and rerun"
    names = " and ".join(n.replace("_", " ") for n in what)
    return f"training diverged at step {step}: the {names} is not finite (NaN or infinite); stopped without " \
        f"saving that step ({kept})"


def stop_callback(watch: FiniteWatch | None = None, save_last: bool = True):
    """A TrainerCallback: when a stop is asked, save at the end of this optimizer step and end training;
    when `watch` saw a non-finite value on any rank, raise Diverged before the step is logged or saved.
    With `save_last` False no checkpoint is written at the last step: the stage saves the trained model
    right after and drops its checkpoints, so that one (weights and optimizer state, 3x the model) would
    only be written to be deleted; a kill between the two resumes from the checkpoint before."""
    from transformers import TrainerCallback

    class StopAtStepBoundary(TrainerCallback):
        def __init__(self):
            self.stopped_at: int | None = None

        def on_step_end(self, args, state, control, **kw):
            asked, *bad = _agreed(args, [interrupt.requested() is not None, *(watch.take() if watch else [])])
            if any(bad):
                raise Diverged(diverged_line(args, state.global_step, [n for n, b in zip(WATCHED, bad) if b]))
            if asked and state.global_step < state.max_steps and self.stopped_at is None:
                control.should_save = control.should_log = control.should_training_stop = True
                self.stopped_at = state.global_step
            elif state.global_step >= state.max_steps and not save_last:
                control.should_save = False
            return control

        def on_save(self, args, state, control, **kw):
            if self.stopped_at is not None:
                control.should_save = False  # saved: not once more at the epoch's end
            return control

    return StopAtStepBoundary()


def run_trainer(trainer, resume: str | None, rewards: Callable[[], Iterable[float]] | None = None,
                save_last: bool = True) -> None:
    """`trainer.train(resume_from_checkpoint=resume)` that stops gracefully and on divergence (see the
    module docstring). `rewards`: the rewards computed since its last call, checked at each step's end.
    `save_last`: write the last step's checkpoint (False when the stage drops its checkpoints after).

    Raises interrupt.GracefulStop once the checkpoint is saved; in a process started by a launcher it
    exits with 0 instead (the launching process reports the stop, and the launcher stays quiet).
    Raises errors.Diverged at the end of a step where a loss, gradient norm or reward is not finite;
    UserError when `resume` does not load (checkpoints.guard_loading).
    """
    guard_loading(trainer, resume)
    watch = FiniteWatch(rewards)
    watch.watch(trainer)
    callback = stop_callback(watch, save_last)
    trainer.add_callback(callback)
    try:
        with interrupt.graceful():
            trainer.train(resume_from_checkpoint=resume)
    except Diverged as e:
        said = os.environ.get(DIVERGED_FILE_ENV)
        if not said:
            raise
        if local_rank() == 0:  # the launching process prints the line and exits 1; the launcher stays quiet
            Path(said).write_text(str(e))
        raise SystemExit(0) from None
    if callback.stopped_at is None:
        return
    what = f"checkpoint saved at step {callback.stopped_at}"
    if rank() == 0:
        log.info("stopped on %s: %s", interrupt.requested(), what)
    if in_launched_process():
        raise SystemExit(0)
    raise interrupt.GracefulStop(f"stopped on {interrupt.requested()}: {what}; rerun the same command to resume")
