"""How a command's result is shown on stdout: one renderer per command, a default for the rest.

Every command also takes `--json`: the result as one JSON object on stdout instead (for scripts):
`{"path", "kind", "rows"}` for an artifact, plus `summary` for eval; the report's tables; the
inspected facts; the pipeline's step records.

Numbers read the same everywhere: shares as percentages with one decimal and a `%` sign,
intervals as `lo-hi %`, counts with their noun in the right number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from stages import records
from stages.progress import console, plural

WIDE = 6  # columns above which `rlt inspect` shows rows as columns (one line per field)


def pct(x: float | None) -> str:
    """A share as `57.5 %` (`-` when there is none)."""
    return "-" if x is None else f"{100 * x:.1f} %"


def interval(ci: list[float] | tuple[float, float]) -> str:
    """A 95 % interval of shares as `52.6-62.3 %`."""
    return f"{100 * ci[0]:.1f}-{100 * ci[1]:.1f} %"


def _table(title: str | None, columns: tuple[str, ...], rows: list[tuple], right: tuple[str, ...] = ()) -> None:
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left")
    for row in rows:
        table.add_row(*map(str, row))
    console().print(table)


def _manifest(path: Any) -> dict:
    from stages.artifacts.layout import read_manifest

    return (read_manifest(Path(path)) if Path(path).is_dir() else None) or {}


def artifact(path: Any) -> None:
    """`<kind> artifact: <path>`, the kind read from the manifest."""
    click.echo(f"{_manifest(path).get('kind', 'output')} artifact: {path}")


def eval_table(summary: dict, title: str | None = "rlt eval") -> None:
    """The eval summary: per model and benchmark (and per group of a benchmark: level, subject, domain),
    questions, accuracy with its interval, pass@k, the share in the tag format, tokens, truncation; then the
    questions left out for an unreadable gold (--skip-unreadable-golds), counted."""
    from stages.progress import display_names

    models = summary["models"]
    names = display_names(list(models))
    ks = sorted({k for m in models.values() for k in m["overall"] if k.startswith("pass@") and k != "pass@1"},
                key=lambda k: int(k[5:]))
    rows = []
    for model, m in models.items():
        entries = list(m["benchmarks"].items())
        if len(entries) > 1:
            entries.append(("overall", m["overall"]))
        groups = m.get("groups", {})
        for name, s in entries:
            for label, st in [(name, s)] + [(f"  {column} {value}", g) for column, values in groups.get(name, {}).items()
                                            for value, g in values.items()]:
                rows.append((names[model], label, st["n"], pct(st["accuracy"]), interval(st["ci95"]),
                             *[pct(st[k]) if k in st else "" for k in ks], pct(st.get("format_rate")),
                             f"{st['mean_response_tokens']:.0f}", pct(st["truncation_rate"])))
    columns = ("model", "benchmark", "questions", "accuracy", "95 % CI", *ks, "tag format", "mean tokens", "truncated")
    _table(title, columns, rows, right=tuple(columns[2:]))
    skipped = summary.get("skipped_golds")
    if skipped:
        ids = ", ".join(skipped["ids"][:10]) + (" ..." if len(skipped["ids"]) > 10 else "")
        click.echo(f"skipped {plural(skipped['count'], 'question')} with no readable gold (ids: {ids}); "
                   "all listed in the summary and the manifest")


def eval_summary(path: Any) -> None:
    from stages.commands.evaluate import read_summary

    eval_table(read_summary(path))
    artifact(path)


def report(result: dict) -> None:
    rows = [(r["step"], r["model"], r["benchmark"], r["n"], pct(r["accuracy"]), interval(r["ci95"]))
            for r in result["accuracy"]]
    _table("accuracy (95 % interval)", ("eval step", "model", "benchmark", "questions", "accuracy", "95 % CI"),
           rows, right=("questions", "accuracy", "95 % CI"))
    from stages.commands.report import DIFFERENCE_COLUMNS, difference_cells, missed_checks

    if result["differences"]:
        _table("differences between students (Newcombe)", DIFFERENCE_COLUMNS,
               [difference_cells(d) for d in result["differences"]], right=("points", "95 % interval"))
    for line in missed_checks(result["checks"]):
        click.echo(line)
    click.echo(f"report: {result['path']}")


def pipeline(records: list[dict], plan: bool) -> None:
    """`rlt run`: one row per step (a run, --plan, --status; a cluster's job and resources when known), or
    one per pipeline (--list)."""
    if records and "pipeline" in records[0]:
        rows = [(r["pipeline"], "-" if r.get("steps") is None else r["steps"], r["description"], r["source"])
                for r in records]
        _table("pipelines", ("pipeline", "steps", "description", "source"), rows)
        return
    extra = [c for c in ("job", "resources") if any(r.get(c) for r in records)]
    rows = [(r["step"], r["command"], r["action"], r["reason"], *(r.get(c, "") for c in extra), r.get("seconds", ""))
            for r in records]
    columns = ("step", "command", "action", "reason", *extra, "earlier run (s)" if plan else "seconds")
    _table("plan" if plan else "pipeline", columns, rows)
    if getattr(records, "estimates", None):
        estimates_table(records.estimates)
    for note in (getattr(records, "preflight", None) or {}).get("notes", []):
        click.echo(f"note: {note}")


def _num(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    text = f"{x / 1e9:.2f}B" if x >= 1e9 else f"{x / 1e6:.1f}M" if x >= 1e6 else f"{x:,.0f}" if x >= 100 else f"{x:.2f}"
    return text + unit


def estimates_table(est: dict) -> None:
    """`rlt run --plan`: per step the model's parameters, GPUs, memory per device, tokens and GPU-hours."""
    rows = []
    for r in est["steps"]:
        tokens = ", ".join(f"{k} {_num(v)}" for k, v in (r.get("tokens") or {}).items())
        mem = (r.get("memory") or {}).get("per_device_gib")
        rows.append((r["step"], _num(r.get("params")), r.get("gpus", "-"), "-" if mem is None else f"{mem:.1f}",
                     tokens or r.get("unknown", "-"), _num(r.get("gpu_hours")), _num(r.get("wall_hours"))))
    total = est["total"]
    rows.append(("total", "", "", "", ", ".join(f"{k} {_num(v)}" for k, v in total["tokens"].items()),
                 _num(total["gpu_hours"]), ""))
    gpu = est["gpu"]
    _table(f"estimates on {gpu} ({est['gpu_figures']['bf16_tflops']} BF16 TFLOP/s, MFU "
           f"{est['efficiency']['mfu']['value']:.0%}; stages/pipelines/throughput.yaml)",
           ("step", "params", "GPUs", f"GiB per {gpu}", "tokens", f"{gpu}-hours", "wall hours"), rows,
           right=("params", "GPUs", f"GiB per {gpu}", f"{gpu}-hours", "wall hours"))


def _cell(v: Any, width: int) -> str:
    s = "" if v is None else str(v)
    return s if len(s) <= width else s[: width - 1] + "…"


def _whole(rows: list[dict], names: list[str]) -> None:
    """Rows one after another, one line per column with its whole value (continuation lines indented)."""
    for i, r in enumerate(rows, 1):
        click.echo(f"row {i} of {len(rows)}")
        for n in names:
            value = "" if r.get(n) is None else str(r.get(n))
            click.echo(f"  {n}: " + value.replace("\n", "\n" + " " * (len(n) + 4)))


def inspect(info: dict, cfg: Any) -> None:
    """`rlt inspect`: the state line first, then the manifest, what the artifact holds, its schema and rows.

    Up to WIDE columns the rows are a table; wider artifacts (traces have 25 columns) are shown
    turned: one line per column, its type and the values of the first rows. The rows of `--row` are
    shown whole, one after another; `--row`/`--where` first say how many rows match.
    """
    from rich.markup import escape
    from rich.table import Table

    con = console()
    color = {"complete": "green", "interrupted": "yellow", "running": "cyan", "conflicting": "red"}.get(
        info["state"], "bold")
    con.print(f"[bold]{escape(cfg.path)}[/]: [{color}]{escape(info['state_line'])}[/]")
    if info["state"] == "folder":
        _table(None, ("artifact", "state"), [(a["path"], a["state_line"]) for a in info["artifacts"]])
        return
    m = info["manifest"]
    if m:
        con.print(escape(f"  {m.get('kind')} artifact, {plural(m.get('rows') or 0, 'row')}, config "
                         f"{m.get('config_hash')}, schema version {m.get('schema_version', 1)}, "
                         f"rlt {m.get('rlt_version')}, created {m.get('created')}"))
        for name, inp in (m.get("inputs") or {}).items():
            con.print(escape(f"  input {name}: {inp['path']} ({inp['hash']})"))
    if info.get("training"):
        t = info["training"]
        parts = [plural(t["steps"] or 0, "step")] + \
            [f"final {k} {t[f'final_{k}']:.4g}" for k in ("loss", "reward") if t.get(f"final_{k}") is not None]
        con.print("  training: " + ", ".join(parts))
    if info.get("summary"):
        eval_table(info["summary"], title="accuracy")
    if info.get("schema"):
        con.print("schema: " + escape(", ".join(f"{n}:{t}" for n, t in info["schema"])))
    head, names = info.get("head") or [], [n for n, _ in info.get("schema") or []]
    if "matched" in info:  # --row / --where
        chosen = [*cfg.where, *([f"id={cfg.row}"] if cfg.row else [])]
        con.print(escape(f"{info['matched']:,} of {plural(info['rows'], 'row')} with {' and '.join(chosen)}" +
                         ("" if cfg.row or len(head) == info["matched"] else f" (the first {len(head)} shown)")))
    if not head:
        return
    if cfg.row:
        _whole(head, names)
        return
    if len(names) > WIDE:
        t = Table(show_lines=True)
        t.add_column("column", no_wrap=True)
        t.add_column("type", no_wrap=True)
        for i in range(len(head)):
            t.add_column(f"row {i}", overflow="fold", max_width=cfg.width)
        types = dict(info["schema"])
        for n in names:
            t.add_row(escape(n), escape(types[n]), *[escape(_cell(r.get(n), cfg.width)) for r in head])
    else:
        t = Table(show_lines=True)
        for n in names:
            t.add_column(n, overflow="fold", max_width=cfg.width)
        for r in head:
            t.add_row(*[escape(_cell(r.get(n), cfg.width)) for n in names])
    con.print(t)


def json_of(command: str, cfg: Any, result: Any) -> dict | list:
    """The result of `command` as plain data for `--json`."""
    if command == "run":
        data = {"pipeline": cfg.name, "steps": list(result)}
        if getattr(result, "estimates", None) is not None:
            data.update(preflight=result.preflight, estimates=result.estimates)
        return data
    if isinstance(result, (str, Path)):
        m = _manifest(result)
        data = {"path": str(result), "kind": m.get("kind"), "rows": m.get("rows")}
        if command == "eval":
            from stages.commands.evaluate import read_summary

            data["summary"] = read_summary(result)
        return data
    return result


def show(command: str, cfg: Any, result: Any, as_json: bool = False) -> None:
    """Print `result` of `command` (nothing for None); `as_json`: one JSON object instead."""
    if as_json:
        click.echo(records.dumps(json_of(command, cfg, result), default=str))
        return
    if not result:
        return
    if command == "eval":
        eval_summary(result)
    elif command == "report":
        report(result)
    elif command == "run":
        pipeline(result, cfg.plan)
    elif command == "inspect":
        inspect(result, cfg)
    elif isinstance(result, (str, Path)):
        artifact(result)
