"""Artifacts: the Parquet directories every stage reads and writes, and their records.

An artifact is a directory any Parquet reader opens as data (`layout`); a stage
writes one with `ArtifactWriter` (`writer`, merged at the end by `compaction`),
asks its state with `output_state`/`require` (`state`: the one rule), validates
rows against one schema per kind (`schemas`) and reads one with `read_rows`
(`read`); training stages keep resumable `checkpoints`:

    rows = read_rows("runs/demo/data", "dataset")     # validated, UserError naming the bad column/row
    pd.read_parquet("runs/demo/data")                 # the same rows, from any Parquet reader

Modules here import only the core (`stages.errors`, `stages.config`) and each other.
"""

from stages.artifacts.layout import (  # noqa: F401  (the package's public face)
    LOCK,
    MANIFEST,
    METRICS,
    SAMPLES,
    SCHEMA_VERSION,
    SUMMARY,
    data_files,
    input_hash,
    manifest_path,
    meta_path,
    metrics_path,
    read_manifest,
    summary_path,
)
from stages.artifacts.read import parse_shard, parts_of, read_rows, read_table, select_shard  # noqa: F401
from stages.artifacts.schemas import KINDS, SCHEMAS, row_id, to_table, validate  # noqa: F401
from stages.artifacts.state import OutputState, output_state, require, require_finished  # noqa: F401
from stages.artifacts.writer import ArtifactWriter, acquire_lock  # noqa: F401
