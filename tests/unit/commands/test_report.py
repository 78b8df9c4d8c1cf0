"""`rlt report`: tables and PNG plots from step artifacts (eval summaries and training metrics)."""

import json
from dataclasses import dataclass

import pytest

from stages.artifacts.layout import metrics_path, summary_path
from stages.artifacts.writer import ArtifactWriter
from stages.commands import report
from stages.commands.evaluate import summarize
from stages.config import opt
from stages.errors import UserError

PNG = b"\x89PNG\r\n\x1a\n"


@dataclass
class Cfg:
    out: str = opt("", "out", hash=False)


def _eval_step(path, model, correct):
    rows = [{"id": str(i), "sample": 0, "question": "q", "answer": "1", "task": "addition", "model": model,
             "response": "r", "extracted": "1", "correct": c, "response_tokens": 10 + i, "truncated": False,
             "source": "synth-test"} for i, c in enumerate(correct)]
    with ArtifactWriter(path, "eval", Cfg(), key=("model", "id", "sample")) as w:
        w.write(rows)
        summary_path(path).write_text(json.dumps(summarize(rows)))
        w.finish()


def _train_step(path, metrics):
    with ArtifactWriter(path, "checkpoint", Cfg()) as w:
        metrics_path(path).write_text("".join(json.dumps(m) + "\n" for m in metrics))
        w.finish(rows=0)


def test_report_tables_and_plots(tmp_path):
    run = tmp_path / "runs" / "demo"
    _eval_step(run / "eval", "runs/demo/student-rl", [True, True, False, True])
    _train_step(run / "teach", [{"step": s, "reward": -2 + s / 10, "sol_logp_mean": -1.0, "sol_logp_min": -3.0,
                                 "kl_mean": 0.1, "kl_max": 0.5} for s in range(1, 11)])
    _train_step(run / "student", [{"step": s, "loss": 2.0 / s} for s in range(1, 6)])
    result = report.run(report.ReportConfig(runs=[str(run)], out=str(tmp_path / "rep")))
    text = (tmp_path / "rep" / "report.md").read_text()
    assert result["path"] == tmp_path / "rep" / "report.md"
    assert "| eval | student-rl | synth-test | 4 | 75.0 |" in text
    # first fifth (steps 1-2) mean -1.85, last fifth (steps 9-10) mean -1.05
    assert "first fifth of steps -1.850 -> last fifth -1.050" in text
    for png in ("accuracy.png", "teacher_reward.png", "loss.png"):
        assert (tmp_path / "rep" / png).read_bytes().startswith(PNG), png
        assert f"({png})" in text


