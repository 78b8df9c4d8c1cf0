"""End-to-end `rlt run` of a miniature demo (every stage, a few steps each) and `rlt report`."""

import json

from stages.artifacts.layout import manifest_path, metrics_path, summary_path
from tests.conftest import rlt

MINI = """
mini:
  vars: {seed: 0}
  steps:
    teacher-base: {command: model tiny, options: {seed: 0}}
    student-base: {command: model tiny, options: {seed: 1, tokenizer: "${teacher-base}"}}
    train: {command: data synth, options: {n: 16, seed: "${seed}", min_digits: 2, max_digits: 2, unhelpful: 0.5}}
    test: {command: data synth, options: {n: 4, split: test, min_digits: 2, max_digits: 2}}
    warmup: {command: distill, options: {model: "${teacher-base}", data: "${train}", role: teacher, preset: tiny, max_steps: 2, save_steps: 1, logging_steps: 1}}
    teach: {command: teach, options: {teacher: "${warmup}", student: "${student-base}", data: "${train}", preset: tiny,
                                      max_steps: 2, num_generations: 2, prompts_per_step: 2, max_new_tokens: 12}}
    traces: {command: generate, options: {teacher: "${teach}", data: "${train}", limit: 4, max_new_tokens: 12, temperature: 0.0}}
    student: {command: distill, options: {model: "${student-base}", data: "${traces}", preset: tiny, max_steps: 2, logging_steps: 1}}
    eval: {command: eval, options: {models: ["${student-base}", "${student}"], data: "${test}", max_new_tokens: 12}}
"""
ENV = {"OMP_NUM_THREADS": "1"}


def test_mini_pipeline_runs_skips_and_reports(tmp_path):
    f = tmp_path / "pipelines.yaml"
    f.write_text(MINI)
    runs = tmp_path / "runs"
    first = rlt("run", "mini", "--file", f, "--runs", runs, "--var", "seed=1", check=True, env=ENV)
    assert json.loads(manifest_path(runs / "mini/train").read_text())["config"]["seed"] == 1
    steps = ["teacher-base", "student-base", "train", "test", "warmup", "teach", "traces", "student", "eval"]
    # a quiet console: the overview, one progress line per model stage, rlt's own lines; no library output
    log = first.stderr.splitlines()
    assert [line.split(":")[0] for line in log if line.startswith("[") and ": done in " in line] == [
        f"[{k}/9] {s}" for k, s in enumerate(steps, 1)]
    assert sum(line.startswith(("distill (", "teach:", "generate:", "eval (")) for line in log) == 5
    assert not [line for line in log if "Warning" in line or "it/s]" in line or "warnings.warn" in line], log
    assert len(log) <= 4 * len(steps), log
    for s in steps:
        assert manifest_path(runs / "mini" / s).is_file(), s
    assert json.loads(manifest_path(runs / "mini/teach").read_text())["training"]["global_step"] == 2
    assert len(metrics_path(runs / "mini/teach").read_text().splitlines()) == 2
    assert json.loads(manifest_path(runs / "mini/traces").read_text())["rows"] == 4
    summary = json.loads(summary_path(runs / "mini/eval").read_text())
    assert len(summary["models"]) == 2

    again = rlt("run", "mini", "--file", f, "--runs", runs, "--var", "seed=1", check=True, env=ENV)
    assert again.stdout.count("skip") == len(steps) and "run " not in again.stderr

    plan = rlt("run", "mini", "--file", f, "--runs", runs, "--var", "seed=1", "--from", "student", "--plan",
               check=True, env=ENV)
    text = " ".join(plan.stdout.replace("│", " ").split())
    assert "student distill run --from student" in text and "eval eval run --from student" in text

    rep = rlt("report", runs / "mini", "--out", tmp_path / "report", check=True, env=ENV)
    assert "report.md" in rep.stdout
    assert "## Explanation style" in (tmp_path / "report" / "report.md").read_text()
    for name in ("report.md", "accuracy.png", "teacher_reward.png", "loss.png"):
        assert (tmp_path / "report" / name).is_file(), name
