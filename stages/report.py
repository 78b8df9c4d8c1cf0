"""`rlt report RUN... --out D`: a markdown report with PNG plots of one or more runs.

    rlt report runs/demo --out runs/demo/report

Input: run directories (`runs/<pipeline>`, whose sub-directories are step
artifacts) or step artifacts themselves. Reads each step's manifest,
`metrics.jsonl` (training stages) and `summary.json` (eval). Output: `D/report.md`
with the step table, the accuracy table (95 % intervals) and the teacher's
reward trend, plus `teacher_reward.png`, `loss.png` and `accuracy.png`.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from stages.artifacts import read_manifest
from stages.config import opt
from stages.errors import UserError

log = logging.getLogger(__name__)
REWARD_KEYS = ("reward", "sol_logp_mean", "sol_logp_min", "kl_mean", "kl_max")


@dataclass
class ReportConfig:
    """Options of `rlt report`."""

    runs: list[str] = opt(list, "Run directories (or step artifacts) to report on.", arg=True)
    out: str = opt("", "Output directory for report.md and the PNG plots.", hash=False, flag=True)


# ----------------------------------------------------------------------------- collecting


def find_steps(paths: list[str]) -> list[tuple[str, Path, dict]]:
    """(label, dir, manifest) of every complete artifact in the given runs, in time order."""
    steps = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise UserError(f"run not found: {p}")
        candidates = [p] if read_manifest(p) else sorted(c for c in p.iterdir() if c.is_dir())
        for c in candidates:
            m = read_manifest(c)
            if m:
                label = c.name if len(paths) == 1 else f"{p.name}/{c.name}"
                steps.append((label, c, m))
    if not steps:
        raise UserError(f"no finished artifacts under {', '.join(paths)}")
    return sorted(steps, key=lambda s: s[2].get("created", ""))


def read_metrics(path: Path) -> list[dict]:
    f = path / "metrics.jsonl"
    if not f.is_file():
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


def accuracy_rows(steps) -> list[dict]:
    """One row per (eval step, model, benchmark) from summary.json files."""
    out = []
    for label, path, m in steps:
        f = path / "summary.json"
        if m.get("kind") != "eval" or not f.is_file():
            continue
        for model, s in json.loads(f.read_text())["models"].items():
            for bench, st in s["benchmarks"].items():
                out.append({"step": label, "model": Path(model).name, "benchmark": bench, **st})
    return out


# ----------------------------------------------------------------------------- plots


def _plot_reward(path: Path, label: str, rows: list[dict], out: Path) -> bool:
    import matplotlib.pyplot as plt

    keys = [k for k in REWARD_KEYS if series(rows, k)[1]]
    if not keys:
        return False
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3), squeeze=False)
    for ax, k in zip(axes[0], keys):
        xs, ys = series(rows, k)
        ax.plot(xs, ys, lw=0.8, alpha=0.5)
        w = max(1, len(ys) // 10)  # moving average shows the trend through GRPO noise
        ax.plot(xs[w - 1:], [sum(ys[i - w + 1:i + 1]) / w for i in range(w - 1, len(ys))], lw=2)
        ax.set_title(k)
        ax.set_xlabel("step")
    fig.suptitle(f"teacher RLT reward: {label}")
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
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def _plot_accuracy(rows: list[dict], out: Path) -> bool:
    import matplotlib.pyplot as plt

    if not rows:
        return False
    labels = [f"{r['model']}\n{r['benchmark']}" for r in rows]
    acc = [100 * r["accuracy"] for r in rows]
    err = [[max(0.0, 100 * (r["accuracy"] - r["ci95"][0])) for r in rows],  # rounding can cross 0
           [max(0.0, 100 * (r["ci95"][1] - r["accuracy"])) for r in rows]]
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(rows)), 4))
    ax.bar(range(len(rows)), acc, yerr=err, capsize=4, color="tab:blue")
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylabel("accuracy % (95 % interval)")
    ax.set_ylim(0, 100)
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
        ["eval step", "model", "benchmark", "n", "accuracy %", "95 % interval", "mean tokens", "truncated %"],
        [[r["step"], r["model"], r["benchmark"], r["n"], f"{100 * r['accuracy']:.1f}",
          f"{100 * r['ci95'][0]:.1f}-{100 * r['ci95'][1]:.1f}", f"{r['mean_response_tokens']:.0f}",
          f"{100 * r['truncation_rate']:.1f}"] for r in rows])


def run(cfg: ReportConfig) -> dict:
    """Collect the runs, draw the plots, write report.md; returns its path and accuracy rows."""
    import matplotlib

    matplotlib.use("Agg")
    if not cfg.runs or not cfg.out:
        raise UserError("give run directories and --out")
    steps = find_steps(cfg.runs)
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out} exists and is a file")
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# rlt report: {', '.join(cfg.runs)}", "", "## Steps", ""]
    lines += _md_table(["step", "kind", "rows", "seconds"],
                       [[lbl, m.get("kind"), m.get("rows"), m.get("timings", {}).get("seconds", "")]
                        for lbl, _, m in steps])
    acc = accuracy_rows(steps)
    if acc:
        lines += ["", "## Accuracy", ""] + accuracy_markdown(acc)
        if _plot_accuracy(acc, out / "accuracy.png"):
            lines += ["", "![accuracy](accuracy.png)"]
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
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return {"path": out / "report.md", "accuracy": acc}
