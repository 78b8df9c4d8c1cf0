"""ArtifactWriter: parts while a stage runs, compaction and the manifest when it finishes.

    with ArtifactWriter(out, "traces", cfg, inputs={"data": path}) as w:
        if w.complete: return                 # same config and inputs: nothing to do
        todo = [r for r in rows if w.key(r) not in w.done]
        w.write(batch_rows)                   # one part per call, temp name + rename
        w.finish()                            # compact, then .rlt/manifest.json last = complete

A directory with parts but no manifest is an interrupted run: rerunning the same
command resumes it (rows already written are skipped by key). A lock file stops
two processes writing one artifact; a lock left by a dead process is taken over.
The state of the output is decided by `lifecycle.output_state`, as everywhere.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Self

import pyarrow as pa
import pyarrow.parquet as pq

from stages import __version__, records
from stages.artifacts import layout
from stages.artifacts.checkpoints import checkpoint_dir, last_checkpoint
from stages.artifacts.compaction import compact, drop_superseded
from stages.artifacts.schemas import ROW_KEYS, to_table
from stages.artifacts.state import holder_running, is_me, process_identity, read_lock, require
from stages.config import config_hash, to_dict
from stages.errors import UserError

log = logging.getLogger(__name__)


def acquire_lock(out: Path) -> Path:
    """Create `out/.rlt/lock` atomically, recording this process's identity (`state.process_identity`);
    refuse if the process recorded in an existing lock still runs, take over the lock of one that is gone
    (`state.holder_running`: a reused process id is not its writer)."""
    lock = layout.meta_path(out, layout.LOCK)
    lock.parent.mkdir(parents=True, exist_ok=True)
    me = json.dumps({**process_identity(), "time": time.time()})
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held = read_lock(out)
            running = holder_running(held)
            if running and not is_me(held):
                raise UserError(f"{out} is being written by process {held['pid']}; wait for it or stop it")
            if running is None:
                raise UserError(f"{out} is locked by process {held.get('pid')} on host {held.get('host')}; "
                                f"remove {lock} if it is dead")
            log.warning("taking over stale lock %s (process %s is gone)", lock, held.get("pid"))
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(me)
        return lock
    raise UserError(f"could not lock {out}")


def check_output(out: str | Path) -> Path:
    """Refuse an output path that is a file, or a non-empty directory rlt did not write."""
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise UserError(f"output {p} exists and is a file, not a directory")
    if p.is_dir() and any(p.iterdir()) and not layout.is_artifact_dir(p):
        raise UserError(f"output {p} is a non-empty directory that is not an rlt artifact")
    return p


class ArtifactWriter:
    """Writes one artifact; a context manager holding the artifact's lock.

    `complete` is True when the directory already holds a finished artifact with
    the same kind, config hash and inputs (the stage has nothing to do).
    A finished or unfinished artifact of another kind, config or inputs is refused
    (UserError naming what differs) unless `force`.
    """

    def __init__(self, out: str | Path, kind: str, cfg: Any, inputs: dict[str, str] | None = None,
                 force: bool = False, key: tuple[str, ...] | None = None):
        self.out = check_output(out)
        self.kind, self.cfg, self.force = kind, cfg, force
        self.key_cols = key or ROW_KEYS.get(kind, ("id", "sample"))
        self.input_paths = {k: str(v) for k, v in (inputs or {}).items() if v}
        self.inputs = {k: layout.input_record(v) for k, v in self.input_paths.items()}
        self.hash = config_hash(cfg)
        self.done: set = set()
        self.complete = False
        self.rows_written = 0
        self._created = False
        self._lock: Path | None = None
        self._t0 = time.time()

    # -- lifecycle
    def __enter__(self) -> Self:
        self._created = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        self._lock = acquire_lock(self.out)
        try:
            self._prepare()
        except BaseException:
            self._release(failed=True)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._release(failed=exc_type is not None)

    def _release(self, failed: bool) -> None:
        if self._lock is not None:
            self._lock.unlink(missing_ok=True)
            self._lock = None
        # A run that failed before its first row or training step leaves no trace of itself: nothing
        # that `rlt inspect` would call interrupted and a rerun would have to resume.
        if failed and self._created and self.out.is_dir() and not self._produced():
            shutil.rmtree(self.out, ignore_errors=True)

    def _produced(self) -> bool:
        """Has this output anything worth resuming: a manifest, a data file or a complete training checkpoint?"""
        return layout.read_manifest(self.out) is not None or bool(layout.data_files(self.out)) or \
            last_checkpoint(checkpoint_dir(self.out))[0] is not None

    def _prepare(self) -> None:
        state = require(self.out, self.kind, self.cfg, self.input_paths, self.force)
        if state.complete:
            self.complete = True
            layout.meta_path(self.out, layout.PROGRESS).unlink(missing_ok=True)  # a kill after the manifest
            return
        if self.force:
            self.clear()
        self._write_progress()
        for part in self.out.glob(".part-*.tmp"):
            part.unlink()
        if self.kind != "checkpoint":
            drop_superseded(self.out)  # a compaction cut short by a kill
            self._load_done()

    def _write_progress(self) -> None:
        meta = {"kind": self.kind, "schema_version": layout.SCHEMA_VERSION, "config_hash": self.hash,
                "config": to_dict(self.cfg), "inputs": self.inputs}
        layout.atomic_write_text(layout.meta_path(self.out, layout.PROGRESS), records.dumps(meta, indent=2, default=str))
        legacy = self.out / layout.LEGACY[layout.PROGRESS]
        legacy.unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove everything in the output except the lock (used by --force)."""
        for child in self.out.iterdir():
            if child.name == layout.META_DIR:
                for c in child.iterdir():
                    if c.name != layout.LOCK:
                        shutil.rmtree(c) if c.is_dir() else c.unlink()
                continue
            shutil.rmtree(child) if child.is_dir() else child.unlink()

    def _load_done(self) -> None:
        for part in layout.data_files(self.out):
            try:
                t = pq.read_table(part, columns=list(self.key_cols))
            except (pa.ArrowException, OSError):
                log.warning("dropping unreadable part %s", part)
                part.unlink()
                continue
            self.done.update(zip(*[t.column(c).to_pylist() for c in self.key_cols]))

    # -- data
    def key(self, row: dict) -> tuple:
        return tuple(row[c] for c in self.key_cols)

    def write(self, rows: list[dict]) -> None:
        """Write rows as one new part (temp name, then rename); skips keys already done."""
        rows = [r for r in rows if self.key(r) not in self.done]
        if not rows:
            return
        n = layout.next_part_number(self.out)
        name = f"part-{n:06d}-{os.getpid()}-{int(time.time() * 1000) % 10**9:09d}.parquet"
        tmp = self.out / f".{name}.tmp"
        pq.write_table(to_table(rows, self.kind), tmp, compression="zstd")
        os.replace(tmp, self.out / name)
        self.done.update(self.key(r) for r in rows)
        self.rows_written += len(rows)

    def all_rows(self) -> list[dict]:
        """Every row written so far, in part order."""
        files = layout.data_files(self.out)
        if not files:
            return []
        return pa.concat_tables([pq.read_table(p) for p in files], promote_options="permissive").to_pylist()

    def finish(self, extra: dict | None = None, rows: int | None = None) -> dict:
        """Compact the parts, then write the manifest last; its presence marks the artifact complete."""
        files = compact(self.out) if self.kind != "checkpoint" else []
        if rows is None:
            rows = sum(pq.ParquetFile(p).metadata.num_rows for p in files)
        hashed = files or sorted(f for f in self.out.iterdir()
                                 if f.is_file() and f.suffix in (".safetensors", ".json")
                                 and not f.name.startswith("."))
        manifest = {
            "kind": self.kind, "schema_version": layout.SCHEMA_VERSION, "rows": rows,
            "config": to_dict(self.cfg), "config_hash": self.hash, "inputs": self.inputs,
            "data_files": [f.name for f in files], "data_hash": layout.sha_files(hashed),
            "rlt_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "timings": {"seconds": round(time.time() - self._t0, 3)},
        }
        if hasattr(self.cfg, "shard"):  # the shards of one run share a config but for the shard: `rlt data merge`
            manifest.update(shard=self.cfg.shard, unsharded_hash=config_hash(self.cfg, ignore=("shard",)))
        manifest.update(extra or {})
        layout.atomic_write_text(layout.manifest_path(self.out), records.dumps(manifest, indent=2, default=str))
        layout.meta_path(self.out, layout.PROGRESS).unlink(missing_ok=True)
        return manifest
