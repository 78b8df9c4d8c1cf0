"""`rlt report`'s plots say what they show: a title on each, the value of each accuracy bar, the evals of one
model at several moments labelled apart by their eval step, reward panels named in words (the column in
brackets). The figures are read back as matplotlib drew them, before they are written as PNG."""

import random

import pytest

from stages import reward_record
from stages.commands import report
from tests.unit.commands.test_report import PNG, _eval_step, _train_step


@pytest.fixture
def figures(monkeypatch):
    """Every figure the report saves, by file name."""
    from matplotlib.figure import Figure

    saved, save = {}, Figure.savefig

    def keep(fig, out, *args, **kwargs):
        saved[str(out).rsplit("/", 1)[-1]] = fig
        return save(fig, out, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return saved


def _run(tmp_path):
    rng = random.Random(0)
    run = tmp_path / "runs" / "demo"
    for name, n_right in (("eval-base", 3), ("eval-warmup", 12), ("eval-rl", 48)):  # one model, three moments
        _eval_step(run / name, "runs/demo/student", [i < n_right for i in range(60)])
    _train_step(run / "teach", [{"step": s, "reward": -2 + s / 50 + rng.gauss(0, 0.2), "sol_logp_mean": -1.0,
                                 "sol_logp_min": -3.0, "kl_mean": 0.1, "kl_max": 0.5} for s in range(1, 41)])
    _train_step(run / "student", [{"step": s, "loss": 2.0 / s} for s in range(1, 11)])
    return report.run(report.ReportConfig(runs=[str(run)], out=str(tmp_path / "rep")))


def test_every_reward_column_has_a_title_in_words():
    assert set(report.REWARD_TITLES) == set(reward_record.COMPONENTS)
    assert report.reward_title("kl_mean") == "KL(teacher || student) over the explanation, mean per token [kl_mean]"


def test_the_plots_say_what_they_show(tmp_path, figures):
    _run(tmp_path)
    for png in ("accuracy.png", "teacher_reward.png", "loss.png"):
        assert (tmp_path / "rep" / png).read_bytes().startswith(PNG)

    (ax,) = figures["accuracy.png"].axes
    assert ax.get_title() == "Accuracy per model, benchmark and eval step"
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert len(set(ticks)) == 3 and {t.rsplit("\n", 1)[-1] for t in ticks} == {"(eval-base)", "(eval-warmup)",
                                                                              "(eval-rl)"}
    values = sorted(t.get_text() for t in ax.texts)
    assert values == ["20.0 %", "5.0 %", "80.0 %"]  # 3, 12 and 48 of 60, each above its bar

    reward = figures["teacher_reward.png"]
    assert reward._suptitle.get_text().startswith("Teacher RL (teach): the reward and its parts per step")
    titles = [" ".join(a.get_title().split()) for a in reward.axes]
    assert titles == [report.reward_title(k) for k in reward_record.COMPONENTS]
    assert all(a.get_xlabel() == "training step" for a in reward.axes)

    (loss,) = figures["loss.png"].axes
    assert loss.get_title() and loss.get_ylabel().startswith("training loss")


def test_one_eval_step_needs_no_step_in_its_labels():
    rows = [{"step": "eval", "model": m, "benchmark": "math500"} for m in ("base", "student")]
    assert report.accuracy_labels(rows) == ["base\nmath500", "student\nmath500"]
    rows.append({"step": "seed1/eval", "model": "student", "benchmark": "math500"})
    assert report.accuracy_labels(rows)[2] == "student\nmath500\n(seed1/eval)"
