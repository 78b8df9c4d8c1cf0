"""`rlt teach`: the reward scores the teacher at its sampling temperature unless set apart on purpose."""

import logging

import pytest

from stages.commands import teach
from stages.config import resolve


def _cfg(*overrides: str) -> teach.TeachConfig:
    return resolve(teach.TeachConfig, overrides=list(overrides))


def _finalized(*overrides: str) -> teach.TeachConfig:
    return teach.finalize_config(_cfg(*overrides))


def test_reward_follows_the_sampling_temperature():
    assert teach.temperatures(_finalized()) == {"sampling": 0.7, "reward_teacher": 0.7, "set_apart": False}
    assert teach.temperatures(_finalized("temperature=1.1")) == {"sampling": 1.1, "reward_teacher": 1.1, "set_apart": False}
    assert _cfg("temperature=1.1").reward.teacher_temperature is None  # the config keeps "tied", not a copy


def test_a_deliberate_mismatch_is_logged_and_recorded(caplog):
    with caplog.at_level(logging.WARNING, logger="stages.commands.teach"):
        got = teach.temperatures(_finalized("reward.teacher_temperature=0.5"))
    assert got == {"sampling": 0.7, "reward_teacher": 0.5, "set_apart": True}
    assert any("set apart" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="stages.commands.teach"):
        assert not teach.temperatures(_finalized("reward.teacher_temperature=0.7"))["set_apart"]
    assert not caplog.records


def test_the_scoring_code_refuses_an_unresolved_temperature():
    """No fallback that could disagree with the sampling temperature: the reward and the KL-estimator choice
    read a resolved number, and an unresolved config is refused (teach.run resolves it once)."""
    from stages.method.kl import kl_estimator

    with pytest.raises(ValueError, match="with_teacher_temperature"):
        teach.temperatures(_cfg("temperature=1.1"))
    with pytest.raises(ValueError, match="unresolved"):
        kl_estimator({"teacher": "t", "temperature": 1.1, "top_p": 1.0}, "t", _cfg("temperature=1.1").reward)
    assert kl_estimator({"teacher": "t", "temperature": 1.1, "top_p": 1.0}, "t",
                        _finalized("temperature=1.1").reward) == "sampled"
