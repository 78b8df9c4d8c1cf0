"""`rlt inspect A`: an artifact's state first, then manifest, what it holds, schema and first rows.

    rlt inspect runs/demo/generate --rows 5
    rlt inspect runs/                # every artifact under a folder, with its state
    rlt inspect runs/demo/eval --where correct=false --where model=student   # the wrong answers
    rlt inspect runs/demo/eval --row q17                                     # every row of one id, whole

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
from stages.config import at_least, check_config, opt
from stages.errors import UserError, did_you_mean

FOLDER_DEPTH = 3  # how deep `rlt inspect FOLDER` looks for artifacts (runs/<pipeline>/<step>)


@dataclass
class InspectConfig:
    """Options of `rlt inspect`."""

    path: str = opt("", "Artifact directory, Parquet/JSONL file, or a folder holding artifacts (runs/).", arg=True,
                    required=True)
    rows: int = opt(5, "How many rows to show.", flag=True, check=at_least(0))
    width: int = opt(60, "Characters shown per cell.", check=at_least(8))
    row: str = opt("", "Show the rows of this id whole: every column, nothing cut (an eval or traces artifact "
                       "has one per model and sample).", flag=True)
    where: list[str] = opt(list, "Show only rows whose COLUMN is VALUE (COLUMN=VALUE, e.g. correct=false; true, "
                                 "false, numbers and null read as the column's type); repeat it: rows that match "
                                 "all.", flag=True)


NULLS = ("null", "none", "")
TRUTH = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}


def _condition(text: str) -> tuple[str, str]:
    column, sep, value = text.partition("=")
    if not sep or not column.strip():
        raise UserError(f"--where expects COLUMN=VALUE, got {text!r}")
    return column.strip(), value.strip()


def _matches(cell, value: str) -> bool:
    """Is a cell VALUE as written on the command line (read as the cell's type)?"""
    if cell is None:
        return value.lower() in NULLS
    if isinstance(cell, bool):
        return TRUTH.get(value.lower()) is cell
    if isinstance(cell, (int, float)):
        try:
            return float(value) == cell
        except ValueError:
            return False
    return str(cell) == value


def _column(table: pa.Table, name: str, p: Path, why: str) -> list:
    """The values of column `name`; UserError naming the nearest column when there is none."""
    if name not in table.column_names:
        names = table.column_names
        raise UserError(f"{why}: no column {name!r} in {p} ({did_you_mean(name, names)}has: {', '.join(names)})")
    return table.column(name).to_pylist()


def select(table: pa.Table, cfg: InspectConfig, p: Path) -> pa.Table:
    """The rows of `--row ID` (its `id` column) that match every `--where COLUMN=VALUE` (a model by its path or
    the name eval's tables give it).

    Raises UserError for a column the table lacks (naming the nearest) and for an id no row has."""
    keep = [True] * table.num_rows
    for column, value in map(_condition, cfg.where):
        cells = _column(table, column, p, "--where")
        if column == "model":  # a model is also named as eval's tables name it (its directory's name)
            from stages.progress import display_names

            shown = display_names(sorted({str(c) for c in cells if c is not None}))
            cells = [shown.get(c) if c is not None and value == shown.get(c) else c for c in cells]
        keep = [k and _matches(c, value) for k, c in zip(keep, cells)]
    if cfg.row:
        ids = [str(i) for i in _column(table, "id", p, "--row")]
        if cfg.row not in ids:
            near = did_you_mean(cfg.row, sorted(set(ids))).strip()
            raise UserError(f"no row with id {cfg.row!r} in {p}" + (f" ({near})" if near else ""))
        keep = [k and i == cfg.row for k, i in zip(keep, ids)]
    return table.filter(pa.array(keep, pa.bool_()))


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
    (steps, final_loss, final_reward). With `--row`/`--where`, `head` holds the rows selected
    (every one of `--row`) and `matched` how many there are. Raises UserError for a missing
    path, a folder holding no artifact, and what `select` refuses.
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
        if cfg.row or cfg.where:
            raise UserError(f"{p} is a checkpoint artifact: it has no rows for --row or --where")
        return {**info, "schema": [], "rows": state.rows, "head": [],
                "training": _training(p, state.manifest, state.step)}
    table = read_table(p) if state is None or state.finished else _rows_so_far(p)
    shown = table
    if cfg.row or cfg.where:
        shown = select(table, cfg, p)
        info["matched"] = shown.num_rows
    if state is None:
        info["state_line"] = f"plain file, {table.num_rows} row{'s' * (table.num_rows != 1)}"
    if state is not None and state.kind == "eval" and (f := find_meta(p, SUMMARY)) is not None:
        info["summary"] = json.loads(f.read_text())
    return {**info, "rows": table.num_rows, "schema": [(f.name, str(f.type)) for f in table.schema],
            "head": (shown if cfg.row else shown.slice(0, cfg.rows)).to_pylist()}


def run(cfg: InspectConfig) -> dict:
    """The summary of `cfg.path` (see `summary`); `rlt inspect` displays it (rltcli/show.py)."""
    check_config(cfg)
    return summary(cfg)
