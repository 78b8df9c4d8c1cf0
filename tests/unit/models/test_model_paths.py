"""A path that does not exist is said at once; a hub id is asked of the hub once, the offline case named."""

from __future__ import annotations

import time

import pytest

from stages.errors import UserError
from stages.models import loading


def test_a_mistyped_local_path_is_not_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "student").mkdir(parents=True)
    assert loading.hub_id("Qwen/Qwen2.5-7B-Instruct")
    assert not loading.hub_id("runs/studnet")  # runs/ is a folder here: a typo under it
    assert not loading.hub_id("src/nope.jsonl") and not loading.hub_id("./a/b") and not loading.hub_id("/a/b")
    t0 = time.time()
    with pytest.raises(UserError, match=r"model not found: runs/studnet \(did you mean runs/student\?\)"):
        loading.check_model_path("runs/studnet")
    assert time.time() - t0 < 1  # no network, no retries


def test_a_hub_id_offline_is_named_as_such(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    loading.check_hub_model.cache_clear()
    with pytest.raises(UserError, match="not in the hub cache \\(HF_HUB_OFFLINE is set\\)"):
        loading.check_model_path("nobody-here/no-such-model")


def test_a_hub_id_is_asked_once_and_an_unreachable_hub_is_one_line(monkeypatch):
    import huggingface_hub
    from huggingface_hub import constants

    calls = []

    def unreachable(repo, timeout=None):
        calls.append(repo)
        raise ConnectionError("no route to host")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "model_info", unreachable)
    loading.check_hub_model.cache_clear()
    with pytest.raises(UserError, match="the hub cannot be reached"):
        loading.check_model_path("nobody-here/no-such-model")
    assert calls == ["nobody-here/no-such-model"]


def test_every_device_option_refuses_what_is_not_a_device():
    assert loading.check_device("cuda:1") is None and loading.check_device("auto") is None
    assert "got 'gpu'" in loading.check_device("gpu")
    with pytest.raises(UserError, match="device must be auto, cpu"):
        loading.resolve_device("banana")


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}],
                         ids=["offline", "unreachable"])
def test_a_hub_dataset_offline_or_unreachable_is_one_line_as_a_model_is(tmp_path, env):
    """rlt data import org/name asks the hub once, as a model load does: no retries, one line, exit 2, no output."""
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_ENDPOINT")}
    cache = {"HF_HOME": str(tmp_path / "hf")}  # nothing cached: the hub must be asked
    t0 = time.time()
    done = subprocess.run([sys.executable, "-m", "rltcli", "data", "import", "nobody-here/no-such-data",
                           "--out", str(tmp_path / "d")], capture_output=True, text=True, timeout=120, check=False,
                          env={**base, **cache, **env, "OMP_NUM_THREADS": "1"})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    said = "not in the hub cache (HF_HUB_OFFLINE is set)" if "HF_HUB_OFFLINE" in env else "the hub cannot be reached"
    assert lines[0].startswith("rlt: error: dataset") and said in lines[0], lines[0]
    assert time.time() - t0 < 15  # loosely: the hub client's retries take 25 s
    assert not (tmp_path / "d").exists()
