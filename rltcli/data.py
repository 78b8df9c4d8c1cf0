"""`rlt data synth|import|merge` (logic in stages/data.py)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rltcli.common import ConfigOpt, ForceOpt, Overrides, PrintConfigOpt, call_stage

app = typer.Typer(help="Build, import and merge datasets.", no_args_is_help=True)
Out = Annotated[Optional[str], typer.Option("--out", help="Output artifact directory.", show_default=False)]


@app.command("synth")
def synth(out: Out = None,
          n: Annotated[Optional[int], typer.Option(help="Number of problems.", show_default=False)] = None,
          seed: Annotated[Optional[int], typer.Option(help="Sampling seed.", show_default=False)] = None,
          split: Annotated[Optional[str], typer.Option(help="train or test.", show_default=False)] = None,
          config: ConfigOpt = None, force: ForceOpt = False, print_config: PrintConfigOpt = False,
          overrides: Overrides = None) -> None:
    """Synthetic addition task with gold column-carry traces."""
    call_stage("data", "SynthConfig", "synth", config, overrides, print_config=print_config,
               out=out, n=n, seed=seed, split=split, force=force or None)


@app.command("import")
def import_(src: Annotated[str, typer.Argument(help="Local file/folder or hub id.")],
            out: Out = None,
            format: Annotated[Optional[str], typer.Option(help="columns, stratos, math500, aime or gpqa.", show_default=False)] = None,
            map: Annotated[Optional[str], typer.Option("--map", help="dst=src,... column renames (columns format).", show_default=False)] = None,
            split: Annotated[Optional[str], typer.Option(help="Split of a DatasetDict.", show_default=False)] = None,
            config: ConfigOpt = None, force: ForceOpt = False, print_config: PrintConfigOpt = False,
            overrides: Overrides = None) -> None:
    """Import a dataset in a known layout (Bespoke-Stratos, MATH-500, AIME, GPQA, plain columns)."""
    mapping = None
    if map:
        pairs = [p.split("=", 1) for p in map.split(",") if p]
        if any(len(p) != 2 or not p[0] or not p[1] for p in pairs):
            from rltcli.common import fail

            fail(f"--map must look like dst=src,dst=src, got {map!r}")
        mapping = dict(pairs)
    call_stage("data", "ImportConfig", "import_", config, overrides, print_config=print_config,
               src=src, out=out, format=format, map=mapping, split=split, force=force or None)


@app.command("merge")
def merge(inputs: Annotated[list[str], typer.Argument(help="Artifacts to merge.")],
          out: Out = None, force: ForceOpt = False) -> None:
    """Merge shards or resumed runs into one artifact, refusing conflicting rows."""
    call_stage("data", "MergeConfig", "merge", inputs=inputs, out=out, force=force or None)
