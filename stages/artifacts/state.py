"""The one answer to "what state is this output in?", and the one rank-0 writer.

Every stage calls `require(out, kind, cfg, inputs, force)` before it loads a model;
`ArtifactWriter`, `rlt run` and `rlt inspect` use `output_state` too:

    state = require(cfg.out, "traces", cfg, inputs, cfg.force)
    if state.complete:            # same kind, config and inputs: nothing to do
        return
    with RankZeroWriter(cfg.out, "traces", cfg, inputs, force=cfg.force) as w:
        ...                       # every rank computes; rank 0 alone writes
        w.finish()                # manifest, then a barrier: all ranks return together

States (`OutputState.status`): `missing`; `interrupted` (parts or checkpoints but no
manifest; `rows` so far); `complete`; `conflicting` (finished or not, from another
kind, config or inputs: `differs` names which). What a stage does with each (skip, run,
resume, refuse) is `decide`, the rule `require` applies and `rlt run --plan` predicts with.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from stages.artifacts import layout
from stages.artifacts.checkpoints import checkpoint_dir, last_checkpoint, resume_damage
from stages.config import _hashable, config_hash
from stages.errors import UserError
from stages.progress import with_article

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputState:
    """State of an output directory, as decided by `output_state`."""

    path: Path
    status: str  # missing | interrupted | complete | conflicting
    finished: bool = False  # a manifest is present (complete, or conflicting and finished)
    rows: int = 0  # rows in the manifest, or counted in the data files so far
    kind: str | None = None
    differs: tuple[str, ...] = ()  # what makes it conflicting, one phrase each
    step: int = 0  # an unfinished training run: step of its last complete intermediate checkpoint
    manifest: dict | None = field(default=None, repr=False)
    writer: int | None = None  # an unfinished artifact: PID of the live process writing it now, if any

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def so_far(self) -> str:
        """How far an interrupted run got: its last checkpoint's step (training) or its rows."""
        return f"at step {self.step}" if self.kind == "checkpoint" else f"with {self.rows} rows so far"

    def describe(self) -> str:
        """One line for logs and `rlt inspect`."""
        what = f"{self.kind} artifact" if self.kind else "artifact"
        if self.status == "missing":
            return "missing"
        if self.status == "interrupted" and self.writer is not None:
            return f"{what} being written by process {self.writer} ({self.so_far.removeprefix('with ')})"
        if self.status == "interrupted":
            return f"interrupted {what} {self.so_far} (rerun the same command to resume)"
        if self.status == "complete":
            return f"complete {what}, {self.rows} rows"
        done = "complete" if self.finished else f"interrupted ({self.rows} rows so far)"
        return f"{done} {what}, but {'; '.join(self.differs)}"


def pid_alive(pid: int) -> bool:
    """Is a process with id `pid` running on this machine (any process: ids are reused)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _start_time(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (field 22 of /proc/PID/stat, proc(5));
    None where there is no /proc (or no such process)."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # after the command name, which may hold spaces and ')'
    return int(fields[19]) if len(fields) > 19 else None


def process_identity(pid: int | None = None) -> dict:
    """What tells a process apart for sure (recorded in a lock): its id, host name, the kernel's
    boot id and its start time. An id alone is not enough: after a container restart or a
    requeue on the same node another process may have it; the pair (boot id, start time) is
    never reused."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "host": socket.gethostname(), "boot_id": _read("/proc/sys/kernel/random/boot_id"),
            "start": _start_time(pid)}


def holder_running(held: dict) -> bool | None:
    """Is the process recorded in `held` (a lock's `process_identity`) still running? None when this
    machine cannot tell (another host). A record without boot id or start time (an older rlt, a
    system without /proc) falls back on the process id alone."""
    pid, host = held.get("pid"), held.get("host")
    if not pid:
        return False
    if host and host != socket.gethostname():
        return None
    now = process_identity(int(pid))
    if held.get("boot_id") and now["boot_id"] and held["boot_id"] != now["boot_id"]:
        return False  # written before this machine last started: its writer is gone
    if not pid_alive(int(pid)):
        return False
    return held.get("start") is None or now["start"] is None or held["start"] == now["start"]


