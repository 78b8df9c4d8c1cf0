"""A damaged checkpoint stops a resume of distill or teach with one line naming it and the way out, exit 2.

The outputs are real training runs left unfinished (their manifest removed, as a kill before it leaves
them); each checkpoint is then damaged the way a full disk, a copy cut short or a hand edit would.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from stages.artifacts.checkpoints import check_resumable, checkpoint_damage
from stages.artifacts.layout import manifest_path
from stages.errors import UserError
from tests.conftest import rlt
from tests.faults.conftest import ONE_THREAD, manifest


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from stages.commands.data import SynthConfig, synth

    return synth(SynthConfig(out=str(tmp_path_factory.mktemp("damaged") / "data"), n=24, seed=0))


def distill_args(student, data, out) -> list:
    return ["distill", "--model", student, "--data", data, "--out", out, "--preset", "tiny", "--max-steps", 3,
            "--batch-size", 8, "--device", "cpu", "save_steps=1", "save_total_limit=3", "keep_checkpoints=true"]


@pytest.fixture(scope="module")
def unfinished(tiny_student, data, tmp_path_factory) -> Path:
    """A distill output with checkpoints 1, 2, 3 and no manifest: a rerun resumes from checkpoint-3."""
    out = tmp_path_factory.mktemp("unfinished") / "distill"
    rlt(*distill_args(tiny_student, data, out), check=True, env=ONE_THREAD)
    manifest_path(out).unlink()
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == \
        ["checkpoint-1", "checkpoint-2", "checkpoint-3"]
    return out


def _truncate(path: Path, keep: int = 1000) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def _garble_pickle(path: Path) -> None:
    """A whole zip archive whose pickle is not one (a hand edit, bytes flipped inside it)."""
    with zipfile.ZipFile(path) as z:
        items = [(info, z.read(info.filename)) for info in z.infolist()]
    with zipfile.ZipFile(path, "w") as z:
        for info, data in items:
            z.writestr(info, data[:20] + b"not a pickle" if info.filename.endswith("data.pkl") else data)


DAMAGE = {  # how -> (damage the checkpoint, words the reason says)
    "truncated safetensors": (lambda c: _truncate(c / "model.safetensors"), "model.safetensors is not a readable"),
    "truncated optimizer": (lambda c: _truncate(c / "optimizer.pt"), "optimizer.pt is not a readable torch file"),
    "garbled optimizer": (lambda c: _garble_pickle(c / "optimizer.pt"), "optimizer.pt does not unpickle"),
    "garbled rng state": (lambda c: _garble_pickle(c / "rng_state.pth"), "rng_state.pth does not unpickle"),
    "empty scheduler": (lambda c: (c / "scheduler.pt").write_bytes(b""), "scheduler.pt is not a readable"),
    "no optimizer": (lambda c: (c / "optimizer.pt").unlink(), "no optimizer state"),
    "no weights": (lambda c: (c / "model.safetensors").unlink(), "no model weights"),
}


@pytest.mark.parametrize("how", DAMAGE)
def test_each_kind_of_damage_is_named(how, unfinished, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(unfinished, out)
    ckpt = out / "checkpoints" / "checkpoint-3"
    assert checkpoint_damage(ckpt) is None  # an undamaged checkpoint passes
    damage, words = DAMAGE[how]
    damage(ckpt)
    assert words in checkpoint_damage(ckpt)
    with pytest.raises(UserError) as e:
        check_resumable(out)
    line = str(e.value)
    assert line.startswith(f"checkpoint {ckpt} is damaged: ") and words in line and "\n" not in line
    assert "remove that directory to resume from checkpoint-2, or rerun with --force to start over" in line
    check_resumable(out, force=True)  # --force starts over: nothing to refuse


def test_a_checkpoint_without_trainer_state_is_not_one(unfinished, tmp_path):
    """trainer_state.json is written last: without it (or cut short) the save did not finish; the one before
    is resumed, with no complaint."""
    out = tmp_path / "out"
    shutil.copytree(unfinished, out)
    (out / "checkpoints" / "checkpoint-3" / "trainer_state.json").write_text('{"global_st')
    _truncate(out / "checkpoints" / "checkpoint-3" / "model.safetensors")
    check_resumable(out)


def test_distill_refuses_then_resumes_once_removed(tiny_student, data, unfinished, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(unfinished, out)
    ckpt = out / "checkpoints" / "checkpoint-3"
    _truncate(ckpt / "model.safetensors")
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    proc = rlt(*distill_args(tiny_student, data, out), env=ONE_THREAD)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(f"rlt: error: checkpoint {ckpt} is damaged: model.safetensors")
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before  # nothing removed or written
    shutil.rmtree(ckpt)  # the way out the line names
    rlt(*distill_args(tiny_student, data, out), check=True, env=ONE_THREAD)
    m = manifest(out)
    assert m["global_step"] == 3 and m["resumed_from"] == "checkpoint-2"


def test_weights_that_do_not_fit_the_model_are_named_at_load(tiny_student, data, unfinished, tmp_path):
    """A whole, readable checkpoint of another shape fails only when Trainer loads it: the same one line."""
    import torch
    from safetensors.torch import load_file, save_file

    out = tmp_path / "out"
    shutil.copytree(unfinished, out)
    weights = out / "checkpoints" / "checkpoint-3" / "model.safetensors"
    save_file({k: torch.zeros(2) for k in load_file(weights)}, weights, metadata={"format": "pt"})
    proc = rlt(*distill_args(tiny_student, data, out), env=ONE_THREAD)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("rlt: error:")]
    assert len(errors) == 1 and "checkpoint-3 is damaged: it does not load (" in errors[0]
    assert "size mismatch" in errors[0] and "resume from checkpoint-2" in errors[0]
    rlt(*distill_args(tiny_student, data, out), "--force", check=True, env=ONE_THREAD)
    assert manifest(out)["resumed_from"] is None  # --force started over


def test_teach_refuses_a_damaged_checkpoint(tiny_teacher, tiny_student, data, tmp_path):
    out = tmp_path / "teach"
    args = ["teach", "--teacher", tiny_teacher, "--student", tiny_student, "--data", data, "--out", out,
            "--max-steps", 2, "--device", "cpu", "prompts_per_step=2", "num_generations=2", "max_new_tokens=8",
            "reward_batch_size=8", "save_steps=1", "keep_checkpoints=true"]
    rlt(*args, check=True, env=ONE_THREAD)
    manifest_path(out).unlink()
    ckpt = out / "checkpoints" / "checkpoint-2"  # the only one kept (save_total_limit=1)
    _garble_pickle(ckpt / "optimizer.pt")
    proc = rlt(*args, env=ONE_THREAD)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"rlt: error: checkpoint {ckpt} is damaged: optimizer.pt does not unpickle as " \
        "the tensors and numbers Trainer saves; remove that directory or rerun with --force to start over"
    shutil.rmtree(ckpt)  # no checkpoint left: the rerun starts over
    rlt(*args, check=True, env=ONE_THREAD)
    m = manifest(out)
    assert m["training"]["global_step"] == 2 and m["training"]["resumed_from"] is None
