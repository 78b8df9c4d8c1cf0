"""`rlt inspect A`: an artifact's state first, then manifest, schema, row count and first rows.

    rlt inspect runs/demo/generate --rows 5

The state is `lifecycle.output_state`: complete; interrupted with the rows so far;
or complete but its recorded inputs differ from those inputs as they are now
(naming which). An interrupted artifact's rows so far are shown too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from stages.artifacts.layout import data_files
from stages.artifacts.read import read_table
from stages.artifacts.state import output_state
from stages.config import opt
from stages.errors import UserError
from stages.progress import console


@dataclass
class InspectConfig:
    """Options of `rlt inspect`."""

    path: str = opt("", "Artifact directory or Parquet/JSONL file.", arg=True)
    rows: int = opt(5, "How many rows to show.", flag=True)
    width: int = opt(60, "Characters shown per cell.")


def _rows_so_far(p: Path) -> pa.Table:
    """Rows of an unfinished artifact (parts a kill cut short are left out)."""
    tables = []
    for f in data_files(p):
        try:
            tables.append(pq.read_table(f))
        except (pa.ArrowException, OSError):
            continue
    return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})


def summary(cfg: InspectConfig) -> dict:
    """State, manifest, schema, row count and head rows as plain data.

    `state` is one of missing (a plain file), interrupted, complete, conflicting;
    `state_line` says it in words. Raises UserError for a missing path.
    """
    p = Path(cfg.path)
    if not p.exists():
        raise UserError(f"input not found: {p}")
    state = output_state(p) if p.is_dir() else None
    info = {"state": state.status if state else "file", "state_line": state.describe() if state else "plain file",
            "differs": list(state.differs) if state else [], "manifest": state.manifest if state else None}
    if state is not None and state.status == "missing":
        raise UserError(f"{p} is not an rlt artifact (no manifest and no data files)")
    if state is not None and state.kind == "checkpoint":
        return {**info, "schema": [], "rows": state.rows, "head": []}
    table = read_table(p) if state is None or state.finished else _rows_so_far(p)
    if state is None:
        info["state_line"] = f"plain file, {table.num_rows} rows"
    return {**info, "rows": table.num_rows, "schema": [(f.name, str(f.type)) for f in table.schema],
            "head": table.slice(0, cfg.rows).to_pylist()}


def run(cfg: InspectConfig) -> dict:
    """Print the summary as rich tables."""
    from rich.markup import escape
    from rich.table import Table

    info = summary(cfg)
    con = console()
    color = {"complete": "green", "interrupted": "yellow", "conflicting": "red"}.get(info["state"], "bold")
    con.print(f"[bold]{escape(cfg.path)}[/]: [{color}]{escape(info['state_line'])}[/]")
    m = info["manifest"]
    if m:
        con.print(f"  {m.get('kind')} artifact, {m.get('rows')} rows, config {m.get('config_hash')}, "
                  f"schema version {m.get('schema_version', 1)}, rlt {m.get('rlt_version')}, created {m.get('created')}")
        for name, inp in (m.get("inputs") or {}).items():
            con.print(escape(f"  input {name}: {inp['path']} ({inp['hash']})"))
    if info["schema"]:
        con.print("schema: " + escape(", ".join(f"{n}:{t}" for n, t in info["schema"])))
    if info["head"]:
        t = Table(show_lines=True)
        names = [n for n, _ in info["schema"]]
        for n in names:
            t.add_column(n, overflow="fold", max_width=cfg.width)
        for r in info["head"]:
            t.add_row(*[escape(_cell(r.get(n), cfg.width)) for n in names])
        con.print(t)
    return info


def _cell(v, width: int) -> str:
    s = "" if v is None else str(v)
    return s if len(s) <= width else s[: width - 1] + "…"
