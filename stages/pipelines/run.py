"""`rlt run`: named pipelines of stages, resumable step by step, locally or on a cluster.

The shipped pipelines (`demo`, `demo-correlation`, `paper`) are package data
(stages/pipelines/pipelines.yaml) and run from any directory; `--file F` adds
the pipelines of F, replacing shipped ones of the same name.

    rlt run --list                               # the pipelines and what each does
    rlt run demo                                 # everything, skipping steps already done
    rlt run demo --plan                          # what would run, and why (and how long it took before)
    rlt run demo --from teach                    # re-run teach and every later step
    rlt run paper --executor slurm               # one Slurm job per step, with dependencies
    rlt run paper --executor slurm --plan        # what would be submitted, with each step's resources
    rlt run paper --status                       # each step: complete / running (job) / pending / failed (log)

A pipeline is a mapping of steps; each step names a command and its options
(the command's config keys), and may give `resources` (for a cluster) and
`shards: N` (generate, score, eval): see stages/pipelines/plan.py. `${step}` in
an option refers to that earlier step's output directory, `runs/<pipeline>/<step>`.
A step is skipped when its output holds a complete manifest whose config hash
and input hashes match; a changed config or input re-runs it.

Pipeline variables: a pipeline may declare `vars: {seed: 0}`; `${seed}` in an
option is then that variable's value (YAML-typed), overridden per run with
`rlt run demo --var seed=1 --runs runs/seed1`. A pipeline folder remembers the
values it ran with: a run with other values that would replace its finished
outputs is refused (give another `--runs`, or `--force` to replace them).

Executors (stages/pipelines/executors/): `local` runs the steps in this process,
in order; `slurm` submits them (`--slurm.KEY=VALUE` overrides every step's
resources). A SIGTERM stops a local run gracefully; the rerun resumes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from stages import records, secrets
from stages.commands import COMMANDS
from stages.config import check_config, opt
from stages.errors import Refused, UserError, did_you_mean
from stages.pipelines.executors import EXECUTORS, make
from stages.pipelines.executors.base import RUNS, Context, record
from stages.pipelines.jobs import Job, restart_count, run_job
from stages.pipelines.plan import (  # noqa: F401  (the pipeline API, re-exported for callers and tests)
    SHIPPED,
    Step,
    available,
    build_config,
    describe_resources,
    done_path,
    earlier_seconds,
    first_sentence,
    load_pipelines,
    meta_dir,
    minutes,
    parse,
    pipeline_vars,
    read_file,
    why_run,
)
from stages.pipelines.preflight import Findings

log = logging.getLogger(__name__)
RUN_RECORD = "run.json"  # in <runs>/<pipeline>/.pipeline/: the variables the folder's outputs were made with


@dataclass
class SlurmOptions:
    """`--slurm.KEY=VALUE`: resources for every step of a cluster run, over the pipeline's own."""

    nodes: int | None = opt(None, "Nodes per job (distill and teach with --launch only: one launcher per node).",
                            flag="--slurm.nodes")
    gpus_per_node: int | None = opt(None, "GPUs per node (sbatch --gpus-per-node).", flag="--slurm.gpus_per_node")
    cpus_per_task: int | None = opt(None, "CPUs per job's task (sbatch --cpus-per-task).",
                                    flag="--slurm.cpus_per_task")
    mem: str | None = opt(None, "Memory per node, e.g. 64G (sbatch --mem).", flag="--slurm.mem")
    time: str | None = opt(None, "Time limit: minutes or HH:MM:SS, D-HH:MM:SS (sbatch --time).", flag="--slurm.time")
    partition: str | None = opt(None, "Partition (sbatch --partition).", flag="--slurm.partition")
    account: str | None = opt(None, "Account (sbatch --account).", flag="--slurm.account")
    qos: str | None = opt(None, "Quality of service (sbatch --qos).", flag="--slurm.qos")
    constraint: str | None = opt(None, "Node features (sbatch --constraint).", flag="--slurm.constraint")


