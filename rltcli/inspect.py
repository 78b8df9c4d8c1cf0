"""`rlt inspect A` (logic in stages/inspect.py)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from rltcli.common import call_stage


def inspect(path: Annotated[str, typer.Argument(help="Artifact directory or Parquet/JSONL file.")],
            rows: Annotated[Optional[int], typer.Option(help="Rows to show (default 5).", show_default=False)] = None) -> None:
    """Show an artifact's manifest, schema, row count and first rows."""
    call_stage("inspect", "InspectConfig", path=path, rows=rows)
