"""Artifacts: directories of zstd Parquet parts plus a `manifest.json` written last.

Every stage reads its inputs with `read_rows` and writes with `ArtifactWriter`:

    with ArtifactWriter(out, "traces", cfg, inputs={"data": path}) as w:
        if w.complete: return                 # same config and inputs: nothing to do
        todo = [r for r in rows if w.key(r) not in w.done]
        w.write(batch_rows)                   # one part per call, temp name + rename
        w.finish()                            # manifest.json last = complete

A directory with parts but no manifest is an interrupted run: rerunning the same
command resumes it (rows already written are skipped by key). A lock file stops
two processes writing one artifact; a lock left by a dead process is taken over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

import pyarrow as pa
import pyarrow.parquet as pq

from stages import __version__
from stages.config import config_hash, to_dict
from stages.errors import UserError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
PROGRESS = ".rlt-progress.json"
LOCK = ".lock"
KINDS = ("dataset", "traces", "eval", "checkpoint", "metrics")

_S, _I, _F, _B = pa.string(), pa.int64(), pa.float64(), pa.bool_()
SCHEMAS: dict[str, pa.Schema] = {
    "dataset": pa.schema([
        ("id", _S), ("question", _S), ("solution", _S), ("reasoning_trace", _S),
        ("answer", _S), ("task", _S), ("source", _S),
    ]),
    "traces": pa.schema([
        ("id", _S), ("sample", _I), ("question", _S), ("solution", _S), ("explanation", _S),
        ("text", _S), ("answer", _S), ("task", _S), ("teacher", _S), ("student", _S),
        ("reward", _F), ("sol_logp_mean", _F), ("sol_logp_min", _F), ("kl_mean", _F),
        ("kl_max", _F), ("format_ok", _B), ("aligned", _B), ("truncated", _B),
        ("explanation_tokens", _I), ("solution_tokens", _I), ("student_tokens", _I),
        # provenance: the sampling settings of generated rows and the KL estimator used to score them
        ("temperature", _F), ("top_p", _F), ("kl_estimator", _S),
    ]),
    "eval": pa.schema([
        ("id", _S), ("sample", _I), ("question", _S), ("answer", _S), ("task", _S),
        ("model", _S), ("response", _S), ("extracted", _S), ("correct", _B),
        ("response_tokens", _I), ("truncated", _B),
    ]),
}
# Columns a reader insists on (non-null text) per kind.
REQUIRED = {
    "dataset": ("id", "question", "solution"),
    "traces": ("id", "sample", "question", "solution", "explanation", "text"),
    "eval": ("id", "sample", "question", "answer", "response", "extracted", "correct"),
}


def row_id(question: str, solution: str) -> str:
    """Stable row id: sha256 of question and solution (so resume and merge work by key)."""
    return hashlib.sha256(f"{question}\x00{solution}".encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- hashing


def _sha_files(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def input_hash(path: str | Path) -> str:
    """Hash identifying an input: an artifact's data hash, a file's bytes, or a hub id."""
    p = Path(path)
    if (p / MANIFEST).is_file():
        return json.loads((p / MANIFEST).read_text()).get("data_hash", "")
    if p.is_file():
        return _sha_files([p])
    if p.is_dir():  # a model directory we did not write: names, sizes and times are enough
        h = hashlib.sha256()
        for f in sorted(p.iterdir()):
            if f.is_file():
                st = f.stat()
                h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
        return h.hexdigest()[:16]
    return hashlib.sha256(str(path).encode()).hexdigest()[:16]


def read_manifest(path: str | Path) -> dict | None:
    """The manifest of a complete artifact, or None."""
    p = Path(path) / MANIFEST
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError:
        raise UserError(f"{p} is not valid JSON: the artifact is damaged") from None


# ----------------------------------------------------------------------------- reading


def _read_file(p: Path) -> pa.Table:
    suffix = p.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(p)
        if suffix in (".jsonl", ".json"):
            import pandas as pd

            df = pd.read_json(p, lines=suffix == ".jsonl", dtype=False)
            return pa.Table.from_pandas(df, preserve_index=False)
        if suffix == ".csv":
            import pyarrow.csv as pcsv

            # quoted cells may hold newlines (GPQA's CSV): without this, blocks split inside a cell
            return pcsv.read_csv(p, parse_options=pcsv.ParseOptions(newlines_in_values=True),
                                 convert_options=pcsv.ConvertOptions(strings_can_be_null=False))
    except (pa.ArrowException, ValueError, OSError) as e:
        raise UserError(f"cannot read {p}: {str(e).splitlines()[0][:200]}") from None
    raise UserError(f"unsupported file type {p} (use .parquet, .jsonl, .json or .csv)")


def parts_of(path: Path) -> list[Path]:
    return sorted(path.glob("part-*.parquet"))


def read_table(path: str | Path) -> pa.Table:
    """Read an artifact directory (must be complete) or a bare Parquet/JSONL/JSON/CSV file."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"input not found: {p}")
    if p.is_file():
        return _read_file(p)
    parts = parts_of(p)
    if read_manifest(p) is None:
        if parts:
            raise UserError(f"{p} is incomplete (parts but no manifest.json): rerun the command that writes it")
        raise UserError(f"{p} is not an rlt artifact (no manifest.json and no part-*.parquet)")
    if not parts:
        return pa.table({})
    try:
        return pa.concat_tables([pq.read_table(x) for x in parts], promote_options="permissive")
    except (pa.ArrowException, OSError) as e:
        raise UserError(f"cannot read {p}: {str(e).splitlines()[0][:200]}") from None


