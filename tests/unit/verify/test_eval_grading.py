"""Eval-level grading without a model: golds refused before generation, re-grading in place,
and the grader's version in the config hash (stages/commands/evaluate.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stages import verify
from stages.artifacts.layout import read_manifest
from stages.artifacts.read import read_rows
from stages.artifacts.writer import ArtifactWriter
from stages.commands import evaluate
from stages.config import config_hash, resolve
from stages.errors import UserError
from stages.pipelines import run as pipeline
from tests.conftest import rlt

# responses an older grader got wrong: tiny numbers equal, nearby boxes merged, a cut-off retraction
ROWS = [
    ("a", "10^{-30}", "\\boxed{10^{-31}}", True, False),
    ("b", "7", "First \\boxed{8}. Correcting, the answer is \\boxed{7}.", False, True),
    ("c", "5", "Maybe \\boxed{5}? No. Redo: the final answer is \\boxed{", True, False),
    ("d", "\\$18.90", "\\boxed{18.90}", True, True),
]


def _dataset(path: Path) -> Path:
    path.write_text("".join(json.dumps({"id": i, "question": f"q{i}", "solution": f"\\boxed{{{g}}}",
                                        "answer": g, "task": "math", "source": "math500"}) + "\n"
                            for i, g, *_ in ROWS))
    return path


def _config(data: Path, out: Path) -> evaluate.EvalConfig:
    # an unreachable server: any attempt to generate fails, so passing tests prove nothing was generated
    return resolve(evaluate.EvalConfig, options={
        "models": ["m"], "data": str(data), "out": str(out),
        "engine": {"name": "openai", "base_url": "http://127.0.0.1:9/v1", "retries": 0, "timeout": 1}})


def _old_artifact(cfg: evaluate.EvalConfig, monkeypatch, before_versions: bool = False) -> None:
    """An eval artifact written by an older grader (other verdicts, other grader version), or,
    with `before_versions`, by a release whose config hash held no grader version at all."""
    with monkeypatch.context() as m:
        m.setattr(evaluate.EvalConfig, "HASH_EXTRA", {} if before_versions else {"grader": "0"})
        with ArtifactWriter(cfg.out, "eval", cfg, inputs={"data": cfg.data}) as w:
            w.write([{"id": i, "sample": 0, "question": f"q{i}", "answer": g, "task": "math", "model": "m",
                      "response": r, "extracted": "old", "correct": old, "response_tokens": 5,
                      "truncated": False, "source": "math500"} for i, g, r, old, _ in ROWS])
            if before_versions:
                evaluate.write_summary(w.out, w.all_rows())
                w.finish()
            else:
                evaluate._finish(w, w.all_rows())


def _verdicts(out) -> dict:
    return {r["id"]: r["correct"] for r in read_rows(out, "eval")}


def test_grader_version_is_in_the_config_hash(tmp_path, monkeypatch):
    cfg = _config(tmp_path / "d.jsonl", tmp_path / "out")
    before = config_hash(cfg)
    monkeypatch.setattr(evaluate.EvalConfig, "HASH_EXTRA", {"grader": "older"})
    assert config_hash(cfg) != before
    assert config_hash(cfg, extra=False) == config_hash(cfg, extra=False)


def test_regrade_rechecks_saved_responses_in_place(tmp_path, monkeypatch):
    cfg = _config(_dataset(tmp_path / "d.jsonl"), tmp_path / "out")
    _old_artifact(cfg, monkeypatch)
    out = evaluate.run(resolve(evaluate.EvalConfig, options={"regrade": str(cfg.out)}))
    assert _verdicts(out) == {i: new for i, _, _, _, new in ROWS}
    extracted = {r["id"]: r["extracted"] for r in read_rows(out, "eval")}
    assert extracted == {"a": "10^{-31}", "b": "7", "c": "", "d": "18.90"}
    manifest = read_manifest(out)
    assert manifest["grader_version"] == verify.GRADER_VERSION
    assert manifest["config_hash"] == config_hash(cfg)
    assert evaluate.read_summary(out)["models"]["m"]["overall"]["correct"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl", "out"]  # no sibling left behind


@pytest.mark.parametrize("before_versions", [False, True])
def test_rlt_run_regrades_an_older_graders_output(tmp_path, monkeypatch, before_versions):
    data = _dataset(tmp_path / "d.jsonl")
    pipes = tmp_path / "pipes.yaml"
    pipes.write_text(json.dumps({"p": {"steps": {"eval": {"command": "eval", "options": {
        "models": ["m"], "data": str(data),
        "engine": {"name": "openai", "base_url": "http://127.0.0.1:9/v1", "retries": 0, "timeout": 1}}}}}}))
    out = tmp_path / "runs" / "p" / "eval"
    cfg = _config(data, out)
    _old_artifact(cfg, monkeypatch, before_versions)
    plan = pipeline.run(pipeline.RunConfig(name="p", file=str(pipes), runs=str(tmp_path / "runs"), plan=True))
    assert plan[0]["action"] == "run"
    pipeline.run(pipeline.RunConfig(name="p", file=str(pipes), runs=str(tmp_path / "runs")))
    assert _verdicts(out) == {i: new for i, _, _, _, new in ROWS}
    again = pipeline.run(pipeline.RunConfig(name="p", file=str(pipes), runs=str(tmp_path / "runs"), plan=True))
    assert again[0]["action"] == "skip"


def test_regrade_refuses_what_is_not_a_finished_eval(tmp_path):
    with pytest.raises(UserError, match="not a finished eval artifact"):
        evaluate.regrade(tmp_path)


def test_bad_gold_is_refused_before_generation_with_nothing_written(tmp_path):
    data = tmp_path / "d.jsonl"
    rows = [{"id": "good", "question": "q1", "solution": "s", "answer": "\\$18.90"},
            {"id": "broken-7", "question": "q2", "solution": "s", "answer": "\\frac{1}{"}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    proc = rlt("eval", "--model", tmp_path / "no-model", "--data", data, "--out", out, timeout=300)
    assert proc.returncode == 2, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "broken-7" in line and "\\frac{1}{" in line
    assert not out.exists()
