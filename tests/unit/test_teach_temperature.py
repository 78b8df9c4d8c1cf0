"""`rlt teach`: the reward scores the teacher at its sampling temperature unless set apart on purpose."""

import logging

from stages.commands import teach
from stages.config import resolve


def _cfg(*overrides: str) -> teach.TeachConfig:
    return resolve(teach.TeachConfig, overrides=list(overrides))


def test_reward_follows_the_sampling_temperature():
    assert teach.temperatures(_cfg()) == {"sampling": 0.7, "reward_teacher": 0.7, "set_apart": False}
    assert teach.temperatures(_cfg("temperature=1.1")) == {"sampling": 1.1, "reward_teacher": 1.1, "set_apart": False}
    assert _cfg("temperature=1.1").reward.teacher_temperature is None  # the config keeps "tied", not a copy


def test_a_deliberate_mismatch_is_logged_and_recorded(caplog):
    with caplog.at_level(logging.WARNING, logger="stages.commands.teach"):
        got = teach.temperatures(_cfg("reward.teacher_temperature=0.5"))
    assert got == {"sampling": 0.7, "reward_teacher": 0.5, "set_apart": True}
    assert any("set apart" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="stages.commands.teach"):
        assert not teach.temperatures(_cfg("reward.teacher_temperature=0.7"))["set_apart"]
    assert not caplog.records
