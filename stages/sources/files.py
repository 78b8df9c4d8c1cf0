"""The rows of a source `rlt data import` reads: a local Parquet/JSONL/JSON/CSV file, a `datasets.save_to_disk`
folder, a folder of Parquet (or JSONL) files, or a hub dataset (where a network exists).

In a folder, names starting with `.` or `_` are skipped at every depth (macOS `._x` files,
`.ipynb_checkpoints/`, Spark's `_SUCCESS`), as pyarrow, pandas and `datasets` skip them; one line
names the files read and those left out.

    rows = load_source("data/raw/bespoke.parquet", split="train")   # -> list of row dicts
"""

from __future__ import annotations

import logging
from pathlib import Path

from stages.artifacts.layout import read_manifest
from stages.artifacts.read import read_table
from stages.errors import UserError
from stages.models.loading import check_hub_dataset, hub_id, not_found
from stages.progress import plural

log = logging.getLogger(__name__)


def load_source(src: str, split: str) -> list[dict]:
    """Rows of a local file, save_to_disk folder, Parquet folder, or hub dataset."""
    p = Path(src)
    if p.is_file() or (p.is_dir() and read_manifest(p) is not None):
        return read_table(p).to_pylist()
    if p.is_dir():
        if (p / "dataset_dict.json").is_file() or (p / "state.json").is_file():
            return _load_from_disk(p, split)
        return [r for f in folder_files(p) for r in read_table(f).to_pylist()]
    if hub_id(src):  # not a mistyped local path (`src/nope.jsonl`): that is refused at once, below
        return _load_hub(src, split)
    raise not_found(src, "input")


def hidden(path: Path, base: Path) -> bool:
    """A file Parquet readers skip: a name under `base` (itself or a folder above it) starting with `.` or
    `_` (pyarrow.dataset's ignore_prefixes, which pandas and `datasets` use too)."""
    return any(part.startswith((".", "_")) for part in path.relative_to(base).parts)


def _data_files(folder: Path, pattern: str) -> list[Path]:
    """The files matching `pattern` at any depth under `folder` that are not hidden, sorted by path."""
    return sorted(f for f in folder.rglob(pattern) if f.is_file() and not hidden(f, folder))


def _names(files: list[Path], folder: Path, most: int = 10) -> str:
    """`a.parquet, sub/b.parquet` (paths under `folder`), the first `most` and how many more."""
    names = [str(f.relative_to(folder)) for f in files]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def folder_files(folder: Path) -> list[Path]:
    """The data files a folder import reads - its .parquet files at any depth, else its .jsonl files, hidden
    names left out (`hidden`) - said in one line with their names and the names of those left out.
    UserError when there is none."""
    parquet, jsonl = _data_files(folder, "*.parquet"), _data_files(folder, "*.jsonl")
    files = parquet or jsonl
    if not files:
        raise UserError(f"{folder} holds no dataset (no save_to_disk files, no .parquet or .jsonl; names "
                        "starting with . or _ are skipped)")
    left = [f"{_names(jsonl, folder)} (the folder has .parquet files: those are read)"] if parquet and jsonl else []
    hid = sorted(f for pattern in ("*.parquet", "*.jsonl") for f in folder.rglob(pattern)
                 if f.is_file() and hidden(f, folder))
    left += [f"{_names(hid, folder)} (names starting with . or _)"] if hid else []
    log.info("%s: reading %s: %s%s", folder, plural(len(files), "file"), _names(files, folder),
             f"; left out: {'; '.join(left)}" if left else "")
    return files


def _load_from_disk(p: Path, split: str) -> list[dict]:
    import datasets

    ds = datasets.load_from_disk(str(p))
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise UserError(f"{p} has no split {split!r} (has: {', '.join(ds)})")
        ds = ds[split]
    return ds.to_list()


def _load_hub(src: str, split: str) -> list[dict]:
    import datasets

    check_hub_dataset(src)  # offline or unreachable: one line at once, not the hub client's retries
    try:
        return datasets.load_dataset(src, split=split).to_list()
    except Exception as e:  # noqa: BLE001 - offline or unknown id: one line, not a traceback
        raise UserError(f"cannot load {src!r} from the hub: {str(e).splitlines()[0][:200]}") from None

