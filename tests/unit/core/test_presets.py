"""Every shipped launch preset parses (as YAML and as an accelerate config) and is counted."""

import sys
from pathlib import Path

import pytest
import yaml

from stages.errors import UserError
from stages.training import launch

GPU = {"ddp", "zero2", "zero3", "zero3-offload"}
EXPECTED = GPU | {f"{name}-cpu" for name in GPU}


def test_every_shipped_preset_parses():
    from accelerate.commands.config.config_args import ClusterConfig

    files = sorted(launch.PRESET_DIR.glob("*.yaml"))
    assert len(files) == 8 and {f.stem for f in files} == EXPECTED
    for f in files:
        data = yaml.safe_load(f.read_text())
        conf = ClusterConfig.from_yaml_file(str(f))  # unknown keys would raise here
        assert conf.num_machines == 1
        if f.stem.endswith("-cpu"):  # torchrun-started CPU processes: no bf16, no GPU
            assert data.get("mixed_precision", "no") == "no" and data["use_cpu"] is True
            continue
        assert data["mixed_precision"] == "bf16" and data["use_cpu"] is False
        if f.stem == "ddp":
            assert data["distributed_type"] == "MULTI_GPU" and "deepspeed_config" not in data
        else:
            ds = data["deepspeed_config"]
            assert data["distributed_type"] == "DEEPSPEED"
            assert ds["zero_stage"] == (2 if f.stem == "zero2" else 3)
            assert (ds["offload_param_device"] == "cpu") == f.stem.endswith("offload")


def test_accelerate_argv_is_a_list_without_shell():
    argv = launch.accelerate_argv(launch.preset_path("zero3"), 8, ["rltcli", "distill", "--config", "c.yaml"],
                                  ["--num_machines", "2"])
    assert argv[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert argv[argv.index("--config_file") + 1].endswith("presets/zero3.yaml")
    assert argv[argv.index("--num_processes") + 1] == "8" and "--num_machines" in argv
    assert argv[-5:] == ["-m", "rltcli", "distill", "--config", "c.yaml"]
    assert "--main_process_port" not in argv  # multi-node: the user's port, on every machine
    one = launch.accelerate_argv(launch.preset_path("ddp"), 2, ["rltcli", "teach", "--config", "c.yaml"])
    assert int(one[one.index("--main_process_port") + 1]) > 0  # one machine: a free port, no collisions


def test_unknown_preset_and_bad_gpu_count_are_user_errors():
    with pytest.raises(UserError, match="valid: ddp, ddp-cpu, zero2, zero2-cpu, zero3, zero3-cpu, zero3-offload, "
                                        "zero3-offload-cpu"):
        launch.preset_path("zero4")
    with pytest.raises(UserError, match="--nproc"):
        launch.check_launch("ddp", 0)


def test_nproc_and_its_gpus_alias():
    assert launch.processes(4, None) == launch.processes(None, 4) == launch.processes(4, 4) == 4
    with pytest.raises(UserError, match="disagree"):
        launch.processes(2, 4)
    with pytest.raises(UserError, match="at least 1"):
        launch.processes(0)


def test_without_cuda_every_preset_runs_its_cpu_variant(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in GPU:
        assert launch.check_launch(name, 2).stem == f"{name}-cpu"
        env = launch.launch_env(launch.preset_path(f"{name}-cpu"))
        assert env["CUDA_VISIBLE_DEVICES"] == "" and env["DS_ACCELERATOR"] == "cpu"


@pytest.mark.parametrize("name,stage,offload", [("zero2", 2, "none"), ("zero3", 3, "none"), ("zero3-offload", 3, "cpu")])
def test_deepspeed_cpu_presets_partition_every_parameter(name, stage, offload, tmp_path):
    import json

    preset = launch.materialize(launch.preset_path(f"{name}-cpu"), tmp_path)
    assert preset.parent == tmp_path  # a copy naming its DeepSpeed file by an absolute path
    data = yaml.safe_load(preset.read_text())
    assert data["distributed_type"] == "DEEPSPEED" and data["deepspeed_config"]["zero3_init_flag"] == (stage == 3)
    ds = json.loads(Path(data["deepspeed_config"]["deepspeed_config_file"]).read_text())
    zero = ds["zero_optimization"]
    assert zero["stage"] == stage and zero["offload_optimizer"]["device"] == offload
    assert not ds["bf16"]["enabled"] and not ds["fp16"]["enabled"]
    if stage == 3:  # DeepSpeed's default (1e5 elements) would keep every tensor of a small model whole
        assert zero["stage3_param_persistence_threshold"] == 0 and zero["offload_param"]["device"] == offload
    assert launch.materialize(launch.preset_path(name), tmp_path) == launch.preset_path(name)

