"""`rlt generate` (logic in stages/generate.py): teacher explanations -> student traces."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rltcli.common import ConfigOpt, ForceOpt, Overrides, PrintConfigOpt, call_stage


def _o(*names: str, help: str):
    return typer.Option(*names, help=help, show_default=False)


def generate(
    teacher: Annotated[Optional[str], _o("--teacher", help="Teacher model directory or hub id.")] = None,
    data: Annotated[Optional[str], _o("--data", help="Dataset artifact (id, question, solution).")] = None,
    out: Annotated[Optional[str], _o("--out", help="Output traces artifact directory.")] = None,
    engine: Annotated[Optional[str], _o("--engine", help="Generation engine: hf (default), openai or vllm.")] = None,
    samples: Annotated[Optional[int], _o("--samples", help="Explanations per question (default 1).")] = None,
    select: Annotated[Optional[str], _o("--select", help="Keep all samples, the best by RLT reward, or the best that fits.")] = None,
    student: Annotated[Optional[str], _o("--student", help="Student model: score every row with the RLT reward.")] = None,
    max_student_tokens: Annotated[Optional[int], _o("--max-student-tokens", help="Longest student view kept by --select fit.")] = None,
    shard: Annotated[Optional[str], _o("--shard", help="i/n: generate one deterministic slice of the rows.")] = None,
    limit: Annotated[Optional[int], _o("--limit", help="Use only the first N rows.")] = None,
    batch_size: Annotated[Optional[int], _o("--batch-size", help="Prompts per generation batch (default 16).")] = None,
    max_new_tokens: Annotated[Optional[int], _o("--max-new-tokens", help="Most tokens per explanation (default 1024).")] = None,
    temperature: Annotated[Optional[float], _o("--temperature", help="Sampling temperature (default 0.7; 0 = greedy).")] = None,
    top_p: Annotated[Optional[float], _o("--top-p", help="Nucleus sampling mass (default 1).")] = None,
    seed: Annotated[Optional[int], _o("--seed", help="Base sampling seed (default 0).")] = None,
    device: Annotated[Optional[str], _o("--device", help="Device: auto, cpu, cuda...")] = None,
    base_url: Annotated[Optional[str], _o("--base-url", help="OpenAI-compatible server root (openai engine).")] = None,
    api_model: Annotated[Optional[str], _o("--api-model", help="Model name sent to the server (default: --teacher).")] = None,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Allow pickle (.bin) weights you trust.")] = False,
    config: ConfigOpt = None, force: ForceOpt = False, print_config: PrintConfigOpt = False,
    overrides: Overrides = None,
) -> None:
    """Teacher explanations for every (question, solution) -> traces in the student format."""
    options = {"teacher": teacher, "data": data, "out": out, "samples": samples, "select": select,
               "student": student, "max_student_tokens": max_student_tokens, "shard": shard, "limit": limit,
               "max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p, "seed": seed,
               "force": force or None, "engine.name": engine, "engine.batch_size": batch_size,
               "engine.device": device, "engine.base_url": base_url, "engine.api_model": api_model,
               "engine.allow_pickle": allow_pickle or None}
    path = call_stage("generate", "GenerateConfig", "run", config, overrides, print_config=print_config, **options)
    if path is not None:
        typer.echo(f"traces artifact: {path}")
