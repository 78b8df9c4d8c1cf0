"""`rlt report RUN... --out D`: a markdown report with PNG plots of one or more runs.

    rlt report runs/demo                  # writes runs/demo/report/report.md

    rlt report runs/seed0/demo runs/seed1/demo runs/seed2/demo --out runs/report   # several seeds

Input: run directories (`runs/<pipeline>`, whose sub-directories are step
artifacts) or step artifacts themselves. Reads each step's manifest,
`.rlt/metrics.jsonl` (training stages), `.rlt/summary.json` (eval) and the rows of
traces artifacts. Output: `D/report.md` with the step table, the accuracy table
(95 % Wilson intervals) and the accuracy per group of a benchmark (level, subject,
domain: eval's summary `groups`), per run the differences between students (`compare`
pairs, 95 % Newcombe hybrid-score intervals), the share of helpful explanations
in each traces artifact of the addition task (`stages.method.tasks.explanation_style`)
and the teacher's reward trend, plus `teacher_reward.png`, `loss.png` and
`accuracy.png`: each plot has a title, every accuracy bar its value (and its eval
step when there are several), every reward panel what it shows in words.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from stages import reward_record
from stages.artifacts.layout import METRICS, SUMMARY, find_meta, read_manifest
from stages.config import check_config, opt
from stages.errors import UserError, did_you_mean
from stages.verify.stats import newcombe, pearson

log = logging.getLogger(__name__)
REWARD_KEYS = reward_record.COMPONENTS  # the plotted columns of teach's metrics.jsonl
# A reward panel's title in words (the column name in brackets): one for every column of REWARD_KEYS
REWARD_TITLES = {
    "reward": "RLT reward r = r_SS - kl_coef * r_KL",
    "sol_logp_mean": "student log-prob of the solution, mean per token (nats)",
    "sol_logp_min": "student log-prob of the solution, lowest token (nats)",
    "kl_mean": "KL(teacher || student) over the explanation, mean per token",
    "kl_max": "KL(teacher || student) over the explanation, largest token",
}


@dataclass
class ReportConfig:
    """Options of `rlt report`."""

    runs: list[str] = opt(list, "Run directories (or step artifacts) to report on.", arg=True, required=True)
    out: str = opt("", "Output directory for report.md and the PNG plots (default: <first run>/report).", hash=False,
                   flag=True)
    compare: list[str] = opt(list, "Model pairs A:B (eval model directory names) whose accuracy difference A-B "
                                   "is reported per run with a 95 % interval; a name no eval evaluated is refused, a pair "
                                   "evaluated in no common run skipped. "
                                   "Default: within each eval step, each model minus each model listed before it "
                                   "(list the baselines first).", flag=True)


# ----------------------------------------------------------------------------- collecting


def find_steps(paths: list[str]) -> list[tuple[str, Path, dict]]:
    """(label, dir, manifest) of every complete artifact in the given runs, in time order."""
    steps = []
    names = [Path(p).name for p in paths]
    unique = len(set(names)) == len(names)  # runs/seed0/demo, runs/seed1/demo: label by the whole path
    for p in map(Path, paths):
        if not p.is_dir():
            raise UserError(f"run not found: {p}")
        candidates = [p] if read_manifest(p) else sorted(c for c in p.iterdir() if c.is_dir())
        for c in candidates:
            m = read_manifest(c)
            if m:
                label = c.name if len(paths) == 1 else f"{p.name if unique else p.as_posix()}/{c.name}"
                steps.append((label, c, m))
    if not steps:
        raise UserError(f"no finished artifacts under {', '.join(paths)}")
    return sorted(steps, key=lambda s: s[2].get("created", ""))


def read_metrics(path: Path) -> list[dict]:
    f = find_meta(path, METRICS)
    if f is None:
        return []
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()]


def series(rows: list[dict], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of one finite metric."""
    xs, ys = [], []
    for i, r in enumerate(rows):
        v = r.get(key)
        if isinstance(v, (int, float)) and math.isfinite(v):
            xs.append(r.get("step", i + 1))
            ys.append(float(v))
    return xs, ys


