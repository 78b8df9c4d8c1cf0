"""`rlt teach` (logic in stages/teach.py): GRPO training of the teacher with the RLT reward."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rltcli.common import ConfigOpt, ForceOpt, Overrides, PresetOpt, PrintConfigOpt, call_stage


def _o(help: str, *names: str):
    return typer.Option(*names, help=help, show_default=False)


def teach(
    teacher: Annotated[Optional[str], _o("Teacher model to train (directory or hub id).")] = None,
    student: Annotated[Optional[str], _o("Frozen student model giving the reward (same vocabulary).")] = None,
    data: Annotated[Optional[str], _o("Dataset artifact with question and solution columns.")] = None,
    out: Annotated[Optional[str], _o("Output checkpoint artifact directory.")] = None,
    preset: PresetOpt = None,
    max_steps: Annotated[Optional[int], _o("Optimizer steps.", "--max-steps")] = None,
    epochs: Annotated[Optional[float], _o("Passes over the data when --max-steps is unset.")] = None,
    lr: Annotated[Optional[float], _o("Learning rate (constant).")] = None,
    num_generations: Annotated[Optional[int], _o("Completions per prompt (group size).", "--num-generations")] = None,
    prompts_per_step: Annotated[Optional[int], _o("Prompts per optimizer step.", "--prompts-per-step")] = None,
    grad_accum: Annotated[Optional[int], _o("Gradient accumulation micro-steps.", "--grad-accum")] = None,
    seed: Annotated[Optional[int], _o("Seed.")] = None,
    device: Annotated[Optional[str], _o("auto, cpu or cuda.")] = None,
    launch: Annotated[Optional[str], _o("Accelerate preset: ddp, zero2, zero3, zero3-offload.")] = None,
    gpus: Annotated[Optional[int], _o("Processes (GPUs) for --launch.")] = None,
    use_vllm: Annotated[Optional[bool], _o("Generate with vLLM (GPU).", "--use-vllm")] = None,
    offload_student: Annotated[Optional[bool], _o("Keep the student on the CPU.", "--offload-student")] = None,
    trust_remote_code: Annotated[Optional[bool], _o("Allow model code from the model directory.",
                                                    "--trust-remote-code")] = None,
    config: ConfigOpt = None, force: ForceOpt = False, print_config: PrintConfigOpt = False,
    overrides: Overrides = None,
) -> None:
    """GRPO on the teacher: explanations rewarded by how well the student then understands the solution."""
    options = {"teacher": teacher, "student": student, "data": data, "out": out, "max_steps": max_steps,
               "epochs": epochs, "lr": lr, "num_generations": num_generations, "prompts_per_step": prompts_per_step,
               "grad_accum": grad_accum, "seed": seed, "device": device, "launch": launch, "gpus": gpus,
               "use_vllm": use_vllm, "offload_student": offload_student, "trust_remote_code": trust_remote_code,
               "force": force or None}
    path = call_stage("teach", "TeachConfig", "run", config, overrides, preset=preset,
                      print_config=print_config, **options)
    if path is not None:
        typer.echo(f"teacher checkpoint: {path}")
