"""Resuming training stages (`rlt distill`, `rlt teach`) from their intermediate checkpoints.

    check_resumable(out, force)                      # a damaged newest checkpoint: one line, exit 2
    resume, step = last_checkpoint(checkpoint_dir(out))
    truncate_jsonl(metrics_path(out), step)

A checkpoint artifact is a Hugging Face model directory (what `from_pretrained`
loads: config, safetensors, tokenizer, chat template, generation config) with
rlt's records in `.rlt/`; intermediate Trainer checkpoints sit under
`checkpoints/` until the manifest is written.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

from stages.config import at_least, opt
from stages.errors import UserError

CHECKPOINTS = "checkpoints"


def save_total_limit_opt():
    """The `save_total_limit` option of a training stage's config (distill, teach)."""
    return opt(1, "Resumable checkpoints kept under out/checkpoints while training (1 = the last: all a resume "
                  "needs).", hash=False, check=at_least(1))


def keep_checkpoints_opt():
    """The `keep_checkpoints` option of a training stage's config (distill, teach): see `drop_checkpoints`."""
    return opt(False, "Keep out/checkpoints (with optimizer state) after a successful run; by default only the "
                      "trained model stays.", hash=False)


def checkpoint_dir(out: str | Path) -> Path:
    """Where a training stage keeps its intermediate Trainer checkpoints."""
    return Path(out) / CHECKPOINTS


def _complete(ckdir: Path) -> list[tuple[int, Path]]:
    """(step, directory) of every complete checkpoint, oldest first: trainer_state.json is written last, so a
    save cut short (a kill, a full disk) lacks it, or holds JSON cut short, and is no checkpoint at all."""
    found = []
    for d in ckdir.glob("checkpoint-*") if ckdir.is_dir() else []:
        try:
            found.append((int(json.loads((d / "trainer_state.json").read_text())["global_step"]), d))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(found)


def last_checkpoint(ckdir: Path) -> tuple[str | None, int]:
    """Newest complete checkpoint and its step ((None, 0) without one); see `_complete`."""
    found = _complete(ckdir)
    return (str(found[-1][1]), found[-1][0]) if found else (None, 0)


# What Trainer loads on a resume with torch.load(weights_only=True); other torch files are only opened as zips.
RESUME_STATES = ("optimizer.pt", "scheduler.pt", "rng_state*.pth")


def _said(e: Exception, limit: int = 200) -> str:
    """An exception's message on one line, at most `limit` characters (its type's name when it has none)."""
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip()) or type(e).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _safetensors_damage(path: Path) -> str | None:
    from safetensors import safe_open

    try:  # parses the header and checks that its tensors cover the file exactly; reads no tensor data
        with safe_open(str(path), framework="pt"):
            return None
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        return f"is not a readable safetensors file ({_said(e)})"


def _torch_damage(path: Path, load: bool) -> str | None:
    try:  # a cut-short file has no central directory; a damaged one a bad local header
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                z.open(info).close()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        return f"is not a readable torch file ({_said(e)})"
    if not load:
        return None
    import pickle

    import torch
    from transformers.trainer_pt_utils import safe_globals  # the numpy types Trainer's RNG states hold

    try:  # as Trainer loads it, with mmap: the pickle is read and checked, the tensors' bytes are not
        with safe_globals():
            torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:  # torch's text advises weights_only=False: wrong for a damaged file
        return "does not unpickle as the tensors and numbers Trainer saves"
    except Exception as e:  # noqa: BLE001 - unpickling raises many error types
        return f"does not load ({type(e).__name__}: {_said(e)})"
    return None