def read_lock(out: str | Path) -> dict:
    """The process identity recorded in `out`'s lock ({} when there is none or it is unreadable)."""
    try:
        held = json.loads(layout.meta_path(out, layout.LOCK).read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return {}
    return held if isinstance(held, dict) else {}


def is_me(held: dict) -> bool:
    """Was the lock record `held` written by this very process?"""
    me = process_identity()
    return held.get("pid") == me["pid"] and held.get("host") == me["host"] and held.get("start") == me["start"]


def lock_holder(out: str | Path) -> int | None:
    """PID of the live process on this machine holding `out`'s lock (checked by `holder_running`),
    None when none does."""
    held = read_lock(out)
    return int(held["pid"]) if holder_running(held) and not is_me(held) else None


def counted_rows(out: str | Path) -> int:
    """Rows in the data files that count (Parquet footers only)."""
    total = 0
    for f in layout.data_files(out):
        try:
            total += pq.ParquetFile(f).metadata.num_rows
        except (pa.ArrowException, OSError):  # a part cut by a kill: the writer drops it on resume
            log.debug("not counting unreadable %s", f)
    return total


def _config_differences(recorded: dict, cfg: Any) -> list[str]:
    """Dotted keys whose recorded value differs from `cfg` (hashed fields only)."""
    def flat(d, prefix=""):
        out = {}
        for k, v in (d or {}).items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    now, then = flat(_hashable(cfg)), flat(recorded)
    return sorted(k for k in now if k in then and str(now[k]) != str(then[k]))


def recorded_input_hash(record: dict, artifact: str | Path | None = None) -> str | None:
    """The current hash of an input a manifest recorded ({"path", "hash", "absolute"}), found from any working
    directory: at its absolute path, at the path as given, or (records without `absolute`) at that path under a
    folder above `artifact`. None when it was a local path and is gone (a hub id hashes its name: never gone)."""
    path = str(record.get("path") or "")
    found = [record.get("absolute"), path]
    if artifact is not None and path and not Path(path).is_absolute():
        found += [str(up / path) for up in Path(artifact).resolve().parents]
    for candidate in found:
        if candidate and Path(candidate).exists():
            return layout.input_hash(candidate)
    name = layout.input_hash(path)
    return name if record.get("absolute") is None and record.get("hash") == name else None


def differences(meta: dict, kind: str | None, cfg: Any, inputs: dict[str, str] | None,
                artifact: str | Path | None = None) -> list[str]:
    """Why `meta` (a manifest or progress record) is not the output of (kind, cfg, inputs).

    With `inputs` None, the recorded inputs are compared with their current hashes
    (`recorded_input_hash`, from any working directory; `artifact`: the folder `meta` belongs to), and one
    that is gone is said to be missing, not changed.
    """
    found = []
    if kind is not None and meta.get("kind") != kind:
        found.append(f"it is {with_article(meta.get('kind'))} artifact, not {with_article(kind)} artifact")
    if cfg is not None and meta.get("config_hash") != config_hash(cfg):
        keys = _config_differences(meta.get("config") or {}, cfg)
        found.append("config changed" + (f" ({', '.join(keys)})" if keys else ""))
    recorded = meta.get("inputs") or {}
    if inputs is None:
        now = {k: recorded_input_hash(v, artifact) for k, v in recorded.items()}
    else:
        now = {k: layout.input_hash(v) for k, v in inputs.items() if v}
    for name in sorted(set(recorded) | set(now)):
        then = (recorded.get(name) or {}).get("hash")
        if then != now.get(name):
            path = (recorded.get(name) or {}).get("path") or (inputs or {}).get(name)
            gone = inputs is None and name in recorded
            found.append(f"input {name} ({path}) " + ("changed" if then and now.get(name) else
                                                     "was not recorded" if not then else
                                                     "is missing" if gone else "is not given"))
    return found


def output_state(out: str | Path, kind: str | None = None, cfg: Any = None,
                 inputs: dict[str, str] | None = None) -> OutputState:
    """State of `out` for a stage writing (kind, cfg, inputs); None parts are not compared.

    Reads only the manifest, the progress record and Parquet footers: cheap, no model.
    Raises UserError when the manifest is damaged.
    """
    p = Path(out)
    manifest = layout.read_manifest(p)
    if manifest is not None:
        return _finished(p, manifest, differences(manifest, kind, cfg, inputs, p))
    progress = layout.read_progress(p)
    if progress is None and not layout.data_files(p):
        return OutputState(p, "missing")
    rows = counted_rows(p)
    found = differences(progress, kind, cfg, inputs, p) if progress else []
    step = last_checkpoint(checkpoint_dir(p))[1]
    return OutputState(p, "conflicting" if found else "interrupted", rows=rows, kind=(progress or {}).get("kind"),
                       differs=tuple(found), step=step, writer=lock_holder(p))


def _finished(p: Path, manifest: dict, differs: list[str] | tuple[str, ...] = ()) -> OutputState:
    """The state of an artifact with a manifest: complete, or conflicting when something `differs`."""
    return OutputState(p, "conflicting" if differs else "complete", finished=True,
                       rows=int(manifest.get("rows") or 0), kind=manifest.get("kind"), differs=tuple(differs),
                       manifest=manifest)


def already_complete(out: str | Path) -> Path:
    """Say (one log line, the same in every stage) that `out` is complete with this config and inputs; returns it.

    Stages return what this returns when `require(...).complete` or a writer's `complete` holds.
    """
    log.info("%s is already complete with this config and inputs (--force redoes it)", out)
    return Path(out)


@dataclass(frozen=True)
class Decision:
    """What a stage does with its output (`decide`): `action` is skip | run | resume | refuse, `reason` one
    line saying why (for a refusal, the error it raises)."""

    action: str
    reason: str
    state: OutputState


def decide(out: str | Path, kind: str | None, cfg: Any, inputs: dict[str, str] | None,
           force: bool = False) -> Decision:
    """What a stage writing (kind, cfg, inputs) to `out` does with what is there: the one rule `require` applies
    when the stage runs and `rlt run --plan` predicts with.

    skip: complete with this config and inputs. run: nothing there, --force (the output starts over), or an
    interrupted output with nothing to resume (no rows, no complete checkpoint). resume: an interrupted output
    of this config and inputs with rows or a checkpoint. refuse: an output of another kind, config or inputs
    without --force; an unfinished output another live process writes; a damaged newest checkpoint.
    """
    state = output_state(out, kind, cfg, inputs)
    if state.status == "missing":
        return Decision("run", "no output yet", state)
    if force:  # the writer clears whatever is there
        return Decision("run", "--force: its output starts over", state)
    if state.complete:
        return Decision("skip", "up to date", state)
    if state.status == "conflicting":
        return Decision("refuse", f"{out} holds {'a finished' if state.finished else 'an unfinished'} {state.kind} "
                        f"artifact from another config or inputs ({'; '.join(state.differs)}); use --force to "
                        "overwrite it or choose another --out", state)
    if state.writer is not None:
        return Decision("refuse", f"{out} is being written by process {state.writer}; wait for it or stop it", state)
    if state.step:
        if why := resume_damage(out):
            return Decision("refuse", why, state)
    elif not state.rows:
        first = "checkpoint" if (state.kind or kind) == "checkpoint" else "rows"
        return Decision("run", f"interrupted before its first {first}: nothing to resume, it starts over", state)
    return Decision("resume", f"resume interrupted run ({state.so_far})", state)


def require(out: str | Path, kind: str, cfg: Any, inputs: dict[str, str] | None, force: bool = False) -> OutputState:
    """`output_state`, refusing what `decide` refuses, but for a live writer (the lock refuses that when the
    writer is opened: the ranks of one launched run all pass here while rank 0 holds it); with `force` a
    finished or conflicting output counts as missing.

    Call it before loading any model. Raises UserError with `decide`'s reason (what differs, the damaged
    checkpoint).
    """
    decision = decide(out, kind, cfg, inputs, force)
    state = decision.state
    if force and state.status in ("complete", "conflicting"):
        return OutputState(Path(out), "missing")
    if decision.action == "refuse" and state.writer is None:
        raise UserError(decision.reason)
    return state


def require_finished(path: str | Path) -> OutputState:
    """The state of an artifact about to be read (or compacted): UserError unless it is finished.

    A finished artifact is read as it is: its recorded inputs are not re-hashed (they
    may be large, or gone, and do not change what was written).
    """
    p = Path(path)
    manifest = layout.read_manifest(p)
    if manifest is not None:
        return _finished(p, manifest)
    state = output_state(p)
    if state.status == "missing":
        raise UserError(f"{p} is not an rlt artifact (no {layout.manifest_path(p).relative_to(p)} and no data files)")
    if not state.finished:
        raise UserError(f"{p} is incomplete ({state.rows} rows, no manifest): rerun the command that writes it")
    return state


# ----------------------------------------------------------------------------- distributed


