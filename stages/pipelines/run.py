"""`rlt run`: named pipelines of stages, resumable step by step.

The shipped pipelines (`demo`, `demo-correlation`, `paper`) are package data
(stages/pipelines/pipelines.yaml) and run from any directory; `--file F` adds
the pipelines of F, replacing shipped ones of the same name.

    rlt run demo                      # everything, skipping steps already done
    rlt run demo --plan               # what would run, and why
    rlt run demo --from teach --force # re-run teach and everything after it

A pipeline is a mapping of steps; each step names a command and its options
(the command's config keys). `${step}` in an option refers to that earlier
step's output directory, `runs/<pipeline>/<step>`. A step is skipped when its
output holds a complete manifest whose config hash and input hashes match;
a changed config or input re-runs it, and every step downstream of a re-run
step re-runs too.

Pipeline variables: a pipeline may declare `vars: {seed: 0}`; `${seed}` in an
option is then that variable's value (YAML-typed), overridden per run with
`rlt run demo --var seed=1 --runs runs/seed1` (another `--runs` folder keeps
each run's outputs apart).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stages.artifacts.state import output_state
from stages.commands import STEPS, call, make_config
from stages.config import load_yaml, opt, yaml_value
from stages.errors import UserError

log = logging.getLogger(__name__)
SHIPPED = Path(__file__).with_name("pipelines.yaml")
REF = re.compile(r"\$\{([A-Za-z0-9_.-]+)\}")


@dataclass
class RunConfig:
    """Options of `rlt run`."""

    name: str = opt("demo", "Pipeline to run (a key of the pipelines file).", arg=True)
    file: str | None = opt(None, "Pipelines file whose pipelines add to the shipped ones (same name: replaces).",
                           flag=True)
    runs: str = opt("runs", "Directory holding runs/<name>/<step> outputs.", flag=True)
    start: str | None = opt(None, "Re-run from this step (it and every later step).", flag="--from")
    until: str | None = opt(None, "Stop after this step.", flag=True)
    force: bool = opt(False, "With --from: re-run those steps even if complete; alone: re-run all.", flag=True)
    plan: bool = opt(False, "Print what would run and why, run nothing.", flag=True)
    vars: dict = opt(dict, "Pipeline variables NAME=VALUE, replacing ${NAME} in step options "
                           "(the pipeline's `vars` declares them and their defaults).", flag="--var")


@dataclass
class Step:
    name: str
    command: str
    options: dict
    out: Path
    needs: list[str] = field(default_factory=list)


def load_pipelines(path: str | Path) -> dict[str, dict]:
    """The file's pipelines (name -> spec), each validated."""
    data = load_yaml(path)
    if not data:
        raise UserError(f"{path} defines no pipeline")
    for name, spec in data.items():
        parse(name, spec, Path("runs"), str(path))
    return data


def available(file: str | None) -> tuple[dict[str, dict], str]:
    """(the shipped pipelines with `file`'s added or replacing them by name, the source to name in errors)."""
    if file is None:
        return load_pipelines(SHIPPED), "the shipped pipelines"
    return {**load_yaml(SHIPPED), **load_pipelines(file)}, file


def pipeline_vars(spec: dict, overrides: dict, where: str) -> dict[str, Any]:
    """Declared variables with `overrides` applied; UserError on an undeclared one.

    Override values given as text are read as YAML scalars (`seed=1` -> 1).
    """
    declared = spec.get("vars") or {}
    if not isinstance(declared, dict):
        raise UserError(f"{where}: 'vars' must be a mapping of NAME: default")
    clash = set(declared) & set(spec["steps"])
    if clash:
        raise UserError(f"{where}: {sorted(clash)} name both a variable and a step")
    unknown = set(overrides) - set(declared)
    if unknown:
        valid = ", ".join(sorted(declared)) or "none declared"
        raise UserError(f"{where}: unknown variable(s) {sorted(unknown)} (valid: {valid})")
    values = dict(declared)
    for k, v in overrides.items():
        try:
            values[k] = yaml_value(v) if isinstance(v, str) else v
        except ValueError as e:
            raise UserError(f"{where}: variable {k} {e}") from None
    return values