@dataclass
class RunConfig:
    """Options of `rlt run`."""

    name: str = opt("demo", "Pipeline to run (a key of the pipelines file).", arg=True)
    file: str | None = opt(None, "Pipelines file whose pipelines add to the shipped ones (same name: replaces).",
                           flag=True)
    runs: str = opt("runs", "Directory holding runs/<name>/<step> outputs.", flag=True)
    start: str | None = opt(None, "Re-run this step and every later step, even if complete.", flag="--from")
    until: str | None = opt(None, "Stop after this step.", flag=True)
    force: bool = opt(False, "Re-run every step, even if complete (also replaces outputs made with other --var "
                             "values); not with --from.", flag=True)
    plan: bool = opt(False, "Print what would run (or be submitted) and why, run nothing.", flag=True)
    status: bool = opt(False, "Print each step's state: complete, running or pending (its job), failed (its log), "
                              "not run; run nothing.", flag=True)
    list_pipelines: bool = opt(False, "List the pipelines (shipped and --file) with their descriptions.",
                               flag="--list/--no-list")
    vars: dict = opt(dict, "Pipeline variables NAME=VALUE, replacing ${NAME} in step options "
                           "(the pipeline's `vars` declares them and their defaults).", flag="--var")
    executor: str = opt("local", "Where the steps run: local (this process, in order) or slurm (one job per step, "
                                 "shards as job arrays, with dependencies).", flag=True, choices=tuple(EXECUTORS))
    slurm: SlurmOptions = opt(SlurmOptions, "Resources of every step on a cluster (--slurm.KEY=VALUE).")
    job: str | None = opt(None, "Run one job of a submitted pipeline from its spec file (what each cluster job "
                                "runs).", flag=True)
    smoke: bool = opt(False, "Run the pipeline's topology at toy sizes (tiny models of the same family, a few rows, "
                             "a few steps; the same launch presets and executor) under <runs>/smoke/: proves the "
                             "path before the real run.", flag=True)
    gpu: str = opt("H100", "GPU kind of the plan's estimates (a name of the throughput table).", flag=True)
    throughput: str | None = opt(None, "A throughput table (YAML) adding GPU kinds or replacing figures of the "
                                       "shipped one (stages/pipelines/throughput.yaml).", flag=True)


def run(cfg: RunConfig) -> list[dict]:
    """List, plan, run or report the status of a pipeline; returns one record per pipeline or step."""
    check_config(cfg)
    if cfg.job:
        return run_one_job(cfg.job)
    if cfg.list_pipelines:
        return list_pipelines(cfg.file)
    if cfg.force and cfg.start:
        raise UserError("--from STEP re-runs that step and every later one, --force every step: give one of them")
    if cfg.status and cfg.plan:
        raise UserError("--status and --plan both only report: give one of them")
    ctx = context(cfg)
    if cfg.status:
        return status(ctx)
    executor = make(cfg.executor, ctx)
    if not cfg.plan:
        executor.check()
        check_vars(ctx, cfg)
    planned = plan_of(executor)
    found = executor.preflight(planned)
    if cfg.plan:
        refuse_replacing(ctx, cfg, planned, found)
    if cfg.plan:
        numbers = estimates(ctx, cfg, planned, found)  # adds its notes to `found`
        result = Plan(planned, found.to_dict(), numbers)
        if found.problems:
            raise Refused(found.problems, result)
        return result
    if found.problems:  # nothing has run or been submitted
        raise Refused(found.problems)
    for note in found.notes:
        log.info("%s", note)
    records = executor.execute()
    remember_vars(ctx, cfg)
    return records


class Plan(list):
    """`rlt run --plan`: the step records, with the preflight's findings and the estimates."""

    def __init__(self, records: list[dict], preflight: dict, estimates: dict):
        super().__init__(records)
        self.preflight, self.estimates = preflight, estimates


def plan_of(executor) -> list[dict]:
    """What the executor would run, nothing run."""
    was, executor.ctx.plan_only = executor.ctx.plan_only, True
    try:
        return executor.execute()
    finally:
        executor.ctx.plan_only = was


