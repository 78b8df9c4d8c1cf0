"""The executor interface and what every executor shares: the run's context and the plan of each step.

An executor gets a `Context` (the pipeline's parsed steps, its folder, the steps forced by --from or
--force, the `rlt run` options) and implements:

- `check()`: refuse bad input with one UserError line before anything starts or is submitted
  (a missing scheduler command, a resource the backend cannot give);
- `execute()`: run or submit every step that is not complete, in order; returns one record per
  step (`step`, `command`, `action`, `reason`, and where known `seconds`, `job`, `log`,
  `resources`); with `context.plan_only` it returns what it would do and does nothing;
- `preflight(records)`: what would fail in the steps a plan runs (inputs; `check_resources`: what a
  cluster executor checks of their resources with its scheduler), every problem at once;
- `job_states()`: step -> what it knows of that step's jobs (`state`, `job`, `log`, `error`,
  `live`), read from its own records; `{}` when it keeps none (the local executor: the output's
  state says it all).

Every executor runs each job as `stages.pipelines.jobs.run_job` does (the local one calls it, a
cluster job runs `rlt run --job SPEC.json`), so the outputs are the same wherever they ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stages.pipelines.plan import Step, build_config, describe_resources, earlier_seconds, meta_dir, why_run
from stages.pipelines.preflight import Findings, check_inputs


@dataclass
class Context:
    name: str  # the pipeline
    steps: list[Step]
    runs: Path
    forced: dict[str, str] = field(default_factory=dict)  # step -> why it is forced (--from, --force)
    plan_only: bool = False
    options: Any = None  # the RunConfig

    @property
    def meta(self) -> Path:
        return meta_dir(self.runs, self.name)

    @property
    def by_name(self) -> dict[str, Step]:
        return {s.name: s for s in self.steps}


RUNS = ("run", "resume", "submit")  # the actions of a step that runs (or is submitted)


def record(step: Step, action: str, reason: str, **extra) -> dict:
    return {"step": step.name, "command": step.command, "out": str(step.out), "action": action, "reason": reason,
            **{k: v for k, v in extra.items() if v is not None}}


class Executor:
    """Runs (or submits) the jobs of a pipeline; see the module docstring."""

    name = ""

    def __init__(self, context: Context):
        self.ctx = context

    def check(self) -> None:
        """UserError (one line) when this executor cannot run the pipeline here; nothing has started yet."""

    def execute(self) -> list[dict]:
        raise NotImplementedError

    def job_states(self) -> dict[str, dict]:
        return {}

    def preflight(self, records: list[dict]) -> Findings:
        """Problems (each one line) and notes about the steps the plan `records` would run, found before any
        runs: their inputs (every executor) and their resources (`check_resources`, a cluster executor's)."""
        found = Findings()
        found.problems += [f"step '{r['step']}': {r['reason']}" for r in records if r["action"] == "refuse"]
        runs = {r["step"] for r in records if r["action"] in RUNS}
        steps = [s for s in self.ctx.steps if s.name in runs]
        for i, step in enumerate(self.ctx.steps):
            if step.name in runs:
                check_inputs(step, build_config(step), self.ctx.steps[:i], found)
        self.check_resources(steps, found)
        return found

    def check_resources(self, steps: list[Step], found: Findings) -> None:
        """Add what is wrong with the resources of `steps` here (the local executor ignores resources)."""

    def plan(self, inflight: dict[str, Any] | None = None, resources: bool = False) -> list[dict]:
        """What would run and why, one record per step; nothing runs. `inflight`: steps whose jobs are
        already queued or running elsewhere (they count as running first)."""
        inflight = dict(inflight or {})
        rerun, records = set(inflight), []
        for step in self.ctx.steps:
            if step.name in inflight:
                records.append(record(step, "running", inflight[step.name]))
                continue
            cfg = build_config(step)
            verdict = why_run(step, cfg, rerun, self.ctx.forced, self.ctx.by_name)
            seconds = earlier_seconds(step.out)
            res = describe_resources(step.resources, step.shards) if resources else None
            if verdict.action == "skip":
                records.append(record(step, "skip", "up to date", seconds=seconds, resources=res))
                continue
            rerun.add(step.name)
            what = f"{verdict.reason}; {step.shards} shards, then a merge" if step.shards else verdict.reason
            records.append(record(step, verdict.action, what, seconds=seconds, resources=res))
        return records
