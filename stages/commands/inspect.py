"""`rlt inspect A`: an artifact's state first, then manifest, what it holds, schema and first rows.

    rlt inspect runs/demo/generate --rows 5
    rlt inspect runs/                # every artifact under a folder, with its state

The state is `state.output_state`: complete; interrupted with the rows so far (or
being written, when the process holding its lock is alive); or complete but its
recorded inputs differ from those inputs as they are now (naming which). An
eval artifact also shows its accuracy per model, a checkpoint its steps and last
loss. This module gathers the facts; `rltcli/show.py` displays them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from stages.artifacts.layout import META_DIR, METRICS, SUMMARY, data_files, find_meta, is_artifact_dir
from stages.artifacts.read import read_table
from stages.artifacts.state import output_state
from stages.config import at_least, opt
from stages.errors import UserError

FOLDER_DEPTH = 3  # how deep `rlt inspect FOLDER` looks for artifacts (runs/<pipeline>/<step>)


@dataclass
class InspectConfig:
    """Options of `rlt inspect`."""

    path: str = opt("", "Artifact directory, Parquet/JSONL file, or a folder holding artifacts (runs/).", arg=True,
                    required=True)
    rows: int = opt(5, "How many rows to show.", flag=True, check=at_least(0))
    width: int = opt(60, "Characters shown per cell.", check=at_least(8))


def _rows_so_far(p: Path) -> pa.Table:
    """Rows of an unfinished artifact (parts a kill cut short are left out)."""
    tables = []
    for f in data_files(p):
        try:
            tables.append(pq.read_table(f))
        except (pa.ArrowException, OSError):
            continue
    return pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})


def _artifacts_under(p: Path, depth: int = FOLDER_DEPTH) -> list[Path]:
    """Artifact directories under folder `p` (not inside an artifact, not in `.rlt/`), sorted by path."""
    found = []
    for child in sorted(c for c in p.iterdir() if c.is_dir() and c.name != META_DIR):
        if is_artifact_dir(child):  # rlt's records (bare Parquet parts are someone's folder)
            found.append(child)
        elif depth > 1:
            found += _artifacts_under(child, depth - 1)
    return found


def _training(p: Path, manifest: dict | None, step: int) -> dict:
    """Steps and last logged loss (and reward, for teach) of a checkpoint artifact, finished or not."""
    f = find_meta(p, METRICS)
    rows = [json.loads(line) for line in f.read_text().splitlines() if line.strip()] if f else []
    last = {k: next((r[k] for r in reversed(rows) if isinstance(r.get(k), (int, float))), None)
            for k in ("loss", "reward")}
    m = manifest or {}
    steps = m.get("global_step") or (m.get("training") or {}).get("global_step") or step or \
        max((r.get("step", 0) for r in rows), default=0)
    return {"steps": steps, "final_loss": last["loss"], "final_reward": last["reward"]}


def summary(cfg: InspectConfig) -> dict:
    """State, manifest, schema, row count and head rows as plain data.

    `state` is one of file (a plain file), folder (a folder of artifacts: `artifacts` lists
    them), interrupted, running (being written now), complete, conflicting; `state_line`
    says it in words. Eval artifacts add `summary` (summary.json), checkpoints `training`
    (steps, final_loss, final_reward). Raises UserError for a missing path or a folder
    holding no artifact.
    """
    p = Path(cfg.path)
    if not p.exists():
        raise UserError(f"input not found: {p}")
    state = output_state(p) if p.is_dir() else None
    if state is not None and state.status == "missing":  # no records, no data files: a folder of artifacts?
        inside = _artifacts_under(p)
        if not inside:
            raise UserError(f"{p} is not an rlt artifact (no manifest and no data files) and holds none")
        states = [output_state(a) for a in inside]
        return {"state": "folder", "state_line": f"folder of {len(inside)} artifact{'s' * (len(inside) != 1)}",
                "artifacts": [{"path": str(a), "state": s.status if s.writer is None else "running",
                               "kind": s.kind, "rows": s.rows, "state_line": s.describe()}
                              for a, s in zip(inside, states)]}
    status = "file" if state is None else "running" if state.writer is not None else state.status
    info = {"state": status, "state_line": state.describe() if state else "plain file",
            "differs": list(state.differs) if state else [], "manifest": state.manifest if state else None}
    if state is not None and state.kind == "checkpoint":
        return {**info, "schema": [], "rows": state.rows, "head": [],
                "training": _training(p, state.manifest, state.step)}
    table = read_table(p) if state is None or state.finished else _rows_so_far(p)
    if state is None:
        info["state_line"] = f"plain file, {table.num_rows} row{'s' * (table.num_rows != 1)}"
    if state is not None and state.kind == "eval" and (f := find_meta(p, SUMMARY)) is not None:
        info["summary"] = json.loads(f.read_text())
    return {**info, "rows": table.num_rows, "schema": [(f.name, str(f.type)) for f in table.schema],
            "head": table.slice(0, cfg.rows).to_pylist()}


def run(cfg: InspectConfig) -> dict:
    """The summary of `cfg.path` (see `summary`); `rlt inspect` displays it (rltcli/show.py)."""
    return summary(cfg)
