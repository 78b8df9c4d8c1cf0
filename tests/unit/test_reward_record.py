"""One reward record: the traces schema, score and generate columns, teach metrics and the report derive from it."""

import math

import pyarrow as pa
import pytest

from stages import reward_record as R


def test_the_record_is_the_papers_reward_and_its_bookkeeping():
    assert R.COMPONENTS == ("reward", "sol_logp_mean", "sol_logp_min", "kl_mean", "kl_max")
    assert R.FLAGS == ("format_ok", "aligned")
    assert set(R.COLUMNS) == {*R.COMPONENTS, *R.FLAGS, "explanation_tokens", "solution_tokens", "student_tokens"}
    assert all(R.HELP[c] for c in R.COLUMNS)


def test_every_consumer_derives_its_columns_from_the_record():
    from stages.artifacts.schemas import SCHEMAS
    from stages.commands import generate, report
    from stages.method import reward
    from stages.training import metrics as teach_metrics

    traces = SCHEMAS["traces"]
    kinds = {"reward": pa.float64(), "kl_max": pa.float64(), "aligned": pa.bool_(), "student_tokens": pa.int64()}
    assert all(traces.field(c).type == t for c, t in kinds.items())
    assert [(c, traces.field(c).type) for c in R.COLUMNS] == R.arrow_fields()
    assert set(R.COLUMNS) <= set(reward.SCORE_KEYS) and set(R.COLUMNS) <= set(generate.SCORE_COLUMNS)
    assert set(R.COLUMNS) <= set(teach_metrics.METRIC_KEYS)
    assert report.REWARD_KEYS == R.COMPONENTS


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