def estimates(ctx: Context, cfg: RunConfig, planned: list[dict], found: Findings) -> dict:
    """Per-step estimates of the steps the plan runs (stages/pipelines/estimate.py), totals, and notes where an
    estimate says a step will not fit (memory over the GPU's, wall time over its time limit)."""
    from stages.pipelines import estimate as E

    table = E.load_table(cfg.throughput)
    runs = {r["step"] for r in planned if r["action"] in RUNS}
    rows = E.estimate_steps(ctx.steps, table, cfg.gpu, only=runs)
    gpu = table["gpus"][cfg.gpu]
    for r in rows:
        step = ctx.by_name[r["step"]]
        mem = (r.get("memory") or {}).get("per_device_gib")
        if mem is not None and mem > gpu["memory_gib"]:
            parts = r["memory"]["parts_gib"]
            top = max(parts, key=parts.get)
            found.notes.append(f"step '{r['step']}': about {mem:.0f} GiB per device, over the {gpu['memory_gib']} "
                               f"GiB of an {cfg.gpu}; most is {top} ({parts[top]:.0f} GiB): fewer sequences per "
                               "micro-batch (grad_accum, batch_size) or more processes")
        limit = step.resources.get("time")
        if cfg.executor != "local" and limit is not None and r.get("wall_hours") is not None \
                and r["wall_hours"] * 60 > minutes(limit):
            found.notes.append(f"step '{r['step']}': about {r['wall_hours']:.1f} h on {r.get('gpus', 1)} "
                               f"{cfg.gpu}, over its time limit {limit} (it resumes when requeued)")
    gpus = {k: v for k, v in table["gpus"].items() if k == cfg.gpu}
    return {"gpu": cfg.gpu, "gpu_figures": gpus[cfg.gpu], "steps": rows, "total": E.totals(rows),
            "efficiency": table["efficiency"]}


def context(cfg: RunConfig) -> Context:
    """Parse the asked pipeline (only it: another bad pipeline in the file does not matter) and select steps."""
    pipelines, sources = available(cfg.file)
    if cfg.name not in pipelines:
        where = f"the shipped pipelines or {cfg.file}" if cfg.file else "the shipped pipelines"
        raise UserError(f"no pipeline {cfg.name!r} in {where} ({did_you_mean(cfg.name, pipelines)}has: "
                        f"{', '.join(pipelines)}; rlt run --list describes them)")
    overrides = {k: v for k, v in vars(cfg.slurm).items() if v is not None}
    spec, runs = pipelines[cfg.name], Path(cfg.runs)
    if cfg.smoke:
        from stages.pipelines.smoke import smoke_spec

        spec, runs = smoke_spec(spec, on_cpu=smoke_on_cpu(cfg, overrides)), runs / "smoke"
    steps = parse(cfg.name, spec, runs, sources[cfg.name], cfg.vars, overrides)
    names = [s.name for s in steps]
    for opt_name, value in (("--from", cfg.start), ("--until", cfg.until)):
        if value is not None and value not in names:
            raise UserError(f"{opt_name} {value!r} is not a step of {cfg.name} ({did_you_mean(value, names)}"
                            f"steps: {', '.join(names)})")
    if cfg.until:
        steps = steps[: names.index(cfg.until) + 1]
    if cfg.start:
        forced = {n: f"--from {cfg.start}" for n in names[names.index(cfg.start):]}
    else:
        forced = {n: "--force" for n in names} if cfg.force else {}
    return Context(cfg.name, steps, runs, forced, plan_only=cfg.plan, options=cfg)


def smoke_on_cpu(cfg: RunConfig, overrides: dict) -> bool:
    """A smoke run uses CPUs when told the nodes have no GPU (--slurm.gpus_per_node=0) or, run here, none is
    visible."""
    if overrides.get("gpus_per_node") == 0:
        return True
    if cfg.executor != "local":
        return False
    import torch

    return not torch.cuda.is_available()


def list_pipelines(file: str | None) -> list[dict]:
    """One record per pipeline: name, steps, first sentence of its description, source; a bad one says why."""
    pipelines, sources = available(file)
    out = []
    for name, spec in pipelines.items():
        entry = {"pipeline": name, "source": sources[name]}
        try:
            steps = parse(name, spec, Path("runs"), sources[name])
            entry.update(steps=len(steps), description=first_sentence((spec or {}).get("description")),
                         full_description=" ".join(str((spec or {}).get("description") or "").split()))
        except UserError as e:
            entry.update(steps=None, description=f"invalid: {e}")
        out.append(entry)
    return out


def run_one_job(spec: str) -> list[dict]:
    """`rlt run --job SPEC.json`: one job of a submitted pipeline, in this process."""
    job = Job.load(spec)
    attempt = restart_count()
    log.info("rlt job %s (%s)%s", job.key, job.command, f", attempt {attempt + 1}" if attempt else "")
    run_job(job, first_attempt=attempt == 0)
    return []


# ----------------------------------------------------------------------------- variables


def _vars_of(ctx: Context, cfg: RunConfig) -> dict:
    """The variable values as recorded and compared: a URL's credentials hidden (stages/secrets.py)."""
    spec = available(cfg.file)[0][ctx.name]
    return {k: secrets.redact(v) if isinstance(v, str) else v for k, v in pipeline_vars(spec, cfg.vars, ctx.name).items()}