def fifths(values: list[float]) -> tuple[float, float] | None:
    """Mean over the first and the last fifth of a series."""
    if len(values) < 5:
        return None
    k = max(1, len(values) // 5)
    return sum(values[:k]) / k, sum(values[-k:]) / k


def _model_summaries(steps):
    """(eval step label, model name, that model's summary) for every model of every eval step's summary.json."""
    for label, path, m in steps:
        f = find_meta(path, SUMMARY)
        if m.get("kind") != "eval" or f is None:
            continue
        for model, s in json.loads(f.read_text())["models"].items():
            yield label, Path(model).name, s


def accuracy_rows(steps) -> list[dict]:
    """One row per (eval step, model, benchmark) from summary.json files."""
    return [{"step": label, "model": model, "benchmark": bench, **st}
            for label, model, s in _model_summaries(steps) for bench, st in s["benchmarks"].items()]


def group_rows(steps) -> list[dict]:
    """One row per (eval step, model, benchmark, grouping column, value) from summary.json files: the
    accuracy per subset (MATH-500's level and subject, GPQA's domain) with its 95 % Wilson interval."""
    return [{"step": label, "model": model, "benchmark": bench, "group": column, "value": value, **st}
            for label, model, s in _model_summaries(steps) for bench, columns in s.get("groups", {}).items()
            for column, values in columns.items() for value, st in values.items()]


def skipped_golds(steps) -> list[dict]:
    """Per eval step, the questions its eval left out for an unreadable gold (--skip-unreadable-golds)."""
    out = []
    for label, path, m in steps:
        record = m.get("skipped_golds") if m.get("kind") == "eval" else None
        if record:
            out.append({"step": label, "count": record["count"], "ids": record["ids"]})
    return out


def _groups_md(rows: list[dict], skipped: list[dict]) -> list[str]:
    lines = []
    if rows:
        lines += ["", "## Accuracy per group (95 % Wilson interval)", ""] + _md_table(
            ["eval step", "model", "benchmark", "group", "n", "accuracy %", "95 % interval"],
            [[r["step"], r["model"], r["benchmark"], f"{r['group']} {r['value']}", r["n"],
              f"{100 * r['accuracy']:.1f}", f"{100 * r['ci95'][0]:.1f}-{100 * r['ci95'][1]:.1f}"] for r in rows])
    for sk in skipped:
        ids = ", ".join(sk["ids"][:10]) + (" ..." if len(sk["ids"]) > 10 else "")
        lines += ["", f"{sk['step']}: {sk['count']} question(s) left out for a gold no checker reads ({ids})."]
    return lines


def _run_of(label: str) -> str:
    return label.rsplit("/", 1)[0] if "/" in label else ""


def check_pairs(pairs: list[str], models: list[str]) -> None:
    """Refuse a `--compare` pair that is not `A:B` or names a model no eval of the runs evaluated (a typo is
    said with the nearest name, never dropped); a pair of evaluated models in no common run is skipped later."""
    problems = []
    for pair in pairs:
        a, sep, b = pair.partition(":")
        if not sep or not a or not b:
            problems.append(f"--compare {pair!r} is not a pair A:B of model names")
            continue
        for name in (a, b):
            if name not in models:
                hint = did_you_mean(name, sorted(set(models)))
                problems.append(f"--compare {pair!r}: no eval of these runs evaluated a model {name!r} "
                                f"({hint}evaluated: {', '.join(sorted(set(models))) or 'none'})")
    if problems:
        raise UserError("; ".join(problems))


def differences(acc: list[dict], pairs: list[str]) -> list[dict]:
    """Per run (and benchmark), accuracy differences A - B with Newcombe intervals: of the `A:B` model pairs
    given, else of each model and every model before it in the same eval step's list."""
    found = []  # (row of A, row of B)
    for pair in pairs:
        a, _, b = pair.partition(":")
        for r in (r for r in acc if r["model"] == a):
            o = next((o for o in acc if o["model"] == b and o["benchmark"] == r["benchmark"]
                      and _run_of(o["step"]) == _run_of(r["step"])), None)
            found += [(r, o)] if o else []
    if not pairs:  # each model against every one its eval lists before it
        found = [(r, o) for i, r in enumerate(acc) for o in acc[:i]
                 if o["step"] == r["step"] and o["benchmark"] == r["benchmark"] and o["model"] != r["model"]]
    out = []
    for r, o in found:
        # per question: `correct` counts every generation, `n` the questions (as the Wilson interval)
        d, lo, hi = newcombe(r["accuracy"] * r["n"], r["n"], o["accuracy"] * o["n"], o["n"])
        out.append({"run": _run_of(r["step"]) or "-", "benchmark": r["benchmark"], "pair": f"{r['model']} - {o['model']}",
                    "difference": d, "ci95": [lo, hi]})
    return out


def style_rows(steps) -> list[dict]:
    """Share of each explanation style in every traces artifact of the addition task."""
    from collections import Counter

    from stages.artifacts.read import read_rows
    from stages.method.tasks import STYLES, TASK, explanation_style, is_helpful

    out = []
    for label, path, m in steps:
        if m.get("kind") != "traces":
            continue
        rows = [r for r in read_rows(path, "traces") if r.get("task") == TASK]
        if not rows:
            continue
        counts = Counter(explanation_style(r["explanation"], r["question"]) for r in rows)
        out.append({"step": label, "n": len(rows), **{k: counts.get(k, 0) / len(rows) for k in STYLES},
                    "helpful": sum(v for k, v in counts.items() if is_helpful(k)) / len(rows)})
    return out


# Stage checks of the demo (docs/demo.md "Stage checks"): what the next stage needs from a stage, measured on
# held-out questions by a step of that name. A run that misses one is no test of the claim: the report says so
# in one line instead of that run's differences between students.
REWARD_STUDENT_MIN = 0.8  # share of held-out questions the reward student answers (step eval-reward-student)
WARMUP_COLUMNS_MIN = 0.5  # right share of the warm-up teacher's sampled column work (step check-warmup)


def stage_checks(steps, acc: list[dict], styles: list[dict]) -> list[dict]:
    """One row per stage check found in the runs: {run, step, what, value, n, threshold, ok}."""
    out = []
    for label, path, _ in steps:
        run = _run_of(label) or "-"
        if path.name == "eval-reward-student":
            out += [{"run": run, "step": path.name, "what": f"{r['model']} answers the held-out questions",
                     "value": r["accuracy"], "n": r["n"], "threshold": REWARD_STUDENT_MIN,
                     "ok": r["accuracy"] >= REWARD_STUDENT_MIN} for r in acc if r["step"] == label]
        elif path.name == "check-warmup":
            for st in (s for s in styles if s["step"] == label):
                cols = st["columns"] + st["columns-wrong"]
                value = st["columns"] / cols if cols else 0.0
                out.append({"run": run, "step": path.name, "value": value, "n": round(cols * st["n"]),
                            "what": "right column work among the warm-up teacher's sampled column work",
                            "threshold": WARMUP_COLUMNS_MIN, "ok": cols > 0 and value >= WARMUP_COLUMNS_MIN})
    return out


def reward_vs_accuracy(steps, acc: list[dict]) -> list[dict]:
    """Pairs (mean RLT reward of `score-X`, accuracy of `student-X`) within each run (demo-correlation)."""
    from stages.artifacts.read import read_rows

    out = []
    for label, path, m in steps:
        name = path.name
        if m.get("kind") != "traces" or not name.startswith("score-"):
            continue
        student = "student-" + name[len("score-"):]
        hit = next((r for r in acc if r["model"] == student and _run_of(r["step"]) == _run_of(label)), None)
        if hit is None:
            continue
        rewards = [r["reward"] for r in read_rows(path, "traces") if r.get("reward") is not None]
        if rewards:
            out.append({"run": _run_of(label), "traces": name, "student": student, "rows": len(rewards),
                        "reward_mean": sum(rewards) / len(rewards), "accuracy": hit["accuracy"], "ci95": hit["ci95"]})
    return out


# ----------------------------------------------------------------------------- plots


def reward_title(key: str) -> str:
    """A reward panel's title: what the column holds in words, then its name (REWARD_TITLES)."""
    return f"{REWARD_TITLES.get(key, reward_record.HELP.get(key, key))} [{key}]"


def _plot_reward(path: Path, label: str, rows: list[dict], out: Path) -> bool:
    import textwrap

    import matplotlib.pyplot as plt

    keys = [k for k in REWARD_KEYS if series(rows, k)[1]]
    if not keys:
        return False
    fig, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 3.4), squeeze=False)
    for ax, k in zip(axes[0], keys):
        xs, ys = series(rows, k)
        ax.plot(xs, ys, lw=0.8, alpha=0.5, label="per step")
        w = max(1, len(ys) // 10)  # moving average shows the trend through GRPO noise
        ax.plot(xs[w - 1:], [sum(ys[i - w + 1:i + 1]) / w for i in range(w - 1, len(ys))], lw=2,
                label=f"mean of {w} steps")
        ax.set_title(textwrap.fill(reward_title(k), 30), fontsize=9)
        ax.set_xlabel("training step")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Teacher RL ({label}): the reward and its parts per step, averaged over the step's completions")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def _plot_loss(curves: dict[str, list[dict]], out: Path) -> bool:
    import matplotlib.pyplot as plt

    curves = {k: v for k, v in curves.items() if series(v, "loss")[1]}
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, rows in curves.items():
        ax.plot(*series(rows, "loss"), label=label)
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (cross-entropy, nats per token)")
    ax.set_yscale("log")
    ax.set_title("Training loss of each distill step")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def _plot_scatter(points: list[dict], r: float | None, out: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    xs, ys = [p["reward_mean"] for p in points], [100 * p["accuracy"] for p in points]
    err = [[max(0.0, 100 * (p["accuracy"] - p["ci95"][0])) for p in points],
           [max(0.0, 100 * (p["ci95"][1] - p["accuracy"])) for p in points]]
    ax.errorbar(xs, ys, yerr=err, fmt="o", capsize=3)
    for p, x, y in zip(points, xs, ys):
        ax.annotate(p["traces"].removeprefix("score-"), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("mean RLT reward of the trace set")
    ax.set_ylabel("student accuracy % (95 % interval)")
    ax.set_title("reward vs accuracy" + (f" (Pearson r = {r:.2f})" if r is not None else ""))
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def accuracy_labels(rows: list[dict]) -> list[str]:
    """A bar's label: model and benchmark, and the eval step (`run/step` of several runs) when the report holds
    more than one, so the evals of one model at three moments read apart."""
    several = len({r["step"] for r in rows}) > 1
    return [f"{r['model']}\n{r['benchmark']}" + (f"\n({r['step']})" if several else "") for r in rows]


def _plot_accuracy(rows: list[dict], out: Path) -> bool:
    import matplotlib.pyplot as plt

    if not rows:
        return False
    labels = accuracy_labels(rows)
    acc = [100 * r["accuracy"] for r in rows]
    err = [[max(0.0, 100 * (r["accuracy"] - r["ci95"][0])) for r in rows],  # rounding can cross 0
           [max(0.0, 100 * (r["ci95"][1] - r["accuracy"])) for r in rows]]
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(rows)), 4.4))
    ax.bar(range(len(rows)), acc, yerr=err, capsize=4, color="tab:blue")
    for i, (a, hi) in enumerate(zip(acc, err[1])):  # the value above its interval, where no bar hides it
        ax.annotate(f"{a:.1f} %", (i, a + hi), xytext=(0, 3), textcoords="offset points", ha="center",
                    fontsize=8)
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylabel("accuracy % (95 % Wilson interval)")
    ax.set_ylim(0, 108)
    ax.set_yticks(range(0, 101, 20))
    ax.set_title("Accuracy per model, benchmark and eval step" if "\n(" in labels[0] else
                 "Accuracy per model and benchmark", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


# ----------------------------------------------------------------------------- markdown


def _md_table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def accuracy_markdown(rows: list[dict]) -> list[str]:
    return _md_table(
        ["eval step", "model", "benchmark", "n", "accuracy %", "95 % interval", "tag format %", "mean tokens",
         "truncated %"],
        [[r["step"], r["model"], r["benchmark"], r["n"], f"{100 * r['accuracy']:.1f}",
          f"{100 * r['ci95'][0]:.1f}-{100 * r['ci95'][1]:.1f}",
          "-" if r.get("format_rate") is None else f"{100 * r['format_rate']:.1f}",  # evals before the format rate
          f"{r['mean_response_tokens']:.0f}", f"{100 * r['truncation_rate']:.1f}"] for r in rows])


DIFFERENCE_COLUMNS = ["run", "benchmark", "difference", "points", "95 % interval", "excludes 0"]


def difference_cells(d: dict) -> list[str]:
    """A row of `differences` as table cells (DIFFERENCE_COLUMNS), in points."""
    return [d["run"], d["benchmark"], d["pair"], f"{100 * d['difference']:+.1f}",
            f"{100 * d['ci95'][0]:+.1f} to {100 * d['ci95'][1]:+.1f}",
            "yes" if d["ci95"][0] > 0 or d["ci95"][1] < 0 else "no"]


def _differences_md(diffs: list[dict]) -> list[str]:
    if not diffs:
        return []
    return ["", "## Differences between students (95 % Newcombe interval)", ""] + _md_table(
        DIFFERENCE_COLUMNS, [difference_cells(d) for d in diffs])


def _checks_md(checks: list[dict]) -> list[str]:
    """The stage checks as a table, then one line per run that missed one (its differences left out)."""
    if not checks:
        return []
    lines = ["", "## Stage checks (held-out questions)", ""] + _md_table(
        ["run", "step", "check", "n", "%", "needs %", "passed"],
        [[c["run"], c["step"], c["what"], c["n"], f"{100 * c['value']:.1f}", f">= {100 * c['threshold']:.0f}",
          "yes" if c["ok"] else "NO"] for c in checks])
    return lines + [f"\n**{line}**" for line in missed_checks(checks)]


def missed_checks(checks: list[dict]) -> list[str]:
    """One line per run that missed a stage check (its first miss), saying its differences are left out."""
    failed: dict[str, dict] = {}
    for c in checks:
        if not c["ok"]:
            failed.setdefault(c["run"], c)
    return [f"{run}: not a test of the claim - {c['step']}: {c['what']}: {100 * c['value']:.1f} % of {c['n']} "
            f"(needs >= {100 * c['threshold']:.0f} %); its students' differences are left out."
            for run, c in failed.items()]


def _correlation_md(points: list[dict], corr: float | None, out: Path) -> list[str]:
    if not points:
        return []
    lines = ["", "## RLT reward of a trace set vs accuracy of its student", ""]
    lines += _md_table(["run", "traces", "rows", "mean reward", "student", "accuracy %", "95 % interval"],
                       [[p["run"], p["traces"], p["rows"], f"{p['reward_mean']:.3f}", p["student"],
                         f"{100 * p['accuracy']:.1f}", f"{100 * p['ci95'][0]:.1f}-{100 * p['ci95'][1]:.1f}"]
                        for p in points])
    lines += ["", f"Pearson correlation over {len(points)} trace sets: "
              + (f"{corr:.3f}" if corr is not None else "n/a (fewer than 3 sets or no spread)") + "."]
    _plot_scatter(points, corr, out / "reward_vs_accuracy.png")
    return lines + ["", "![reward vs accuracy](reward_vs_accuracy.png)"]


def _styles_md(styles: list[dict]) -> list[str]:
    if not styles:
        return []
    from stages.method.tasks import STYLES

    return ["", "## Explanation style (helpful = the column work, right and in order)", ""] + _md_table(
        ["traces", "rows", "helpful %", *(f"{k} %" for k in STYLES)],
        [[r["step"], r["n"], f"{100 * r['helpful']:.1f}", *(f"{100 * r[k]:.1f}" for k in STYLES)] for r in styles])


def _training_md(steps, out: Path) -> list[str]:
    lines = []
    metrics = {lbl: read_metrics(p) for lbl, p, _ in steps}
    teach = [(lbl, rows) for lbl, rows in metrics.items() if series(rows, "reward")[1]]
    for i, (lbl, rows) in enumerate(teach):
        name = "teacher_reward.png" if i == 0 else f"teacher_reward_{i}.png"
        lines += ["", f"## Teacher reward: {lbl}", ""]
        trend = fifths(series(rows, "reward")[1])
        if trend:
            lines.append(f"Mean RLT reward, first fifth of steps {trend[0]:.3f} -> last fifth {trend[1]:.3f}.")
        if _plot_reward(Path(lbl), lbl, rows, out / name):
            lines += ["", f"![teacher reward]({name})"]
    if _plot_loss({lbl: rows for lbl, rows in metrics.items() if not series(rows, "reward")[1]}, out / "loss.png"):
        lines += ["", "## Training loss", "", "![loss](loss.png)"]
    return lines


def run(cfg: ReportConfig) -> dict:
    """Collect the runs, draw the plots, write report.md; returns its path, accuracy, accuracy per group
    (`group_rows`), the questions skipped for their gold, differences, explanation styles and the
    reward-accuracy correlation."""
    import matplotlib

    matplotlib.use("Agg")
    check_config(cfg)
    steps = find_steps(cfg.runs)
    acc = accuracy_rows(steps)
    check_pairs(cfg.compare, [r["model"] for r in acc])
    out = Path(cfg.out) if cfg.out else Path(cfg.runs[0]) / "report"
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out} exists and is a file")
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# rlt report: {', '.join(cfg.runs)}", "", "## Steps", ""]
    lines += _md_table(["step", "kind", "rows", "seconds"],
                       [[lbl, m.get("kind"), m.get("rows"), m.get("timings", {}).get("seconds", "")]
                        for lbl, _, m in steps])
    if acc:
        lines += ["", "## Accuracy", ""] + accuracy_markdown(acc)
        if _plot_accuracy(acc, out / "accuracy.png"):
            lines += ["", "![accuracy](accuracy.png)"]
    groups, skipped = group_rows(steps), skipped_golds(steps)
    lines += _groups_md(groups, skipped)
    styles = style_rows(steps)
    checks = stage_checks(steps, acc, styles)
    failed = {ch["run"] for ch in checks if not ch["ok"]}
    diffs = [d for d in differences(acc, cfg.compare) if d["run"] not in failed]
    points = reward_vs_accuracy(steps, acc)
    corr = pearson([p["reward_mean"] for p in points], [p["accuracy"] for p in points])
    lines += _checks_md(checks) + _differences_md(diffs) + _correlation_md(points, corr, out) + _styles_md(styles)
    lines += _training_md(steps, out)
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return {"path": out / "report.md", "accuracy": acc, "groups": groups, "skipped_golds": skipped,
            "differences": diffs, "styles": styles, "checks": checks,
            "correlation": {"pearson": corr, "points": points}}
