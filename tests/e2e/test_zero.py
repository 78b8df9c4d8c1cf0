"""DeepSpeed ZeRO-2/3 and two "machines" on CPU processes (gloo), checked against `--launch ddp`.

Without a GPU `--launch zero2|zero3` runs the CPU presets, where ZeRO-3 partitions every
parameter (stage3_param_persistence_threshold 0), so the tiny models gather and release
weights in every forward as a large model does on GPUs. Each run here must train exactly
as data parallel does: the same global batch, the same gradients, the same weights.
A deadlock fails the test by its timeout instead of hanging the suite.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stages.artifacts.layout import manifest_path
from tests.conftest import ONE_THREAD, free_port, rlt

pytestmark = [pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the CPU presets (no GPU visible)"),
              pytest.mark.skipif(__import__("importlib").util.find_spec("deepspeed") is None,
                                 reason="DeepSpeed is not installed (pip install 'rlt[deepspeed]')")]
TIMEOUT = 300  # seconds: a run that deadlocks fails here
DISTILL = ("--max-steps", 3, "--batch-size", 2, "--device", "cpu", "global_batch=8", "lr=0.01", "logging_steps=1",
           "save_steps=2")
# Adam divides by the root of each weight's squared gradients: where those are near zero, as many of a
# tiny policy's are after two GRPO steps, it turns float-rounding differences into visible weight
# differences. With epsilon 1 the update is about lr x gradient, so the comparison measures the gradients.
TEACH = ("--max-steps", 2, "--device", "cpu", "prompts_per_step=2", "num_generations=4", "max_new_tokens=16",
         "samples_per_log=0", "save_steps=5", "lr=1", "trl.adam_epsilon=1")


def weights(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out / "model.safetensors"))


TIED = {"lm_head.weight": "model.embed_tokens.weight"}  # the tiny models tie the output layer to the embedding


def _untied(w: dict) -> dict:
    """A saved state dict without copies of tied tensors (a ZeRO-2 save writes the tied head out too)."""
    for copy, source in TIED.items():
        if copy in w and source in w:
            assert (w[copy] == w[source]).all(), f"{copy} differs from the {source} it is tied to"
            del w[copy]
    return w


def max_diff(a: Path, b: Path) -> float:
    """Largest absolute difference between two saved models' tensors (the same tensors required)."""
    wa, wb = _untied(weights(a)), _untied(weights(b))
    assert wa.keys() == wb.keys()
    return max((wa[k] - wb[k]).abs().max().item() for k in wa)


def _run(*args) -> str:
    """Run rlt to success; its stdout."""
    proc = rlt(*args, env=ONE_THREAD, timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _distill(model, data, out, *extra) -> Path:
    stdout = _run("distill", "--model", model, "--data", data, "--out", out, *DISTILL, *extra, "--json")
    assert json.loads(stdout)["path"] == str(out)  # the ranks' and DeepSpeed's prints went to stderr
    return out


@pytest.fixture(scope="module")
def ddp_run(tiny_teacher, synth_train, tmp_path_factory) -> Path:
    """The reference: the same distillation as two data-parallel CPU processes."""
    return _distill(tiny_teacher, synth_train, tmp_path_factory.mktemp("ddp") / "out", "--launch", "ddp", "--nproc", 2)


@pytest.mark.parametrize("preset", ["zero2", "zero3"])
def test_distill_under_zero_trains_as_ddp(preset, ddp_run, tiny_teacher, synth_train, tmp_path):
    out = _distill(tiny_teacher, synth_train, tmp_path / preset, "--launch", preset, "--nproc", 2)
    manifest = json.loads(manifest_path(out).read_text())
    assert (manifest["processes"], manifest["global_step"], manifest["rows_per_step"]) == (2, 3, 8)
    assert max_diff(out, tiny_teacher) > 1e-3  # it trained
    assert max_diff(out, ddp_run) < 1e-5  # and trained as data parallel does


@pytest.mark.slow
def test_lora_merged_save_under_zero3_is_lora_under_ddp(tiny_teacher, synth_train, tmp_path):
    # The merge reloads the base on rank 0 alone: under ZeRO-3 that load must not enter a collective
    runs = {p: _distill(tiny_teacher, synth_train, tmp_path / p, "--launch", p, "--nproc", 2, "lora.r=8")
            for p in ("ddp", "zero3")}
    assert max_diff(runs["zero3"], tiny_teacher) > 1e-2
    assert max_diff(runs["zero3"], runs["ddp"]) < 1e-5
    assert not (runs["zero3"] / "adapter_config.json").exists()  # a merged model, not an adapter


@pytest.mark.slow
def test_teach_under_zero3_with_uneven_reward_work_equals_ddp(tiny_teacher, tiny_student, synth_train, tmp_path):
    # One token per head call (reward.chunk_tokens=1): ranks score explanations of different lengths, so
    # a reward that ran the partitioned policy's head per chunk would make different numbers of gathers.
    runs = {}
    for preset in ("ddp", "zero3"):
        runs[preset] = tmp_path / preset
        _run("teach", "--teacher", tiny_teacher, "--student", tiny_student, "--data", synth_train, "--out",
             runs[preset], *TEACH, "--launch", preset, "--nproc", 2, "reward.chunk_tokens=1")
    training = json.loads(manifest_path(runs["zero3"]).read_text())["training"]
    assert (training["processes"], training["global_step"]) == (2, 2)
    assert max_diff(runs["zero3"], tiny_teacher) > 1e-2
    assert max_diff(runs["zero3"], runs["ddp"]) < 1e-5


@pytest.mark.parametrize("preset", ["ddp", "zero3"])
def test_two_machines_write_the_artifact_of_one(preset, ddp_run, tiny_teacher, synth_train, tmp_path):
    """Two `rlt distill` commands, one per "machine" (machine_rank 0 and 1, one process each), meeting at
    127.0.0.1 as a user runs them on two hosts: one artifact, equal to the one-machine run's."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    out, port = tmp_path / "out", free_port()
    procs = []
    for machine in (0, 1):
        machine_args = json.dumps(["--num_machines", "2", "--machine_rank", str(machine),
                                   "--main_process_ip", "127.0.0.1", "--main_process_port", str(port)])
        argv = ["distill", "--model", tiny_teacher, "--data", synth_train, "--out", out, *DISTILL,
                "--launch", preset, "--nproc", 2, f"launch_args={machine_args}"]
        procs.append(subprocess.Popen([sys.executable, "-m", "rltcli", *map(str, argv)], cwd=ROOT, text=True,
                                      env={**__import__("os").environ, **ONE_THREAD},
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    try:
        errors = [p.communicate(timeout=TIMEOUT)[1] for p in procs]
    finally:
        for p in procs:
            p.kill() if p.poll() is None else None
    assert [p.returncode for p in procs] == [0, 0], "\n".join(e[-2000:] for e in errors)
    manifest = json.loads(manifest_path(out).read_text())
    assert (manifest["processes"], manifest["global_step"]) == (2, 3)
    assert max_diff(out, ddp_run) < 1e-5
