"""Multi-GPU / multi-node launching of a training stage through `accelerate launch`.

The presets in `stages/presets/*.yaml` are accelerate config files: `ddp`
(plain data parallel), `zero2`, `zero3` and `zero3-offload` (DeepSpeed, the
`[deepspeed]` extra). `rlt distill ... --launch zero3 --gpus 8` writes the
resolved stage config to a temporary YAML file and re-executes the same stage
as (an argv list, never a shell string):

    accelerate launch --config_file <rlt>/stages/presets/zero3.yaml --num_processes 8 \\
        -m rltcli distill --config <resolved.yaml>

Multi-node: run the same line on every machine with `launch_args` adding
`--num_machines N --machine_rank R --main_process_ip IP --main_process_port P`
(`--num_processes` counts the processes of all machines).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from stages.errors import UserError

log = logging.getLogger(__name__)
PRESET_DIR = Path(__file__).resolve().parent / "presets"
DEEPSPEED_PRESETS = ("zero2", "zero3", "zero3-offload")


def preset_names() -> list[str]:
    """Names of the shipped launch presets (file stems of stages/presets/*.yaml)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    """Path of a shipped preset; UserError listing the valid names."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"unknown --launch preset {name!r} (valid: {', '.join(preset_names())})")
    return path


def in_launched_process() -> bool:
    """True inside a process started by accelerate/torchrun (do not launch again)."""
    return "LOCAL_RANK" in os.environ or "ACCELERATE_LAUNCHED" in os.environ


def world_size() -> int:
    """Number of training processes of this run (1 outside a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def check_launch(name: str, gpus: int) -> Path:
    """Validate a launch request before any process starts."""
    path = preset_path(name)
    if gpus < 1:
        raise UserError(f"--gpus must be at least 1, got {gpus}")
    if importlib.util.find_spec("accelerate") is None:
        raise UserError("--launch needs accelerate (pip install accelerate)")
    import torch

    if not torch.cuda.is_available():
        raise UserError(f"--launch {name} runs one process per GPU, and no CUDA GPU is visible here")
    if name in DEEPSPEED_PRESETS and importlib.util.find_spec("deepspeed") is None:
        raise UserError(f"--launch {name} needs DeepSpeed: pip install 'rlt[deepspeed]'")
    return path


def accelerate_argv(preset: str | Path, gpus: int, stage_argv: list[str], extra: list[str] | None = None) -> list[str]:
    """The `accelerate launch` command line (argv list) running `python -m <stage_argv>`."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(preset),
            "--num_processes", str(gpus), *(extra or []), "-m", *stage_argv]


def relaunch(command: str, cfg_dict: dict, preset: str, gpus: int, extra: list[str] | None = None) -> int:
    """Write the resolved config to a temp YAML and run `rlt <command> --config it` under accelerate."""
    path = check_launch(preset, gpus)
    with tempfile.TemporaryDirectory(prefix="rlt-launch-") as tmp:
        cfg_file = Path(tmp) / "config.yaml"
        cfg_file.write_text(yaml.safe_dump(cfg_dict, sort_keys=False, allow_unicode=True))
        argv = accelerate_argv(path, gpus, ["rltcli", *command.split(), "--config", str(cfg_file)], extra)
        log.info("launching: %s", " ".join(argv))
        proc = subprocess.run(argv, check=False)
    if proc.returncode == 2:
        raise UserError("the launched run refused its input (see its message above)")
    if proc.returncode != 0:
        raise RuntimeError(f"launched run exited with code {proc.returncode} (see its log above)")
    return proc.returncode
