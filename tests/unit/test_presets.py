"""Every shipped launch preset parses (as YAML and as an accelerate config) and is counted."""

import sys

import pytest
import yaml

from stages.errors import UserError
from stages.training import launch

EXPECTED = {"ddp", "ddp-cpu", "zero2", "zero3", "zero3-offload"}


def test_every_shipped_preset_parses():
    from accelerate.commands.config.config_args import ClusterConfig

    files = sorted(launch.PRESET_DIR.glob("*.yaml"))
    assert len(files) == 5 and {f.stem for f in files} == EXPECTED
    for f in files:
        data = yaml.safe_load(f.read_text())
        conf = ClusterConfig.from_yaml_file(str(f))  # unknown keys would raise here
        assert conf.num_machines == 1
        if f.stem == "ddp-cpu":  # torchrun-started CPU processes: no bf16, no GPU
            assert data["mixed_precision"] == "no" and data["use_cpu"] is True
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
    with pytest.raises(UserError, match="valid: ddp, ddp-cpu, zero2, zero3, zero3-offload"):
        launch.preset_path("zero4")
    with pytest.raises(UserError, match="--nproc"):
        launch.check_launch("ddp", 0)


def test_nproc_and_its_gpus_alias():
    assert launch.processes(4, None) == launch.processes(None, 4) == launch.processes(4, 4) == 4
    with pytest.raises(UserError, match="disagree"):
        launch.processes(2, 4)
    with pytest.raises(UserError, match="at least 1"):
        launch.processes(0)


def test_without_cuda_ddp_runs_cpu_processes_and_deepspeed_is_refused(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert launch.check_launch("ddp", 2).stem == "ddp-cpu"
    for name in ("zero2", "zero3", "zero3-offload"):
        with pytest.raises(UserError, match="needs CUDA GPUs"):
            launch.check_launch(name, 2)
    env = launch.launch_env(launch.preset_path("ddp-cpu"))
    assert env["CUDA_VISIBLE_DEVICES"] == ""