def parse(name: str, spec: Any, runs: Path, source: str = "pipelines", overrides: dict | None = None) -> list[Step]:
    """Validate one pipeline spec and return its steps in order, references resolved."""
    where = f"{source}: pipeline '{name}'"
    if not isinstance(spec, dict) or not isinstance(spec.get("steps"), dict) or not spec["steps"]:
        raise UserError(f"{where} needs a non-empty 'steps' mapping")
    unknown = set(spec) - {"description", "vars", "steps"}
    if unknown:
        raise UserError(f"{where}: unknown keys {sorted(unknown)} (valid: description, vars, steps)")
    variables = pipeline_vars(spec, overrides or {}, where)
    steps: list[Step] = []
    for sname, s in spec["steps"].items():
        if not isinstance(s, dict) or s.get("command") not in STEPS:
            raise UserError(f"{where}, step '{sname}': 'command' must be one of {', '.join(STEPS)}")
        if set(s) - {"command", "options"}:
            raise UserError(f"{where}, step '{sname}': unknown keys {sorted(set(s) - {'command', 'options'})}")
        options = s.get("options") or {}
        if not isinstance(options, dict):
            raise UserError(f"{where}, step '{sname}': 'options' must be a mapping")
        step = Step(sname, s["command"], {}, runs / name / sname)
        step.options = _resolve_refs(options, {p.name: p for p in steps}, step, where, variables)
        steps.append(step)
    for step in steps:
        build_config(step)  # unknown keys and bad types surface before anything runs
    return steps


def _resolve_refs(value: Any, earlier: dict[str, Step], step: Step, where: str, variables: dict) -> Any:
    if isinstance(value, dict):
        return {k: _resolve_refs(v, earlier, step, where, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_refs(v, earlier, step, where, variables) for v in value]
    if not isinstance(value, str):
        return value
    whole = REF.fullmatch(value)
    if whole and whole.group(1) in variables:  # `seed: ${seed}` keeps the variable's type
        return variables[whole.group(1)]

    def sub(m: re.Match) -> str:
        ref = m.group(1)
        if ref in variables:
            return str(variables[ref])
        if ref not in earlier:
            raise UserError(f"{where}, step '{step.name}': ${{{ref}}} is not an earlier step or a variable")
        step.needs.append(ref)
        return str(earlier[ref].out)

    return REF.sub(sub, value)


def build_config(step: Step):
    """The stage config of a step (preset applied, `out` set to the step's directory)."""
    options = dict(step.options)
    preset = options.pop("preset", None)
    try:
        return make_config(step.command, preset=preset, options={**options, "out": str(step.out)})
    except UserError as e:
        raise UserError(f"step '{step.name}': {e}") from None


def why_run(step: Step, cfg, rerun: set[str]) -> tuple[str | None, bool]:
    """(reason to run or None when up to date, whether the old output must be replaced)."""
    if step.name in rerun:
        return "forced", True
    upstream = [n for n in step.needs if n in rerun]
    if upstream:
        return f"upstream step {upstream[0]} re-runs", True
    state = output_state(step.out, cfg=cfg, inputs=None)
    if state.status == "missing":
        return "no complete output yet", False
    if state.status == "interrupted":  # an interrupted run resumes
        return f"resume interrupted run ({state.so_far})", False
    if state.status == "conflicting":
        return "; ".join(state.differs), True
    return None, False


def run(cfg: RunConfig) -> list[dict]:
    """Run (or plan) a pipeline; returns one record per step with its action and seconds."""
    pipelines, source = available(cfg.file)
    if cfg.name not in pipelines:
        raise UserError(f"no pipeline {cfg.name!r} in {source} (has: {', '.join(pipelines)})")
    steps = parse(cfg.name, pipelines[cfg.name], Path(cfg.runs), source, cfg.vars)
    names = [s.name for s in steps]
    for opt_name, value in (("--from", cfg.start), ("--until", cfg.until)):
        if value is not None and value not in names:
            raise UserError(f"{opt_name} {value!r} is not a step of {cfg.name} (steps: {', '.join(names)})")
    if cfg.until:
        steps = steps[: names.index(cfg.until) + 1]
    forced = set(names[names.index(cfg.start):]) if cfg.start else (set(names) if cfg.force else set())
    records, rerun, start = [], set(forced), time.time()
    for k, step in enumerate(steps, 1):
        stage_cfg = build_config(step)
        reason, replace = why_run(step, stage_cfg, rerun)
        records.append({"step": step.name, "command": step.command, "out": str(step.out),
                        "action": "run" if reason else "skip", "reason": reason or "up to date"})
        where = f"[{k}/{len(steps)}] {step.name}"
        if reason is None:
            log.info("%s: skipped, up to date", where)
            continue
        rerun.add(step.name)
        if cfg.plan:
            continue
        log.info("%s: %s (%s)", where, step.command, reason)
        if replace and hasattr(stage_cfg, "force"):
            stage_cfg.force = True  # the pipeline owns its outputs: a stale one is replaced
        t0 = time.time()
        call(step.command, stage_cfg)
        records[-1]["seconds"] = round(time.time() - t0, 1)
        log.info("%s: done in %s, %s since the start", where, _clock(time.time() - t0), _clock(time.time() - start))
    return records


def _clock(seconds: float) -> str:
    """12.3 s, or m:ss / h:mm:ss past a minute."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"