def validate(table: pa.Table, kind: str, source: str, required: Iterable[str] | None = None) -> None:
    """Check required columns exist, are text/ints as the schema says, and are non-null."""
    if table.num_rows == 0:
        raise UserError(f"{source} has no rows")
    cols = table.column_names
    need = list(required if required is not None else REQUIRED[kind])
    missing = [c for c in need if c not in cols]
    if missing:
        raise UserError(f"{source}: missing column(s) {', '.join(missing)} (has: {', '.join(cols)})")
    schema = SCHEMAS.get(kind)
    for c in cols:
        if schema is None or c not in schema.names:
            continue
        want, got = schema.field(c).type, table.schema.field(c).type
        if pa.types.is_null(got) and c not in need:
            continue
        ok = (pa.types.is_string(want) and (pa.types.is_string(got) or pa.types.is_large_string(got))) or \
             (pa.types.is_integer(want) and pa.types.is_integer(got)) or \
             (pa.types.is_floating(want) and (pa.types.is_floating(got) or pa.types.is_integer(got))) or \
             (pa.types.is_boolean(want) and pa.types.is_boolean(got))
        if not ok:
            raise UserError(f"{source}: column '{c}' must be {want}, got {got}")
    for c in need:
        col = table.column(c)
        if col.null_count:
            i = col.is_null().to_pylist().index(True)
            raise UserError(f"{source}: row {i} has no value in column '{c}'")


def read_rows(path: str | Path, kind: str, required: Iterable[str] | None = None) -> list[dict]:
    """Read and validate rows of `kind`; dataset rows without an `id` get the stable one."""
    table = read_table(path)
    if kind == "dataset" and "id" not in table.column_names and table.num_rows:
        for c in ("question", "solution"):
            if c not in table.column_names:
                raise UserError(f"{path}: missing column {c} (has: {', '.join(table.column_names)})")
        ids = [row_id(str(q), str(s)) for q, s in zip(table.column("question").to_pylist(),
                                                      table.column("solution").to_pylist())]
        table = table.append_column("id", pa.array(ids, pa.string()))
    validate(table, kind, str(path), required)
    return table.to_pylist()


def to_table(rows: list[dict], kind: str) -> pa.Table:
    """Rows -> table with the kind's explicit schema (absent columns null, extra kept)."""
    schema = SCHEMAS[kind]
    extra = [k for k in (rows[0] if rows else {}) if k not in schema.names]
    arrays = {n: pa.array([r.get(n) for r in rows], schema.field(n).type) for n in schema.names}
    for k in extra:
        arrays[k] = pa.array([r.get(k) for r in rows])
    return pa.table(arrays)


# ----------------------------------------------------------------------------- locking


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire_lock(out: Path) -> Path:
    """Create `out/.lock` atomically; refuse if a live process holds it, take over a stale one."""
    lock = out / LOCK
    me = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()})
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                held = json.loads(lock.read_text() or "{}")
            except (json.JSONDecodeError, OSError):
                held = {}
            pid, host = held.get("pid"), held.get("host")
            if pid and host == socket.gethostname() and _pid_alive(int(pid)) and int(pid) != os.getpid():
                raise UserError(f"{out} is being written by process {pid}; wait for it or stop it")
            if pid and host and host != socket.gethostname():
                raise UserError(f"{out} is locked by process {pid} on host {host}; remove {lock} if it is dead")
            log.warning("taking over stale lock %s (process %s is gone)", lock, pid)
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(me)
        return lock
    raise UserError(f"could not lock {out}")


# ----------------------------------------------------------------------------- writing


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def check_output(out: str | Path) -> Path:
    """Refuse an output path that is a file, or a non-empty directory rlt did not write."""
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise UserError(f"output {p} exists and is a file, not a directory")
    if p.is_dir() and any(p.iterdir()):
        ours = (p / MANIFEST).exists() or (p / PROGRESS).exists() or (p / LOCK).exists()
        if not ours:
            raise UserError(f"output {p} is a non-empty directory that is not an rlt artifact")
    return p


