"""End-to-end `rlt score`: artifact schema, agreement with the library, resume, refusals."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stages.artifacts.layout import manifest_path
from stages.artifacts.read import read_rows
from stages.artifacts.schemas import SCHEMAS
from stages.method.settings import PromptsConfig, RewardConfig
from tests.conftest import rlt


@pytest.fixture(scope="module")
def explanations(synth_train, tmp_path_factory):
    """6 rows: 4 questions, one of them with three explanations (no `sample` column)."""
    data = read_rows(synth_train, "dataset")[:4]
    rows = [{"id": r["id"], "question": r["question"], "solution": r["solution"],
             "explanation": r["reasoning_trace"], "answer": r["answer"], "extra": 1} for r in data]
    first = data[0]
    rows += [{**rows[0], "explanation": first["reasoning_trace"][:30]}, {**rows[0], "explanation": ""}]
    path = tmp_path_factory.mktemp("score") / "explanations.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _parts(out):
    return sorted(p.name for p in out.glob("part-*.parquet"))


def _data(out):
    return sorted(p.name for p in out.glob("data-*.parquet"))


def test_score_writes_traces_matching_the_library(explanations, tiny_teacher, tiny_student, tmp_path):
    from stages.method.reward import load_reward

    out = tmp_path / "scored"
    rlt("score", "--teacher", tiny_teacher, "--student", tiny_student, "--data", explanations,
        "--out", out, "--batch-size", "4", "--device", "cpu", "reward.kl_coef=2", check=True)
    assert {p.name for p in out.iterdir()} == {".rlt", *_data(out)} and _data(out) == ["data-000000-000001.parquet"]
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["kind"] == "traces" and manifest["rows"] == 6
    assert manifest["config"]["reward"]["kl_coef"] == 2.0 and manifest["means"]["aligned"] == 1.0
    table = pq.read_table(out / _data(out)[0])
    assert table.schema == SCHEMAS["traces"]  # explicit schema, extra input columns dropped
    rows = sorted(read_rows(out, "traces"), key=lambda r: (r["id"], r["sample"]))
    samples = {}
    for r in rows:
        samples.setdefault(r["id"], []).append(r["sample"])
    assert sorted(samples.values()) == [[0], [0], [0], [0, 1, 2]]  # rank among rows of the same id
    assert all(r["teacher"] == str(tiny_teacher) and r["student"] == str(tiny_student) for r in rows)
    assert all(r["format_ok"] and not r["truncated"] and r["text"].startswith("<|im_start|>system") for r in rows)
    # floored: the lowest reward of its group scored in the same call (the file's last two rows, one batch of
    # --batch-size 4) + format_penalty
    empty = next(r for r in rows if r["explanation"] == "")
    partner = next(r for r in rows if r["explanation"] and r["id"] == empty["id"] and len(r["explanation"]) == 30)
    assert empty["explanation_tokens"] == 0 and empty["reward"] == pytest.approx(partner["reward"] - 1.0)

    # imported explanations (no generation provenance) are scored with the full-distribution KL
    assert {r["kl_estimator"] for r in rows} == {"full"} and manifest["kl_estimator"] == {"full": 6}
    scorer = load_reward(str(tiny_student), str(tiny_teacher), RewardConfig(teacher_temperature=0.7, kl_coef=2.0, full_kl=True),
                         PromptsConfig(), "cpu")
    lib = scorer.score(rows)
    for r, s in zip(rows, lib):
        if r is empty:  # floored within the rows of its call (above); one call here holds its whole group
            continue
        assert r["reward"] == pytest.approx(s["reward"], abs=1e-5)
        assert r["kl_max"] == pytest.approx(s["kl_max"], abs=1e-5)
        assert r["student_tokens"] == s["student_tokens"]

    again = rlt("score", "--teacher", tiny_teacher, "--student", tiny_student, "--data", explanations,
                "--out", out, "--batch-size", "4", "--device", "cpu", "reward.kl_coef=2", check=True)
    assert "already complete" in again.stderr and _data(out) == ["data-000000-000001.parquet"]


def test_score_resumes_after_a_failure(explanations, tiny_teacher, tiny_student, tmp_path, monkeypatch):
    from stages.commands import score
    from stages.errors import UserError
    from stages.method import reward

    cfg = score.ScoreConfig(teacher=str(tiny_teacher), student=str(tiny_student), data=str(explanations),
                            out=str(tmp_path / "scored"), reward_batch_size=2, device="cpu")
    real, calls = reward.RLTReward.score, []

    def failing(self, rows, teacher=None, **kw):
        calls.append(len(rows))
        if len(calls) == 2:
            raise UserError("simulated failure in the second batch")
        return real(self, rows, teacher, **kw)

    monkeypatch.setattr(reward.RLTReward, "score", failing)
    with pytest.raises(UserError, match="simulated"):
        score.run(cfg)
    out = tmp_path / "scored"
    assert not manifest_path(out).exists() and len(_parts(out)) == 1  # the first batch was flushed
    done = {(r["id"], r["sample"]) for r in pq.read_table(out / _parts(out)[0]).to_pylist()}

    calls.clear()
    monkeypatch.setattr(reward.RLTReward, "score", lambda self, rows, teacher=None, **kw: (
        calls.append([(r["id"], r["sample"]) for r in rows]), real(self, rows, teacher, **kw))[1])
    score.run(cfg)
    rescored = [k for batch in calls for k in batch]
    assert len(rescored) == 4 and not done & set(rescored)  # done rows are skipped
    rows = read_rows(out, "traces")
    assert len(rows) == 6 and len({(r["id"], r["sample"]) for r in rows}) == 6


def test_score_shard_splits_rows(explanations, tiny_teacher, tiny_student, tmp_path):
    from stages.commands import score
    from stages.errors import UserError

    got = []
    for i in range(2):
        cfg = score.ScoreConfig(teacher=str(tiny_teacher), student=str(tiny_student), data=str(explanations),
                                out=str(tmp_path / f"s{i}"), shard=f"{i}/2", device="cpu")
        try:
            got += [(r["id"], r["sample"]) for r in read_rows(score.run(cfg), "traces")]
        except UserError as e:  # a shard may be empty with so few rows
            assert "holds no rows" in str(e)
    assert len(got) == 6 and len(set(got)) == 6


def test_score_refuses_bad_input(explanations, tiny_teacher, tiny_plain, tiny_student, tmp_path):
    out = tmp_path / "bad"
    proc = rlt("score", "--teacher", tiny_plain, "--student", tiny_teacher, "--data", explanations, "--out", out)
    assert proc.returncode == 2 and not out.exists()
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "tokenizers differ" in lines[0] and "Traceback" not in proc.stderr

    no_expl = tmp_path / "no_expl.jsonl"
    no_expl.write_text(json.dumps({"question": "q", "solution": "s"}) + "\n")
    proc = rlt("score", "--teacher", tiny_teacher, "--student", tiny_student, "--data", no_expl, "--out", out)
    assert proc.returncode == 2 and "explanation" in proc.stderr and not out.exists()

    proc = rlt("score", "--teacher", tiny_teacher, "--student", tiny_student, "--data", explanations,
               "--out", out, "reward.kl_coeff=2")
    assert proc.returncode == 2 and "kl_coeff" in proc.stderr and not out.exists()



@pytest.mark.slow
def test_kl_estimator_follows_provenance_and_can_be_forced(tiny_teacher, tiny_student, synth_train, tmp_path):
    """Sampled estimate only for rows this teacher sampled at the reward's temperature; else full KL."""
    from stages.method.reward import load_reward

    gen = tmp_path / "gen"
    rlt("generate", "--teacher", tiny_teacher, "--data", synth_train, "--out", gen, "--limit", "3",
        "--num-generations", "2", "--temperature", "0.7", "--max-new-tokens", "16", "--device", "cpu", check=True)
    greedy = tmp_path / "greedy"
    rlt("generate", "--teacher", tiny_teacher, "--data", synth_train, "--out", greedy, "--limit", "3",
        "--temperature", "0", "--max-new-tokens", "16", "--device", "cpu", check=True)
    cases = [(gen, tiny_teacher, [], "sampled"), (greedy, tiny_teacher, [], "full"),
             (gen, tiny_student, [], "full"),  # another teacher's explanations
             (gen, tiny_teacher, ["reward.full_kl=true"], "full"),
             (greedy, tiny_teacher, ["reward.full_kl=false"], "sampled")]
    for k, (data, teacher, extra, want) in enumerate(cases):
        out = tmp_path / f"scored{k}"
        rlt("score", "--teacher", teacher, "--student", tiny_student, "--data", data, "--out", out,
            "--device", "cpu", *extra, check=True)
        rows = read_rows(out, "traces")
        assert {r["kl_estimator"] for r in rows} == {want}, (k, want)
        scorer = load_reward(str(tiny_student), str(teacher), RewardConfig(teacher_temperature=0.7, full_kl=want == "full"),
                             PromptsConfig(), "cpu")
        for r, s in zip(rows, scorer.score(rows)):
            assert r["reward"] == pytest.approx(s["reward"], abs=1e-5) and r["kl_mean"] == pytest.approx(s["kl_mean"], abs=1e-5)
