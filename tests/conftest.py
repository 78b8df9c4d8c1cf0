"""Shared fixtures: tiny models and synthetic data built once per test session (no network).

- `tiny_teacher`: tags as single added tokens; `tiny_student`: same tokenizer, other seed.
- `tiny_plain`: a tokenizer without the tag tokens (tags are multi-token text, as in Qwen2.5).
- `synth_train` / `synth_test`: small synthetic datasets.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # tiny models are overhead-bound: one thread is as fast and spares busy CPUs


def pytest_collection_modifyitems(config, items):
    """Tests marked `slow` (a run of 30 s or more) first: xdist hands tests to its workers in this order, and a
    long test handed out last ends the suite alone on one worker while the other idles."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: otherwise collection order


@pytest.fixture
def one_thread():
    """One torch thread in this process for the test (see ONE_THREAD)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_model(model: Path, log: Path, timeout: float = 120.0):
    """A real `transformers serve` of `model` on 127.0.0.1; yields its /v1 URL, then stops it by PID."""
    missing = [m for m in ("fastapi", "uvicorn", "openai") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"transformers serve needs {', '.join(missing)} (pip install 'rlt[serve]')")
    exe = Path(sys.executable).parent / "transformers"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "transformers.cli.transformers"]
    port = free_port()
    with open(log, "w") as f:
        proc = subprocess.Popen([*cmd, "serve", str(model), "--host", "127.0.0.1", "--port", str(port),
                                 "--device", "cpu"], stdout=f, stderr=subprocess.STDOUT,
                                env={**os.environ, "HF_HUB_OFFLINE": "1", **ONE_THREAD})
    try:
        _wait_ready(proc, f"http://127.0.0.1:{port}/health", log, timeout)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"transformers serve exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"transformers serve not ready after {timeout:.0f}s:\n{log.read_text()[-2000:]}")


def rlt(*args, check: bool = False, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (exit codes and stderr as a user sees them)."""
    proc = subprocess.run([sys.executable, "-m", "rltcli", *map(str, args)], capture_output=True, text=True,
                          check=False, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"rlt {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def rlt_on_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH holds an `rlt` running this checkout (README commands as a user types them)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "rlt").write_text(f"#!/bin/sh\nexec {sys.executable} -m rltcli \"$@\"\n")
    (bin_dir / "rlt").chmod(0o755)
    return {**os.environ, **ONE_THREAD, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_teacher(models_dir) -> Path:
    from stages.commands.tinymodel import TinyModelConfig, run

    return run(TinyModelConfig(out=str(models_dir / "teacher"), seed=0))


@pytest.fixture(scope="session")
def tiny_student(models_dir, tiny_teacher) -> Path:
    from stages.commands.tinymodel import TinyModelConfig, run

    return run(TinyModelConfig(out=str(models_dir / "student"), seed=1, tokenizer=str(tiny_teacher)))


@pytest.fixture(scope="session")
def tiny_plain(models_dir) -> Path:
    from stages.commands.tinymodel import TinyModelConfig, run

    return run(TinyModelConfig(out=str(models_dir / "plain"), seed=2, tag_tokens=False))


@pytest.fixture(scope="session")
def synth_train(tmp_path_factory) -> Path:
    from stages.commands.data import SynthConfig, synth

    return synth(SynthConfig(out=str(tmp_path_factory.mktemp("data") / "train"), n=64, seed=0))


@pytest.fixture(scope="session")
def synth_test(tmp_path_factory) -> Path:
    from stages.commands.data import SynthConfig, synth

    return synth(SynthConfig(out=str(tmp_path_factory.mktemp("data") / "test"), n=16, seed=0, split="test"))