def checkpoint_damage(ckpt: Path) -> str | None:
    """Why a complete checkpoint (one with trainer_state.json) cannot be resumed, in a few words, or None.

    Checks, without reading tensor data: some model weights (a model's or adapter's safetensors or the model
    states of DeepSpeed) and some optimizer state (optimizer.pt or DeepSpeed's optim states) are there;
    every shard an index names exists; every safetensors file parses and is as long as its header says;
    every torch file is a whole zip archive, and those a resume unpickles (`RESUME_STATES`) unpickle.
    """
    files = [p for p in ckpt.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    if not any(n.endswith((".safetensors", "model_states.pt")) or n == "pytorch_model.bin"
               for n in names):
        return "it holds no model weights (model.safetensors is missing)"
    if "optimizer.pt" not in names and not any(n.endswith("optim_states.pt") for n in names):
        return "it holds no optimizer state (optimizer.pt is missing)"
    for index in ckpt.glob("*.safetensors.index.json"):
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (ValueError, KeyError, AttributeError) as e:
            return f"{index.name} is not a readable index ({e})"
        missing = sorted(s for s in shards if not (ckpt / s).is_file())
        if missing:
            return f"{missing[0]}, named by {index.name}, is missing"
    for p in sorted(files):
        if p.suffix == ".safetensors":
            why = _safetensors_damage(p)
        elif p.suffix in (".pt", ".pth", ".bin"):
            why = _torch_damage(p, load=p.parent == ckpt and any(p.match(g) for g in RESUME_STATES))
        else:
            continue
        if why:
            return f"{p.relative_to(ckpt)} {why}"
    return None


def damaged_line(ckpt: Path, why: str) -> str:
    """The one line that refuses to resume from a damaged checkpoint: which one, why, and the two ways out."""
    earlier = [d for _, d in _complete(ckpt.parent) if d != ckpt]
    out = f"remove that directory to resume from {earlier[-1].name}, or rerun with --force to start over" \
        if earlier else "remove that directory or rerun with --force to start over"
    return f"checkpoint {ckpt} is damaged: {why}; {out}"


def check_resumable(out: str | Path, force: bool = False) -> None:
    """Refuse (UserError) to resume a training output whose newest complete checkpoint is damaged
    (`checkpoint_damage`), before any model is loaded. Nothing to check with --force (the output starts
    over) or once the output is finished (its manifest written: nothing resumes)."""
    from stages.artifacts.layout import manifest_path

    if force or manifest_path(Path(out)).is_file():
        return
    if why := resume_damage(out):
        raise UserError(why)


def resume_damage(out: str | Path) -> str | None:
    """The line refusing to resume `out` when its newest complete checkpoint is damaged (`checkpoint_damage`),
    None when it has none or it is whole."""
    newest, _ = last_checkpoint(checkpoint_dir(out))
    why = checkpoint_damage(Path(newest)) if newest else None
    return damaged_line(Path(newest), why) if why else None


def guard_loading(trainer, resume: str | None) -> None:
    """Make what Trainer raises while loading `resume` (weights or optimizer state that do not fit this model,
    damage `checkpoint_damage` cannot see) a UserError naming the checkpoint, not a traceback."""
    if not resume:
        return

    def guarded(load):
        def call(*args, **kwargs):
            try:
                return load(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - anything that stops the load means this checkpoint
                raise UserError(damaged_line(Path(resume), f"it does not load ({_said(e)})")) from None
        return call

    for name in ("_load_from_checkpoint", "_load_optimizer_and_scheduler", "_load_rng_state"):
        if hasattr(trainer, name):
            setattr(trainer, name, guarded(getattr(trainer, name)))


def drop_checkpoints(out: str | Path) -> None:
    """Remove a finished training artifact's intermediate checkpoints (model and optimizer state for resuming):
    what stays is the trained model. Call it only after the manifest is written."""
    shutil.rmtree(checkpoint_dir(out), ignore_errors=True)


def truncate_jsonl(path: Path, last_step: int) -> None:
    """Keep rows up to `last_step` (a resumed run rewrites the steps after its checkpoint)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill
            continue
        if row.get("step", 0) <= last_step:
            keep.append(line + "\n")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(keep))
    os.replace(tmp, path)
