"""The DeepSpeed config a launched trainer would use, built from `--preset paper` and each ZeRO preset (no GPU).

The path is the real one: accelerate's launcher turns the preset file into the
ACCELERATE_* environment of the launched processes, accelerate's DeepSpeedPlugin
reads it back, and transformers fills the `auto` batch fields from the stage's
TrainingArguments as seen from 8 processes.
"""

import pytest

from stages.commands import distill, teach
from stages.config import resolve
from stages.training import launch

pytest.importorskip("deepspeed")
NPROC = 8
ZERO = {"zero2": (2, "none"), "zero3": (3, "none"), "zero3-offload": (3, "cpu")}


def _launched_env(preset: str) -> dict[str, str]:
    """ACCELERATE_* variables `accelerate launch --config_file <preset>` gives the processes."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env

    argv = ["--config_file", str(launch.preset_path(preset)), "--num_processes", str(NPROC), "-m", "rltcli", "x"]
    args, defaults, mp_from_config = _validate_launch_command(launch_command_parser().parse_args(argv))
    assert args.use_deepspeed
    args.deepspeed_fields_from_accelerate_config = ",".join(
        [*defaults.deepspeed_config, *(["mixed_precision"] if mp_from_config else [])])
    _, env = prepare_deepspeed_cmd_env(args)
    return {k: v for k, v in env.items() if k.startswith("ACCELERATE_")}


class _AtWorld:
    """Training arguments as one of NPROC processes sees them (world_size is a derived property)."""

    def __init__(self, args):
        self._args, self.world_size = args, NPROC

    def __getattr__(self, name):
        return getattr(self._args, name)


def _deepspeed_config(preset: str, args, monkeypatch) -> dict:
    from accelerate.utils import DeepSpeedPlugin
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    for key, value in _launched_env(preset).items():
        monkeypatch.setenv(key, value)
    ds = HfTrainerDeepSpeedConfig(DeepSpeedPlugin().deepspeed_config)
    ds.trainer_config_process(_AtWorld(args))
    return ds.config


@pytest.mark.parametrize("preset", sorted(ZERO))
@pytest.mark.parametrize("role,global_batch", [("student", 96), ("teacher", 16)])
def test_distill_paper_deepspeed_config(preset, role, global_batch, monkeypatch):
    monkeypatch.setattr(launch, "world_size", lambda: NPROC)  # inside the run: grad_accum = global / (1 x 8)
    cfg = distill.apply_role_preset(resolve(distill.DistillConfig, preset=distill.PRESETS["paper"],
                                            options={"model": "m", "data": "d", "out": "o", "role": role}))
    args = distill.sft_args(cfg, "cpu", has_eval=False)
    ds = _deepspeed_config(preset, args, monkeypatch)
    stage, offload = ZERO[preset]
    assert ds["zero_optimization"]["stage"] == stage
    assert ds["zero_optimization"].get("offload_param", {}).get("device", "none") == offload
    assert ds["zero_optimization"].get("offload_optimizer", {}).get("device", "none") == offload
    assert ds["train_micro_batch_size_per_gpu"] == 1
    assert ds["gradient_accumulation_steps"] == global_batch // NPROC
    assert ds["train_batch_size"] == global_batch  # the paper's global batch, whatever the process count


@pytest.mark.parametrize("preset", sorted(ZERO))
def test_teach_paper_deepspeed_config(preset, monkeypatch):
    cfg = resolve(teach.TeachConfig, preset=teach.PRESETS["paper"],
                  options={"teacher": "t", "student": "s", "data": "d", "out": "o"})
    batch = teach.per_device_batch(cfg, NPROC)  # 16 prompts x 64 samples over 8 processes
    args = teach.grpo_args(cfg, batch, on_gpu=False)
    ds = _deepspeed_config(preset, args, monkeypatch)
    assert ds["zero_optimization"]["stage"] == ZERO[preset][0]
    assert ds["train_micro_batch_size_per_gpu"] == batch == 16 * 64 // NPROC
    assert ds["gradient_accumulation_steps"] == 1
    assert ds["train_batch_size"] == 16 * 64
