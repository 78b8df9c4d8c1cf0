"""`rlt model tiny` (logic in stages/tinymodel.py)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rltcli.common import ConfigOpt, ForceOpt, Overrides, PrintConfigOpt, call_stage

app = typer.Typer(help="Build local models.", no_args_is_help=True)


def _int(help: str):
    return typer.Option(help=help, show_default=False)


@app.command("tiny")
def tiny(out: Annotated[Optional[str], typer.Option("--out", help="Output checkpoint directory.", show_default=False)] = None,
         seed: Annotated[Optional[int], _int("Weight-initialisation seed.")] = None,
         hidden: Annotated[Optional[int], _int("Hidden size (default 128).")] = None,
         layers: Annotated[Optional[int], _int("Decoder layers (default 2).")] = None,
         tokenizer: Annotated[Optional[str], typer.Option(help="Reuse this directory's tokenizer.", show_default=False)] = None,
         tag_tokens: Annotated[Optional[bool], typer.Option("--tag-tokens/--plain-tags", help="Tags as single added tokens, or multi-token plain text.", show_default=False)] = None,
         config: ConfigOpt = None, force: ForceOpt = False, print_config: PrintConfigOpt = False,
         overrides: Overrides = None) -> None:
    """A tiny Qwen2-style model with a locally trained BPE tokenizer (no network)."""
    call_stage("tinymodel", "TinyModelConfig", "run", config, overrides, print_config=print_config,
               out=out, seed=seed, hidden=hidden, layers=layers, tokenizer=tokenizer,
               tag_tokens=tag_tokens, force=force or None)
