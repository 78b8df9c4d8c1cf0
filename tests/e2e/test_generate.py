"""`rlt generate` end to end on the tiny teacher with the hf engine (CPU)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from stages.artifacts.layout import manifest_path
from stages.artifacts.read import read_rows
from stages.artifacts.schemas import SCHEMAS
from stages.engines.base import EngineConfig
from stages.method import views as formats
from stages.method.settings import PromptsConfig
from tests.conftest import ONE_THREAD, rlt

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(teacher, data, out, **kw):
    from stages.commands.generate import GenerateConfig

    engine = EngineConfig(device="cpu", batch_size=kw.pop("batch_size", 8))
    return GenerateConfig(teacher=str(teacher), data=str(data), out=str(out), engine=engine, **kw)


def _run(teacher, data, out, **kw):
    from stages.commands.generate import run

    return run(_cfg(teacher, data, out, **kw))


def _rows(path) -> list[dict]:
    rows = read_rows(path, "traces")
    return sorted(rows, key=lambda r: (r["id"], r["sample"]))


def _files(path) -> set[str]:
    return {p.name for p in path.iterdir()}


def test_cli_schema_student_view_and_truncation(tiny_teacher, synth_train, tmp_path):
    out = tmp_path / "traces"
    proc = rlt("generate", "--teacher", tiny_teacher, "--data", synth_train, "--out", out, "--limit", 12,
               "--temperature", 0, "--max-new-tokens", 6, "--batch-size", 8, "engine.device=cpu", check=True,
               env=ONE_THREAD)
    assert "traces artifact" in proc.stdout
    names = _files(out)
    # rlt's records under .rlt/, the batches' parts compacted into one data file
    assert names == {".rlt", *(p.name for p in out.glob("data-*.parquet"))} and len(names) == 2
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["kind"] == "traces" and manifest["rows"] == 12
    assert manifest["config"]["max_new_tokens"] == 6 and manifest["config"]["engine"]["name"] == "hf"
    df = pd.read_parquet(out)  # the directory reads as exactly its rows
    assert set(SCHEMAS["traces"].names) <= set(df.columns)
    rows = _rows(out)
    data = {r["id"]: r for r in read_rows(synth_train, "dataset")[:12]}
    assert {r["id"] for r in rows} == set(data) and {r["sample"] for r in rows} == {0}
    from stages.models.loading import load_tokenizer

    tok = load_tokenizer(str(tiny_teacher))
    for r in rows:
        # an untrained teacher never writes the end tag in 6 tokens: every row is cut by the limit
        assert r["truncated"] and not r["format_ok"] and r["generated_tokens"] == 6
        assert r["question"] == data[r["id"]]["question"] and r["solution"] == data[r["id"]]["solution"]
        assert r["teacher"] == str(tiny_teacher) and r["reward"] is None
        assert r["text"] == formats.student_view(tok, PromptsConfig().student_system, r["question"],
                                                 r["solution"], r["explanation"])
        tags = [formats.BEGIN_THOUGHT, formats.END_THOUGHT, formats.BEGIN_SOLUTION, formats.END_SOLUTION]
        positions = [r["text"].index(t) for t in tags]
        assert positions == sorted(positions)
        assert formats.END_EXPLANATION not in r["explanation"]

    # the same command again: nothing to do; another config into the same --out: refused, one line
    base = ["generate", "--teacher", tiny_teacher, "--data", synth_train, "--out", out, "--limit", 12,
            "--temperature", 0, "--batch-size", 8, "engine.device=cpu"]
    again = rlt(*base, "--max-new-tokens", 6, check=True)
    assert "already complete" in again.stderr and _files(out) == names
    other = rlt(*base, "--max-new-tokens", 7)
    assert other.returncode == 2 and len(other.stderr.strip().splitlines()) == 1
    assert "another config" in other.stderr and _files(out) == names


def test_samples_end_tag_and_eos(tiny_teacher, synth_train, tmp_path):
    out = _run(tiny_teacher, synth_train, tmp_path / "t", limit=8, num_generations=4, temperature=1.0,
               max_new_tokens=48, seed=3)
    rows = _rows(out)
    assert len(rows) == 32 and len({(r["id"], r["sample"]) for r in rows}) == 32
    assert {r["sample"] for r in rows} == {0, 1, 2, 3}
    ended = [r for r in rows if r["format_ok"]]
    assert ended, "sampling 32 explanations of 48 tokens should hit the end tag at least once"
    for r in rows:
        if r["format_ok"]:  # stopped by the end tag
            assert not r["truncated"] and r["generated_tokens"] <= 48
        elif r["truncated"]:  # cut by the limit
            assert r["generated_tokens"] == 48
        else:  # stopped by eos without the tag
            assert r["generated_tokens"] <= 48
        assert formats.END_EXPLANATION not in r["explanation"]
    assert any(r["truncated"] for r in rows)


class _Killed(Exception):
    pass


def test_resume_after_interruption_equals_uninterrupted(tiny_teacher, synth_train, tmp_path, monkeypatch):
    from stages import artifacts

    kw = {"limit": 16, "num_generations": 2, "temperature": 1.0, "max_new_tokens": 12, "seed": 7, "batch_size": 8}
    full = _rows(_run(tiny_teacher, synth_train, tmp_path / "full", **kw))

    out = tmp_path / "resumed"
    real_write = artifacts.ArtifactWriter.write
    calls = []

    def write_then_die(self, rows):
        if calls:
            raise _Killed()
        calls.append(len(rows))
        real_write(self, rows)

    monkeypatch.setattr(artifacts.ArtifactWriter, "write", write_then_die)
    with pytest.raises(_Killed):
        _run(tiny_teacher, synth_train, out, **kw)
    monkeypatch.setattr(artifacts.ArtifactWriter, "write", real_write)
    assert not manifest_path(out).exists() and len(list(out.glob("part-*.parquet"))) == 1
    assert calls == [8]  # 4 rows x 2 samples per batch

    _run(tiny_teacher, synth_train, out, **kw)
    resumed = _rows(out)
    assert len(resumed) == 32 and len({(r["id"], r["sample"]) for r in resumed}) == 32
    assert resumed == full
    # the finished batch was not generated again: 1 + 3 parts, compacted in part order
    assert [p.name for p in out.glob("*.parquet")] == ["data-000000-000003.parquet"]


def test_shards_merge_to_the_full_set(tiny_teacher, synth_train, tmp_path):
    kw = {"limit": 16, "temperature": 0.0, "max_new_tokens": 8}
    full = _rows(_run(tiny_teacher, synth_train, tmp_path / "full", **kw))
    shards = [_run(tiny_teacher, synth_train, tmp_path / f"s{i}", shard=f"{i}/2", **kw) for i in range(2)]
    parts = [_rows(s) for s in shards]
    assert parts[0] and parts[1] and not {r["id"] for r in parts[0]} & {r["id"] for r in parts[1]}
    rlt("data", "merge", *shards, "--out", tmp_path / "merged", check=True)
    merged = _rows(tmp_path / "merged")
    assert merged == full


def test_student_scores_and_selection(tiny_teacher, tiny_student, synth_train, tmp_path):
    kw = {"limit": 6, "num_generations": 3, "temperature": 1.0, "max_new_tokens": 24, "seed": 1, "student": str(tiny_student)}
    every = _rows(_run(tiny_teacher, synth_train, tmp_path / "all", **kw))
    assert len(every) == 18
    for r in every:
        assert r["student"] == str(tiny_student) and r["aligned"] is True
        assert all(r[k] is not None for k in ("reward", "sol_logp_mean", "sol_logp_min", "kl_mean", "kl_max"))
        assert r["kl_estimator"] == "sampled"  # this teacher sampled them, and the reward scores at 1.0 too
    by_id: dict[str, list[dict]] = {}
    for r in every:
        by_id.setdefault(r["id"], []).append(r)

    best = _rows(_run(tiny_teacher, synth_train, tmp_path / "best", select="best", **kw))
    assert [(r["id"], r["sample"]) for r in best] == \
        sorted((i, max(g, key=lambda r: r["reward"])["sample"]) for i, g in by_id.items())

    lengths = sorted(r["student_tokens"] for r in every)
    limit = lengths[len(lengths) // 2]
    fit = _rows(_run(tiny_teacher, synth_train, tmp_path / "fit", select="fit", max_student_tokens=limit, **kw))
    want = []
    for i, g in by_id.items():
        ok = [r for r in g if r["student_tokens"] <= limit]
        if ok:
            want.append((i, max(ok, key=lambda r: r["reward"])["sample"]))
    assert fit and [(r["id"], r["sample"]) for r in fit] == sorted(want)
    assert all(r["student_tokens"] <= limit for r in fit)


@pytest.mark.parametrize("args, message", [
    (["--engine", "vllm"], "vllm is not installed: pip install 'rlt[vllm]'"),
    (["--engine", "tgi"], "unknown --engine 'tgi'"),
    (["--select", "best"], "give --student"),
    (["--shard", "2/2"], "--shard 2/2"),
])
def test_bad_input_exits_2_with_one_line(tiny_teacher, synth_train, tmp_path, args, message):
    out = tmp_path / "t"
    proc = rlt("generate", "--teacher", tiny_teacher, "--data", synth_train, "--out", out, *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr
    assert not out.exists()


def test_hf_engine_stops_on_multi_token_text(tiny_plain, synth_train):
    """Stop strings are found in decoded text, across token boundaries (tags are plain text in real models)."""
    from stages.engines import make_engine

    engine = make_engine(EngineConfig(device="cpu", batch_size=4), str(tiny_plain))
    tok = engine.tokenizer
    rows = read_rows(synth_train, "dataset")[:4]
    prompts = [formats.teacher_view(tok, PromptsConfig().teacher_system, r["question"], r["solution"]) + "Step"
               for r in rows]
    free = [c for (c,) in engine.generate(prompts, max_new_tokens=12, temperature=0.0)]
    assert all(not c.finished and c.tokens == 12 for c in free)
    ids = tok(free[0].text, add_special_tokens=False)["input_ids"]
    before, upto = tok.decode(ids[:3]), tok.decode(ids[:5])
    stop = upto[len(before) - 1:]  # ends inside the text of tokens 4-5, starts in token 3: several tokens
    assert len(tok(stop, add_special_tokens=False)["input_ids"]) > 1
    stopped = [c for (c,) in engine.generate(prompts, max_new_tokens=12, temperature=0.0, stop=[stop])]
    for f, s in zip(free, stopped):
        if stop in f.text:
            assert s.finished and s.text == f.text[: f.text.index(stop) + len(stop)] and s.tokens < 12
        else:
            assert s == f
    first = next(k for k in range(1, 13) if stop in tok.decode(ids[:k]))  # the token completing the stop
    assert stopped[0].finished and stopped[0].tokens == first and stopped[0].text.endswith(stop)
    engine.close()
