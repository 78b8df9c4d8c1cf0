"""The frame of every stage that writes one artifact, written once (`run_stage`).

    def run(cfg: GenerateConfig) -> Path:
        validate(cfg)                           # options: UserError before anything loads
        return run_stage(cfg, "traces", write, load=lambda: loaded(cfg))

The order is the contract users see: a finished output is said at once ("already
complete", nothing loaded); a conflicting one is refused (UserError) before any model
loads; models load; then the writer takes the output's lock, and an output another
process finished meanwhile is again "already complete"; only then are rows written.
Training stages (teach, distill) write checkpoints through the ranks' writer
(stages/training/frame.py), the same order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from stages.artifacts.layout import PROGRESS, meta_path
from stages.artifacts.state import already_complete, require
from stages.artifacts.writer import ArtifactWriter
from stages.config import inputs_of


def run_stage(cfg: Any, kind: str, write: Callable[..., object],
              load: Callable[[], AbstractContextManager] | None = None, key: tuple[str, ...] | None = None) -> Path:
    """Write the `kind` artifact at `cfg.out` (a config with `out` and `force`): returns its path.

    `load()` (optional) gives a context manager of what the writing needs (models, an engine): entered
    only when there is work to do and closed however the stage ends; `write(w)` (or `write(w, loaded)`
    with `load`) writes rows and calls `w.finish`. `key` is the row key of kinds without a fixed one
    (`data merge`). Raises UserError from `require` (a conflicting or damaged output) before `load`.
    """
    inputs = inputs_of(cfg)
    if require(cfg.out, kind, cfg, inputs, cfg.force).complete:
        meta_path(cfg.out, PROGRESS).unlink(missing_ok=True)  # left by a kill just after the manifest
        return already_complete(cfg.out)
    with load() if load else contextlib.nullcontext() as loaded, \
            ArtifactWriter(cfg.out, kind, cfg, inputs=inputs, force=cfg.force, key=key) as w:
        if w.complete:
            return already_complete(w.out)
        if load:
            write(w, loaded)
        else:
            write(w)
    return w.out