class ArtifactWriter:
    """Writes one artifact; a context manager holding the artifact's lock.

    `complete` is True when the directory already holds a finished artifact with
    the same kind, config hash and inputs (the stage has nothing to do).
    A finished artifact of another kind or config is refused unless `force`.
    """

    def __init__(self, out: str | Path, kind: str, cfg: Any, inputs: dict[str, str] | None = None,
                 force: bool = False, key: tuple[str, ...] = ("id", "sample")):
        self.out = check_output(out)
        self.kind, self.cfg, self.force, self.key_cols = kind, cfg, force, key
        self.inputs = {k: {"path": str(v), "hash": input_hash(v)} for k, v in (inputs or {}).items() if v}
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
        # A run that failed before producing anything leaves no trace of itself.
        if failed and self._created and self.out.is_dir() and \
                all(c.name == PROGRESS for c in self.out.iterdir()):
            shutil.rmtree(self.out, ignore_errors=True)

    def _prepare(self) -> None:
        manifest = read_manifest(self.out)
        progress = self._read_progress()
        same = self._same(manifest or progress or {})
        if manifest is not None and same and not self.force:
            self.complete = True
            return
        if (manifest is not None or progress is not None) and not same and not self.force:
            what = "a finished" if manifest else "an unfinished"
            theirs = (manifest or progress).get("kind")
            raise UserError(f"{self.out} holds {what} {theirs} artifact with another config or inputs; "
                            "use --force to overwrite it or choose another --out")
        if self.force or manifest is not None:
            self.clear()
        self._write_progress()
        for part in self.out.glob(".part-*.tmp"):
            part.unlink()
        if self.kind != "checkpoint":
            self._load_done()

    def _same(self, meta: dict) -> bool:
        return (meta.get("kind") == self.kind and meta.get("config_hash") == self.hash
                and {k: v["hash"] for k, v in meta.get("inputs", {}).items()}
                == {k: v["hash"] for k, v in self.inputs.items()})

    def _read_progress(self) -> dict | None:
        p = self.out / PROGRESS
        try:
            return json.loads(p.read_text()) if p.is_file() else None
        except json.JSONDecodeError:
            return None

    def _write_progress(self) -> None:
        meta = {"kind": self.kind, "config_hash": self.hash, "inputs": self.inputs}
        _atomic_write_text(self.out / PROGRESS, json.dumps(meta, indent=2))

    def clear(self) -> None:
        """Remove everything in the output except the lock (used by --force)."""
        for child in self.out.iterdir():
            if child.name == LOCK:
                continue
            shutil.rmtree(child) if child.is_dir() else child.unlink()

    def _load_done(self) -> None:
        for part in parts_of(self.out):
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
        n = len(parts_of(self.out))
        name = f"part-{n:05d}-{os.getpid()}-{int(time.time() * 1000) % 10**9:09d}.parquet"
        tmp = self.out / f".{name}.tmp"
        pq.write_table(to_table(rows, self.kind), tmp, compression="zstd")
        os.replace(tmp, self.out / name)
        self.done.update(self.key(r) for r in rows)
        self.rows_written += len(rows)

    def all_rows(self) -> list[dict]:
        parts = parts_of(self.out)
        if not parts:
            return []
        return pa.concat_tables([pq.read_table(p) for p in parts], promote_options="permissive").to_pylist()

    def finish(self, extra: dict | None = None, rows: int | None = None) -> dict:
        """Write manifest.json last; its presence marks the artifact complete."""
        parts = parts_of(self.out)
        if rows is None:
            rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
        data_files = parts or sorted(f for f in self.out.iterdir()
                                     if f.is_file() and f.suffix in (".safetensors", ".json")
                                     and not f.name.startswith(".") and f.name != MANIFEST)
        manifest = {
            "kind": self.kind, "schema_version": SCHEMA_VERSION, "rows": rows,
            "config": to_dict(self.cfg), "config_hash": self.hash, "inputs": self.inputs,
            "data_hash": _sha_files(data_files), "rlt_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "timings": {"seconds": round(time.time() - self._t0, 3)},
        }
        manifest.update(extra or {})
        _atomic_write_text(self.out / MANIFEST, json.dumps(manifest, indent=2, default=str))
        (self.out / PROGRESS).unlink(missing_ok=True)
        return manifest


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    """'i/n' (0 <= i < n) -> (i, n); None passes through."""
    if not spec:
        return None
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise UserError(f"--shard must look like i/n, got {spec!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise UserError(f"--shard {spec}: need 0 <= i < n")
    return i, n


def select_shard(rows: list[dict], spec: str | None) -> list[dict]:
    """Deterministic slice of rows by a hash of their id, so n machines split the work."""
    shard = parse_shard(spec)
    if shard is None:
        return rows
    i, n = shard
    return [r for r in rows if int(hashlib.sha256(str(r["id"]).encode()).hexdigest()[:8], 16) % n == i]
