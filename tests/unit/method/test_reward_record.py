"""The reward record itself: its fields, their help, record() and summary().

Its consumers (the reward's returned keys, the columns `rlt score` writes) are checked
against real output in tests/e2e/test_reward_record_columns.py.
"""

import math

import pytest

from stages import reward_record as R


def test_the_record_is_the_papers_reward_and_its_bookkeeping():
    assert R.COMPONENTS == ("reward", "sol_logp_mean", "sol_logp_min", "kl_mean", "kl_max")
    assert R.FLAGS == ("format_ok", "aligned")
    assert set(R.COLUMNS) == {*R.COMPONENTS, *R.FLAGS, "explanation_tokens", "solution_tokens", "student_tokens"}
    assert all(R.HELP[c] for c in R.COLUMNS)


def test_record_refuses_a_row_missing_a_field():
    row = {c: 1 for c in R.COLUMNS}
    assert R.record({**row, "extra": 2}) == row
    del row["kl_max"]
    with pytest.raises(KeyError, match="kl_max"):
        R.record(row)


def test_summary_means_and_shares():
    rows = [{**{c: 0 for c in R.COLUMNS}, "reward": -1.0, "format_ok": True, "aligned": True, "student_tokens": 10},
            {**{c: 0 for c in R.COLUMNS}, "reward": -3.0, "format_ok": False, "aligned": True, "student_tokens": 30}]
    got = R.summary(rows)
    assert got["reward"] == -2.0 and got["format_ok"] == 0.5 and got["aligned"] == 1.0 and got["student_tokens"] == 20
    assert set(got) == set(R.COLUMNS) and all(math.isfinite(v) for v in got.values())
    assert R.summary([]) == {}