def check_vars(ctx: Context, cfg: RunConfig) -> None:
    """Refuse (unless --force) a run whose variable values differ from those the folder's finished outputs used."""
    refusal, _ = vars_refusal(ctx, cfg)
    if refusal:
        raise UserError(refusal)


def vars_refusal(ctx: Context, cfg: RunConfig) -> tuple[str | None, list[str]]:
    """(why the run is refused, the steps whose finished outputs it would replace) when its variable values differ
    from those the folder's finished outputs used and there is no --force; (None, []) otherwise."""
    path = ctx.meta / RUN_RECORD
    if cfg.force or not path.is_file():
        return None, []
    try:
        before = json.loads(path.read_text()).get("vars") or {}
    except (OSError, ValueError):
        return None, []
    now = _vars_of(ctx, cfg)
    changed = {k: (before.get(k), v) for k, v in now.items() if k in before and before[k] != v}
    finished = [s.name for s in ctx.steps if earlier_seconds(s.out) is not None
                or (done_path(s) is not None and done_path(s).exists())]
    if not (changed and finished):
        return None, []
    was = ", ".join(f"{k}={a}" for k, (a, _) in changed.items())
    new = ", ".join(f"{k}={b}" for k, (_, b) in changed.items())
    return (f"{ctx.runs / ctx.name} holds the outputs of {was}; {new} would replace them: give this run a "
            f"folder of its own (--runs {Path(ctx.runs) / '-'.join(f'{k}{b}' for k, (_, b) in changed.items())}) "
            "or --force to replace them"), finished


def refuse_replacing(ctx: Context, cfg: RunConfig, planned: list[dict], found: Findings) -> None:
    """--plan: what `check_vars` refuses is shown, as the run would meet it: each step whose finished output the
    other variable values would replace is refused, and the reason is a problem of the plan."""
    refusal, finished = vars_refusal(ctx, cfg)
    if not refusal:
        return
    found.problems.append(refusal)
    for r in planned:
        if r["step"] in finished and r["action"] != "skip":
            r["action"], r["reason"] = "refuse", f"{r['reason']}: would replace its output (--force replaces it)"


def remember_vars(ctx: Context, cfg: RunConfig) -> None:
    ctx.meta.mkdir(parents=True, exist_ok=True)
    (ctx.meta / RUN_RECORD).write_text(records.dumps({"pipeline": ctx.name, "vars": _vars_of(ctx, cfg)}, indent=1,
                                                  default=str))


# ----------------------------------------------------------------------------- status


def status(ctx: Context) -> list[dict]:
    """Each step's state from its output and from what every executor recorded of its jobs."""
    from stages.artifacts.state import output_state
    from stages.config import inputs_of
    from stages.pipelines.executors import executor_class

    jobs: dict[str, dict] = {}
    for name in EXECUTORS:
        try:
            jobs.update(executor_class(name)(ctx).job_states())
        except UserError as e:  # the scheduler did not answer: the states say what the outputs say
            log.warning("%s", e)
    records = []
    for step in ctx.steps:
        cfg = build_config(step)
        seconds = earlier_seconds(step.out)
        info = jobs.get(step.name, {})
        done = done_path(step)  # report: plain files, no artifact state
        state = None if done else output_state(step.out, COMMANDS[step.command].kind, cfg, inputs_of(cfg))
        extra = {k: info.get(k) for k in ("job", "log")}
        if state is not None and state.complete:
            records.append(record(step, "complete", f"{state.rows} rows" if state.kind != "checkpoint" else
                                  "trained", seconds=seconds, **extra))
        elif info.get("live"):
            records.append(record(step, info["state"], info.get("detail", ""), **extra))
        elif state is not None and state.status == "conflicting":  # changed since it ran: it will run again
            records.append(record(step, "stale", "; ".join(state.differs), seconds=seconds))
        elif info:
            detail = info.get("detail") or "its job ended without a complete output"
            records.append(record(step, "failed", detail, **extra))
        elif done:
            records.append(record(step, "complete" if done.is_file() else "not run", str(done)))
        elif state.status == "interrupted":
            records.append(record(step, "running" if state.writer else "interrupted", state.describe()))
        else:
            records.append(record(step, "not run", "no output yet"))
    return records
