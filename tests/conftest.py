"""Shared fixtures: tiny models and synthetic data built once per test session (no network).

- `tiny_teacher`: tags as single added tokens; `tiny_student`: same tokenizer, other seed.
- `tiny_plain`: a tokenizer without the tag tokens (tags are multi-token text, as in Qwen2.5).
- `synth_train` / `synth_test`: small synthetic datasets.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def rlt(*args, check: bool = False, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (exit codes and stderr as a user sees them)."""
    proc = subprocess.run([sys.executable, "-m", "rltcli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **(env or {})}, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"rlt {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_teacher(models_dir) -> Path:
    from stages.tinymodel import TinyModelConfig, run

    return run(TinyModelConfig(out=str(models_dir / "teacher"), seed=0))


@pytest.fixture(scope="session")
def tiny_student(models_dir, tiny_teacher) -> Path:
    from stages.tinymodel import TinyModelConfig, run

    return run(TinyModelConfig(out=str(models_dir / "student"), seed=1, tokenizer=str(tiny_teacher)))


@pytest.fixture(scope="session")
def tiny_plain(models_dir) -> Path:
    from stages.tinymodel import TinyModelConfig, run

    return run(TinyModelConfig(out=str(models_dir / "plain"), seed=2, tag_tokens=False))


@pytest.fixture(scope="session")
def synth_train(tmp_path_factory) -> Path:
    from stages.data import SynthConfig, synth

    return synth(SynthConfig(out=str(tmp_path_factory.mktemp("data") / "train"), n=64, seed=0))


@pytest.fixture(scope="session")
def synth_test(tmp_path_factory) -> Path:
    from stages.data import SynthConfig, synth

    return synth(SynthConfig(out=str(tmp_path_factory.mktemp("data") / "test"), n=16, seed=0, split="test"))