def test_report_needs_finished_artifacts(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no finished artifacts"):
        report.run(report.ReportConfig(runs=[str(tmp_path / "empty")], out=str(tmp_path / "rep")))
    with pytest.raises(UserError, match="run not found"):
        report.run(report.ReportConfig(runs=[str(tmp_path / "nope")], out=str(tmp_path / "rep")))


def test_fifths():
    assert report.fifths([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) == (1.5, 9.5)
    assert report.fifths([1, 2]) is None


def test_newcombe_matches_the_published_example():
    # Newcombe (1998) Stat. Med. 17:873, example (a): 56/70 - 48/80, method 10 -> 0.0524 to 0.3339
    d, lo, hi = report.newcombe(56, 70, 48, 80)
    assert d == pytest.approx(0.2) and lo == pytest.approx(0.0524, abs=1e-4) and hi == pytest.approx(0.3339, abs=1e-4)


def test_report_aggregates_runs_with_differences_and_styles(tmp_path):
    from stages.method import tasks

    runs = []
    for seed, (rl, wu) in enumerate([([True] * 30 + [False] * 10, [True] * 10 + [False] * 30),
                                     ([True] * 20 + [False] * 20, [True] * 19 + [False] * 21)]):
        run = tmp_path / f"seed{seed}" / "demo"
        _eval_step(run / "eval", "runs/demo/student-rl", rl)
        summary_path(run / "eval").write_text(json.dumps(summarize(
            _rows("runs/demo/student-rl", rl) + _rows("runs/demo/student-warmup", wu))))
        runs.append(str(run))
    rows = tasks.synth_rows(10, seed=0, min_digits=2, max_digits=2, unhelpful=0.3)
    traces = [{"id": r["id"], "sample": 0, "question": r["question"], "solution": r["solution"],
               "explanation": r["reasoning_trace"], "text": "t", "task": "addition"} for r in rows]
    with ArtifactWriter(tmp_path / "seed0/demo/traces-rl", "traces", Cfg()) as w:
        w.write(traces)
        w.finish()
    result = report.run(report.ReportConfig(runs=runs, out=str(tmp_path / "rep"), compare=["student-rl:student-warmup"]))
    diffs = {d["run"]: d for d in result["differences"]}
    assert set(diffs) == {f"{tmp_path.as_posix()}/seed0/demo", f"{tmp_path.as_posix()}/seed1/demo"}
    d0 = diffs[f"{tmp_path.as_posix()}/seed0/demo"]
    assert d0["difference"] == pytest.approx(0.5) and d0["ci95"] == pytest.approx(report.newcombe(30, 40, 10, 40)[1:])
    (style,) = result["styles"]
    want = sum(tasks.explanation_style(t["explanation"], t["question"]) == "columns" for t in traces) / 10
    assert style["helpful"] == pytest.approx(want) and 0 < want < 1
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "student-rl - student-warmup | +50.0" in text and "Explanation style" in text


def _rows(model, correct):
    return [{"id": str(i), "sample": 0, "question": "q", "answer": "1", "task": "addition", "model": model,
             "response": "r", "extracted": "1", "correct": c, "response_tokens": 10, "truncated": False,
             "source": "synth-test"} for i, c in enumerate(correct)]


def test_report_correlates_trace_set_reward_with_student_accuracy(tmp_path):
    run = tmp_path / "runs" / "demo-correlation"
    rewards = {"a": [-1.0, -3.0], "b": [0.5, 0.5], "c": [-0.2, 0.0]}
    correct = {"a": [True] + [False] * 9, "b": [True] * 8 + [False] * 2, "c": [True] * 3 + [False] * 7}
    for name, rs in rewards.items():
        with ArtifactWriter(run / f"score-{name}", "traces", Cfg()) as w:
            w.write([{"id": str(i), "sample": 0, "question": "q", "solution": "s", "explanation": "e", "text": "t",
                      "reward": r} for i, r in enumerate(rs)])
            w.finish()
    rows = [r for name, c in correct.items() for r in _rows(f"runs/x/student-{name}", c)]
    with ArtifactWriter(run / "eval", "eval", Cfg(), key=("model", "id", "sample")) as w:
        w.write(rows)
        summary_path(run / "eval").write_text(json.dumps(summarize(rows)))
        w.finish()
    result = report.run(report.ReportConfig(runs=[str(run)], out=str(tmp_path / "rep")))
    xs, ys = [-2.0, 0.5, -0.1], [0.1, 0.8, 0.3]
    mx, my = sum(xs) / 3, sum(ys) / 3
    want = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / (
        sum((x - mx) ** 2 for x in xs) * sum((y - my) ** 2 for y in ys)) ** 0.5
    assert result["correlation"]["pearson"] == pytest.approx(want)
    assert sorted(p["student"] for p in result["correlation"]["points"]) == ["student-a", "student-b", "student-c"]
    assert (tmp_path / "rep" / "reward_vs_accuracy.png").read_bytes().startswith(PNG)
    assert f"Pearson correlation over 3 trace sets: {want:.3f}" in (tmp_path / "rep" / "report.md").read_text()


def test_differences_with_several_generations_are_per_question(tmp_path):
    """`correct` counts every generation while `n` counts questions: the interval uses the per-question rate."""
    run = tmp_path / "demo"
    rows = []
    for model, wins in (("runs/demo/student-rl", 30), ("runs/demo/student-warmup", 10)):
        rows += [{"id": str(i), "sample": k, "question": "q", "answer": "1", "task": "addition", "model": model,
                  "response": "r", "extracted": "1", "correct": i < wins, "response_tokens": 10, "truncated": False,
                  "source": "synth-test"} for i in range(40) for k in range(4)]
    with ArtifactWriter(run / "eval", "eval", Cfg(), key=("model", "id", "sample")) as w:
        w.write(rows)
        summary_path(run / "eval").write_text(json.dumps(summarize(rows)))
        w.finish()
    (d,) = report.run(report.ReportConfig(runs=[str(run)], out=str(tmp_path / "rep")))["differences"]
    assert d["pair"] == "student-warmup - student-rl"  # the default: a model minus each one listed before it
    assert d["difference"] == pytest.approx(-0.5)
    assert d["ci95"] == pytest.approx(report.newcombe(10, 40, 30, 40)[1:])  # 40 questions, not 160 rows


def test_default_differences_are_each_model_minus_those_listed_before_it_in_its_eval(tmp_path):
    """No --compare: every pair within one eval step (baselines listed first), never across eval steps."""
    wins = {"base": 10, "warm": 20, "rl": 30}
    for step, models in (("eval", ["base", "warm", "rl"]), ("eval-other", ["warm", "rl"])):
        rows = [r for m in models for r in _rows(f"runs/x/{m}", [i < wins[m] for i in range(40)])]
        with ArtifactWriter(tmp_path / "demo" / step, "eval", Cfg(), key=("model", "id", "sample")) as w:
            w.write(rows)
            summary_path(tmp_path / "demo" / step).write_text(json.dumps(summarize(rows)))
            w.finish()
    diffs = report.run(report.ReportConfig(runs=[str(tmp_path / "demo")], out=str(tmp_path / "rep")))["differences"]
    got = sorted((d["pair"], round(d["difference"], 3)) for d in diffs)
    assert got == sorted([("warm - base", 0.25), ("rl - base", 0.5), ("rl - warm", 0.25), ("rl - warm", 0.25)])
    d = next(d for d in diffs if d["pair"] == "rl - base")
    assert d["ci95"] == pytest.approx(report.newcombe(30, 40, 10, 40)[1:])


def _traces_step(path, rows):
    with ArtifactWriter(path, "traces", Cfg()) as w:
        w.write([{"id": r["id"], "sample": 0, "question": r["question"], "solution": r["solution"],
                  "explanation": r["reasoning_trace"], "text": "t", "task": "addition"} for r in rows])
        w.finish()


def test_stage_checks_pass_or_replace_the_runs_differences_with_one_line(tmp_path, capsys):
    """A run whose reward student or warm-up teacher misses its check gets one line, not its differences."""
    from stages.method import tasks

    runs = []
    for name, reward_student_correct in (("good", [True] * 9 + [False]), ("bad", [True] * 3 + [False] * 7)):
        run = tmp_path / name / "demo"
        rows = _rows("runs/demo/student-rl", [True] * 30 + [False] * 10) + _rows("runs/demo/student-warmup", [True] * 10 + [False] * 30)
        with ArtifactWriter(run / "eval", "eval", Cfg(), key=("model", "id", "sample")) as w:
            w.write(rows)
            summary_path(run / "eval").write_text(json.dumps(summarize(rows)))
            w.finish()
        _eval_step(run / "eval-reward-student", "runs/demo/reward-student", reward_student_correct)
        data = tasks.synth_rows(8, seed=0, min_digits=2, max_digits=2)  # all column work, all right
        data[0]["reasoning_trace"] = data[0]["reasoning_trace"].replace("ones:", "ones: 9 + 9 = 99,", 1)  # one wrong
        _traces_step(run / "check-warmup", data)
        runs.append(str(run))
    result = report.run(report.ReportConfig(runs=runs, out=str(tmp_path / "rep")))
    checks = {(c["run"].split("/")[-2], c["step"]): c for c in result["checks"]}
    assert checks["good", "eval-reward-student"]["ok"] and checks["good", "eval-reward-student"]["value"] == 0.9
    assert not checks["bad", "eval-reward-student"]["ok"]
    warm = checks["good", "check-warmup"]
    assert warm["ok"] and warm["value"] == pytest.approx(7 / 8) and warm["n"] == 8
    assert {d["run"].split("/")[-2] for d in result["differences"]} == {"good"}
    text = (tmp_path / "rep" / "report.md").read_text()
    (line,) = [ln for ln in text.splitlines() if "not a test of the claim" in ln]
    assert "bad/demo" in line and "30.0 % of 10 (needs >= 80 %)" in line
    from rltcli import show

    show.report(result)  # what `rlt report` prints: the same line, and the good run's differences
    printed = capsys.readouterr().out
    assert [ln for ln in printed.splitlines() if "not a test of the claim" in ln] == [line.replace("**", "")]
    assert "-50.0" in printed and "differences between students" in printed
