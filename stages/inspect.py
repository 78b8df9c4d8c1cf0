"""`rlt inspect A`: manifest, schema, row count and the first rows of an artifact.

    rlt inspect runs/demo/generate --rows 5
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stages.artifacts import read_manifest, read_table
from stages.config import opt
from stages.errors import UserError


@dataclass
class InspectConfig:
    """Options of `rlt inspect`."""

    path: str = opt("", "Artifact directory or Parquet/JSONL file.", arg=True)
    rows: int = opt(5, "How many rows to show.", flag=True)
    width: int = opt(60, "Characters shown per cell.")


def summary(cfg: InspectConfig) -> dict:
    """Manifest, schema, row count and head rows as plain data."""
    p = Path(cfg.path)
    if not p.exists():
        raise UserError(f"input not found: {p}")
    manifest = read_manifest(p) if p.is_dir() else None
    if manifest and manifest.get("kind") == "checkpoint":
        return {"manifest": manifest, "schema": [], "rows": 0, "head": []}
    table = read_table(p)
    return {"manifest": manifest, "rows": table.num_rows,
            "schema": [(f.name, str(f.type)) for f in table.schema],
            "head": table.slice(0, cfg.rows).to_pylist()}


def run(cfg: InspectConfig) -> dict:
    """Print the summary as rich tables."""
    from rich.console import Console
    from rich.table import Table

    info = summary(cfg)
    con = Console()
    m = info["manifest"]
    if m:
        con.print(f"[bold]{cfg.path}[/]: {m.get('kind')} artifact, {m.get('rows')} rows, "
                  f"config {m.get('config_hash')}, rlt {m.get('rlt_version')}, created {m.get('created')}")
        for name, inp in (m.get("inputs") or {}).items():
            con.print(f"  input {name}: {inp['path']} ({inp['hash']})")
    else:
        con.print(f"[bold]{cfg.path}[/]: {info['rows']} rows (plain file, no manifest)")
    if info["schema"]:
        con.print("schema: " + ", ".join(f"{n}:{t}" for n, t in info["schema"]))
    if info["head"]:
        t = Table(show_lines=True)
        names = [n for n, _ in info["schema"]]
        for n in names:
            t.add_column(n, overflow="fold", max_width=cfg.width)
        for r in info["head"]:
            t.add_row(*[_cell(r.get(n), cfg.width) for n in names])
        con.print(t)
    return info


def _cell(v, width: int) -> str:
    s = "" if v is None else str(v)
    return s if len(s) <= width else s[: width - 1] + "…"
