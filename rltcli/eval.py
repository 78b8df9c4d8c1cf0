"""`rlt eval` (logic in stages/evaluate.py): parse options, run the stage, print the table."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rltcli.common import ConfigOpt, ForceOpt, Overrides, PrintConfigOpt, call_stage


def eval_(
    model: Annotated[Optional[list[str]], typer.Option("--model", help="Model directory or hub id; repeat to compare.", show_default=False)] = None,
    data: Annotated[Optional[str], typer.Option(help="Dataset artifact or Parquet/JSONL file.", show_default=False)] = None,
    out: Annotated[Optional[str], typer.Option(help="Output eval artifact directory.", show_default=False)] = None,
    samples: Annotated[Optional[int], typer.Option(help="Responses per question (default 1).", show_default=False)] = None,
    temperature: Annotated[Optional[float], typer.Option(help="Sampling temperature (default 0 = greedy).", show_default=False)] = None,
    top_p: Annotated[Optional[float], typer.Option("--top-p", help="Nucleus sampling threshold.", show_default=False)] = None,
    max_new_tokens: Annotated[Optional[int], typer.Option("--max-new-tokens", help="Most tokens per response.", show_default=False)] = None,
    seed: Annotated[Optional[int], typer.Option(help="Sampling seed.", show_default=False)] = None,
    shard: Annotated[Optional[str], typer.Option(help="i/n: evaluate one slice of the rows.", show_default=False)] = None,
    limit: Annotated[Optional[int], typer.Option(help="Evaluate only the first N rows.", show_default=False)] = None,
    engine: Annotated[Optional[str], typer.Option(help="Generation engine: hf, vllm or openai.", show_default=False)] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Prompts per generation batch.", show_default=False)] = None,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Allow pickle (.bin) weights you trust.")] = False,
    config: ConfigOpt = None, force: ForceOpt = False, print_config: PrintConfigOpt = False,
    overrides: Overrides = None,
) -> None:
    """Accuracy of one or more models on a dataset (benchmarks or the synthetic test split)."""
    options = {"models": model or None, "data": data, "out": out, "samples": samples,
               "temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens, "seed": seed,
               "shard": shard, "limit": limit, "force": force or None,
               "engine.name": engine, "engine.batch_size": batch_size,
               "engine.allow_pickle": allow_pickle or None}
    path = call_stage("evaluate", "EvalConfig", "run", config, overrides, print_config=print_config, **options)
    if path is None:
        return
    from rich.console import Console

    from stages.evaluate import read_summary, summary_table

    Console().print(summary_table(read_summary(path)))
    typer.echo(f"eval artifact: {path}")
