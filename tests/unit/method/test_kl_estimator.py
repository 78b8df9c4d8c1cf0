"""Which KL estimator a scored row gets: by provenance, or forced."""

import pytest

from stages.method.kl import kl_estimator
from stages.method.settings import RewardConfig


@pytest.mark.parametrize("row, default, want", [
    ({"teacher": "t", "temperature": 0.7, "top_p": 1.0}, None, "sampled"),  # this teacher sampled it at 0.7
    ({"teacher": "t", "temperature": 0.0, "top_p": 1.0}, None, "full"),     # greedy
    ({"teacher": "t", "temperature": 0.7, "top_p": 0.9}, None, "full"),     # nucleus: not pi_teacher
    ({"teacher": "t", "temperature": 1.0, "top_p": 1.0}, None, "full"),     # another temperature
    ({"teacher": "other", "temperature": 0.7, "top_p": 1.0}, None, "full"),  # another teacher
    ({"teacher": "t"}, {"temperature": 0.7, "top_p": 1.0}, "sampled"),       # settings from the input's manifest
    ({"teacher": "t"}, None, "full"),                                         # unknown origin
    ({}, None, "full"),                                                       # imported traces
])
def test_by_provenance(row, default, want):
    assert kl_estimator(row, "t", RewardConfig(teacher_temperature=0.7), default) == want


def test_teacher_temperature_and_forcing():
    row = {"teacher": "t", "temperature": 1.0, "top_p": 1.0}
    assert kl_estimator(row, "t", RewardConfig(teacher_temperature=1.0)) == "sampled"
    assert kl_estimator(row, "t", RewardConfig(teacher_temperature=1.0, full_kl=True)) == "full"
    assert kl_estimator({}, "t", RewardConfig(teacher_temperature=0.7, full_kl=False)) == "sampled"
