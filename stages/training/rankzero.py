"""The rank-0 writer of distributed stages: rank 0 writes the artifact, every rank meets at barriers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from stages.artifacts import layout
from stages.artifacts.state import output_state
from stages.training.launch import rank, world_size

log = logging.getLogger(__name__)


def barrier() -> None:
    """Wait for every rank (a no-op in a single process)."""
    if world_size() > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()


class _Follower:
    """What ranks other than 0 hold: same interface as ArtifactWriter, writes nothing."""

    def __init__(self, out: str | Path, kind: str, cfg: Any, inputs: dict[str, str] | None, force: bool):
        self.out, self.kind, self.cfg, self.inputs, self.force = Path(out), kind, cfg, inputs, force
        self.done: set = set()
        self.complete = False
        self.rows_written = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def prepare(self) -> None:
        self.complete = output_state(self.out, self.kind, self.cfg, self.inputs).complete and not self.force

    def write(self, rows: list[dict]) -> None:
        return None

    def finish(self, extra: dict | None = None, rows: int | None = None) -> dict:
        return {}


class RankZeroWriter:
    """An ArtifactWriter on rank 0 and a follower elsewhere; barriers after prepare and finish.

    `finish` returns the manifest on every rank once rank 0 has written it.
    """

    def __init__(self, out: str | Path, kind: str, cfg: Any, inputs: dict[str, str] | None = None,
                 force: bool = False, key: tuple[str, ...] | None = None):
        from stages.artifacts.writer import ArtifactWriter

        self.main = rank() == 0
        self.inner = ArtifactWriter(out, kind, cfg, inputs, force, key) if self.main \
            else _Follower(out, kind, cfg, inputs, force)

    def __enter__(self):
        self.inner.__enter__()
        barrier()  # rank 0 has prepared (or cleared) the output
        if not self.main:
            self.inner.prepare()
        return self

    def __exit__(self, *exc):
        return self.inner.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def finish(self, extra: dict | None = None, rows: int | None = None) -> dict:
        manifest = self.inner.finish(extra, rows) if self.main else None
        barrier()  # nobody returns before the manifest is written
        return manifest if manifest is not None else (layout.read_manifest(self.inner.out) or {})


