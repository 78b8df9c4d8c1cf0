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
