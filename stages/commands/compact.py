"""`rlt data compact`: merge an artifact's parts into few files (stages.artifacts.compaction)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from stages import records
from stages.artifacts import layout
from stages.artifacts.compaction import MAX_FILE_MB, compact
from stages.config import check_config, opt
from stages.errors import UserError

log = logging.getLogger(__name__)


@dataclass
class CompactConfig:
    """Options of `rlt data compact`."""

    path: str = opt("", "Artifact directory to compact in place (either layout).", arg=True, required=True)
    max_file_mb: float = opt(MAX_FILE_MB, "Bound on a merged file's size, in MiB.", flag=True)


def _move_legacy_records(out: Path) -> None:
    """Schema version 1 records beside the data move into `.rlt/` (the manifest last)."""
    for name in (layout.SUMMARY, layout.METRICS, layout.SAMPLES, layout.PROGRESS):
        old = out / layout.LEGACY[name]
        if old.is_file():
            layout.meta_path(out, name).parent.mkdir(exist_ok=True)
            os.replace(old, layout.meta_path(out, name))


def run(cfg: CompactConfig) -> dict:
    """Compact a complete artifact in place and write its manifest in the current layout.

    The rows (and the manifest's `data_hash`, which downstream artifacts recorded) stay
    the same; `schema_version` becomes the current one. Raises UserError for a path
    that is not a complete rlt artifact, or one another process is writing.
    """
    from stages.artifacts.state import require_finished
    from stages.artifacts.writer import acquire_lock

    check_config(cfg)

    out = Path(cfg.path)
    if cfg.max_file_mb <= 0:
        raise UserError(f"--max-file-mb must be positive, got {cfg.max_file_mb}")
    state = require_finished(out)
    lock = acquire_lock(out)
    try:
        before = len(layout.all_data_files(out))
        manifest = dict(state.manifest)
        if manifest.get("kind") != "checkpoint":
            try:
                manifest["data_files"] = [f.name for f in compact(out, cfg.max_file_mb, remerge=True)]
            except (pa.ArrowException, OSError) as e:  # a damaged data file; the rows on disk stay as they were
                raise UserError(f"cannot compact {out}: {str(e).splitlines()[0][:200]}") from None
        _move_legacy_records(out)
        manifest.update(schema_version=layout.SCHEMA_VERSION, compacted=time.strftime("%Y-%m-%dT%H:%M:%S"))
        layout.atomic_write_text(layout.manifest_path(out), records.dumps(manifest, indent=2, default=str))
        (out / layout.LEGACY[layout.MANIFEST]).unlink(missing_ok=True)  # the old manifest goes last
    finally:
        lock.unlink(missing_ok=True)
    after = len(layout.data_files(out))
    log.info("%s: %d data files -> %d (%d rows)", out, before, after, manifest.get("rows", 0))
    return {"path": str(out), "files_before": before, "files_after": after, "rows": manifest.get("rows", 0)}


