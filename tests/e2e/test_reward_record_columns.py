"""The reward record is what the reward returns and what `rlt score` writes (tiny models, CPU).

The unit tests of stages/reward_record.py check the record itself; these check its
consumers against real output: every record field comes back from `RLTReward.score`
with the record's type, and a scored artifact stores each as the traces schema says.
"""

from __future__ import annotations

import typing

import pyarrow as pa
import pyarrow.parquet as pq

from stages import reward_record as R
from stages.artifacts.read import read_rows
from stages.method.settings import PromptsConfig, RewardConfig
from tests.conftest import rlt

ARROW = {float: pa.float64(), bool: pa.bool_(), int: pa.int64()}


def _rows(synth_train) -> list[dict]:
    data = read_rows(synth_train, "dataset")[:3]
    return [{"id": r["id"], "question": r["question"], "solution": r["solution"],
             "explanation": r["reasoning_trace"]} for r in data]


def test_score_returns_every_record_field_with_its_type(synth_train, tiny_teacher, tiny_student):
    from stages.method.reward import load_reward

    scorer = load_reward(str(tiny_student), str(tiny_teacher), RewardConfig(teacher_temperature=0.7, full_kl=True), PromptsConfig(), "cpu")
    types = typing.get_type_hints(R.RewardRecord)
    for scored in scorer.score(_rows(synth_train)):
        assert set(R.COLUMNS) <= set(scored)
        for c in R.COLUMNS:  # bool before int: a bool is an int in Python
            want = types[c]
            assert isinstance(scored[c], want) and (want is bool or not isinstance(scored[c], bool)), (c, scored[c])


def test_scored_artifact_stores_every_record_field(synth_train, tiny_teacher, tiny_student, tmp_path):
    src = tmp_path / "explanations.parquet"
    pq.write_table(pa.Table.from_pylist(_rows(synth_train)), src)
    out = tmp_path / "scored"
    rlt("score", "--teacher", tiny_teacher, "--student", tiny_student, "--data", src, "--out", out,
        "--device", "cpu", check=True)
    (data_file,) = out.glob("data-*.parquet")
    schema = pq.read_schema(data_file)
    types = typing.get_type_hints(R.RewardRecord)
    for c in R.COLUMNS:
        assert schema.field(c).type == ARROW[types[c]], c
    written = read_rows(out, "traces")
    assert len(written) == 3 and all(r[c] is not None for r in written for c in R.COLUMNS)
