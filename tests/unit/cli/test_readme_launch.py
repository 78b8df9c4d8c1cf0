"""The README's multi-node and vLLM-server commands, run through the real CLI up to the argv they build.

Nothing is launched: `launch.run_launcher` (accelerate launch) and the generate stage
are replaced by recorders, and the machine is made to look like it has 8 GPUs
with DeepSpeed and vLLM installed.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

SECTION = "## LoRA, several processes, several machines"


def readme_commands() -> list[list[str]]:
    """Indented command lines of the README section (continuations joined), as argv lists."""
    text = (ROOT / "README.md").read_text()
    body = text[text.index(SECTION):].split("\n## ", 1)[0]
    joined = re.sub(r"\\\n\s*", "", body)
    return [shlex.split(line) for line in joined.splitlines() if line.startswith("    ") and line.strip()]


@pytest.fixture
def gpu_machine(monkeypatch):
    """8 visible GPUs, deepspeed and vllm importable; accelerate launches recorded with their config."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: real("json") if name in ("deepspeed", "vllm") else real(name, *a))
    launched: list[tuple[list[str], dict]] = []

    def fake_launcher(argv, env):
        cfg = yaml.safe_load(Path(argv[argv.index("--config") + 1]).read_text())
        launched.append((argv, cfg))
        return 0

    monkeypatch.setattr("stages.training.launch.run_launcher", fake_launcher)
    return launched


def _rlt(argv: list[str]) -> None:
    from rltcli.app import main

    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0


def _launch_part(argv: list[str]) -> dict[str, str]:
    """`--flag value` pairs of the accelerate launch argv (before `-m rltcli`)."""
    head = argv[argv.index("accelerate.commands.launch") + 1: argv.index("rltcli") - 1]
    return dict(zip(head[::2], head[1::2]))


def test_multi_node_commands_build_the_accelerate_argv(gpu_machine):
    lines = [c for c in readme_commands() if "--num_machines" in " ".join(c)]
    assert [c[1] for c in lines] == ["distill", "distill"] and lines[0][2:] != lines[1][2:]
    for rank, cmd in enumerate(lines):
        _rlt(cmd[1:])
        argv, cfg = gpu_machine[-1]
        assert argv[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
        flags = _launch_part(argv)
        assert flags["--config_file"].endswith("stages/training/presets/zero3.yaml") and flags["--num_processes"] == "16"
        assert flags["--num_machines"] == "2" and flags["--machine_rank"] == str(rank)
        assert flags["--main_process_ip"] == "10.0.0.1" and flags["--main_process_port"] == "29500"
        assert argv[argv.index("rltcli") + 1] == cmd[1] and cfg["out"] == cmd[cmd.index("--out") + 1]
        assert cfg["preset"] == "paper" and not cfg.get("launch")  # the launched run does not launch again


def test_vllm_server_commands(gpu_machine, monkeypatch):
    cmds = {c[0] if c[0] != "CUDA_VISIBLE_DEVICES=0,1,2,3" else "train": c for c in readme_commands()
            if "vllm" in " ".join(c) or "--engine" in c}
    serve, train = cmds["CUDA_VISIBLE_DEVICES=4"], cmds["train"]
    assert serve[1:3] == ["trl", "vllm-serve"] and serve[serve.index("--model") + 1] == \
        train[train.index("--teacher") + 1]  # the server generates with the policy's starting weights
    _rlt(train[2:])
    argv, cfg = gpu_machine[-1]
    assert _launch_part(argv)["--num_processes"] == "4" and "--num_machines" not in argv
    assert cfg["use_vllm"] is True and cfg["vllm_mode"] == "server"
    port = serve[serve.index("--port") + 1]
    assert cfg["trl"]["vllm_server_base_url"] == f"http://127.0.0.1:{port}"

    from stages.commands import generate

    seen = []
    monkeypatch.setattr(generate, "run", lambda c: seen.append(c) or Path(c.out))
    vserve, gen = cmds["vllm"], cmds["rlt"]
    _rlt(gen[1:])
    assert seen[0].engine.name == "openai" and seen[0].teacher == vserve[2]  # the served model's name
    assert seen[0].engine.base_url == f"http://127.0.0.1:{vserve[vserve.index('--port') + 1]}/v1"
