"""Training stops gracefully: on SIGTERM or the scheduler's warning signal (stages/interrupt.py) a run
saves a checkpoint at the next optimizer-step boundary, logs that step's metrics row and ends; the
rerun resumes from that checkpoint and ends at the asked step count, each metrics row once.

    resume, step = last_checkpoint(checkpoint_dir(out))
    run_trainer(trainer, resume)      # instead of trainer.train(resume_from_checkpoint=resume)

Every rank of a multi-process run stops at the same step: the ranks agree on the request at each
step's end (one all-reduce of a flag), so a signal that reaches them a step apart cannot leave one
rank waiting for the others. A stop asked during the last step lets the run finish.
"""

from __future__ import annotations

import logging

from stages import interrupt
from stages.training.launch import in_launched_process, rank, world_size

log = logging.getLogger(__name__)


def _agreed(args, local: bool) -> bool:
    """Whether any rank was asked to stop (every rank takes part at every step)."""
    if world_size() <= 1:
        return local
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return local
    flag = torch.tensor([1.0 if local else 0.0], device=args.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def stop_callback():
    """A TrainerCallback: when a stop is asked, save at the end of this optimizer step and end training."""
    from transformers import TrainerCallback

    class StopAtStepBoundary(TrainerCallback):
        def __init__(self):
            self.stopped_at: int | None = None

        def on_step_end(self, args, state, control, **kw):
            asked = _agreed(args, interrupt.requested() is not None)
            if asked and state.global_step < state.max_steps and self.stopped_at is None:
                control.should_save = control.should_log = control.should_training_stop = True
                self.stopped_at = state.global_step
            return control

        def on_save(self, args, state, control, **kw):
            if self.stopped_at is not None:
                control.should_save = False  # saved: not once more at the epoch's end
            return control

    return StopAtStepBoundary()


def run_trainer(trainer, resume: str | None) -> None:
    """`trainer.train(resume_from_checkpoint=resume)` that stops gracefully (see the module docstring).

    Raises interrupt.GracefulStop once the checkpoint is saved; in a process started by a launcher it
    exits with 0 instead (the launching process reports the stop, and the launcher stays quiet).
    """
    callback = stop_callback()
    trainer.add_callback(callback)
    with interrupt.graceful():
        trainer.train(resume_from_checkpoint=resume)
    if callback.stopped_at is None:
        return
    what = f"checkpoint saved at step {callback.stopped_at}"
    if rank() == 0:
        log.info("stopped on %s: %s", interrupt.requested(), what)
    if in_launched_process():
        raise SystemExit(0)
    raise interrupt.GracefulStop(f"stopped on {interrupt.requested()}: {what}; rerun the same command to resume")
