"""`rlt distill` (logic in stages/distill.py)."""

from __future__ import annotations

from typing import Annotated

from typer import Option

from rltcli.common import ConfigOpt, ForceOpt, Overrides, PresetOpt, PrintConfigOpt, call_stage


def _o(help: str, *names: str):
    return Option(*names, help=help, show_default=False)


def distill(model: Annotated[str | None, _o("Model directory or hub id to fine-tune.", "--model")] = None,
            data: Annotated[str | None, _o("Traces or dataset artifact.", "--data")] = None,
            out: Annotated[str | None, _o("Output checkpoint directory.", "--out")] = None,
            role: Annotated[str | None, _o("student (default) or teacher (the warm-up).", "--role")] = None,
            no_explanation: Annotated[bool, Option("--no-explanation", help="Student on the solution only.")] = False,
            epochs: Annotated[float | None, _o("Training epochs.", "--epochs")] = None,
            max_steps: Annotated[int | None, _o("Stop after N optimizer steps.", "--max-steps")] = None,
            lr: Annotated[float | None, _o("Peak learning rate.", "--lr")] = None,
            batch_size: Annotated[int | None, _o("Rows per device per micro-batch.", "--batch-size")] = None,
            grad_accum: Annotated[int | None, _o("Micro-batches per step.", "--grad-accum")] = None,
            max_length: Annotated[int | None, _o("Longest row in tokens.", "--max-length")] = None,
            packing: Annotated[bool | None, _o("Pack rows (padding-free).", "--packing/--no-packing")] = None,
            padding_free: Annotated[bool | None, _o("Unpadded batches.", "--padding-free/--padded")] = None,
            seed: Annotated[int | None, _o("Seed.", "--seed")] = None,
            report_to: Annotated[str | None, _o("none, tensorboard, wandb, trackio.", "--report-to")] = None,
            eval_split: Annotated[float | None, _o("Fraction held out for eval loss.", "--eval-split")] = None,
            device: Annotated[str | None, _o("auto, cpu or cuda.", "--device")] = None,
            launch: Annotated[str | None, _o("ddp, zero2, zero3 or zero3-offload.", "--launch")] = None,
            gpus: Annotated[int | None, _o("Processes for --launch.", "--gpus")] = None,
            trust_remote_code: Annotated[bool, Option("--trust-remote-code", help="Allow hub model code.")] = False,
            preset: PresetOpt = None, config: ConfigOpt = None, force: ForceOpt = False,
            print_config: PrintConfigOpt = False, overrides: Overrides = None) -> None:
    """SFT a student on traces, or warm up a teacher (--role teacher)."""
    call_stage("distill", "DistillConfig", "run", config, overrides, preset=preset, print_config=print_config,
               model=model, data=data, out=out, role=role, no_explanation=no_explanation or None,
               epochs=epochs, max_steps=max_steps, lr=lr, batch_size=batch_size, grad_accum=grad_accum,
               max_length=max_length, packing=packing, padding_free=padding_free, seed=seed,
               report_to=report_to, eval_split=eval_split, device=device, launch=launch, gpus=gpus,
               trust_remote_code=trust_remote_code or None, force=force or None)
