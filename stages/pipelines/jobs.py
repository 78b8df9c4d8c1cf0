"""Jobs: the units an executor runs - a step, one shard of a sharded step, or a sharded step's merge.

    for job in jobs_of(step, cfg, replace):
        run_job(job)                     # what the local executor does in order, and what each Slurm job
                                         # does (`rlt run --job SPEC.json`), with the same resolved config

A job is plain data (`Job.to_json`): the command, its resolved config (`out` set) and whether an
existing output is to be replaced. No secret is in it: configs name environment variables
(`engine.api_key_env`), never their values, so a job spec, a pickled job and a log hold none.

Whether a job replaces what is in its output is decided when it runs, from the output's state: an
output from another config or inputs is replaced; one the plan forced (`--from`, `--force`) is
replaced on the job's first attempt only, so a job that a scheduler requeues resumes its own
partial output instead of clearing it again.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stages import records
from stages.artifacts.read import read_table
from stages.artifacts.state import output_state, require_finished
from stages.commands import COMMANDS, call, make_config, module
from stages.config import inputs_of, to_dict
from stages.errors import UserError
from stages.pipelines.plan import Step, config_for, job_force, shard_out

log = logging.getLogger(__name__)
MERGE = "merge"  # the command of a sharded step's merge job (not a CLI command: run_job runs it)


@dataclass
class Job:
    key: str  # unique in its pipeline: `traces`, `traces.shard-0-of-4`, `traces.merge`
    step: str
    command: str  # the stage command, or MERGE
    config: dict  # the resolved stage config (to_dict), `out` set
    replace: bool = False  # the plan forced this step: replace a finished output on the first attempt
    shard: list[int] | None = None  # [index, count]
    shards: list[str] = field(default_factory=list)  # a merge: the shard outputs, in order
    step_command: str | None = None  # a merge: the sharded step's command

    @property
    def out(self) -> str:
        return self.config["out"]

    @property
    def stage(self) -> str:
        """The command whose config, kind and output this job has: its own, or a merge's sharded step's."""
        return self.step_command if self.command == MERGE else self.command

    def to_json(self) -> str:
        return records.dumps(asdict(self), indent=1, default=str)

    @classmethod
    def from_json(cls, text: str) -> Job:
        return cls(**json.loads(text))

    @classmethod
    def load(cls, path: str | Path) -> Job:
        try:
            return cls.from_json(Path(path).read_text())
        except (OSError, ValueError, TypeError) as e:
            raise UserError(f"job spec {path} is unreadable: {e}") from None


def jobs_of(step: Step, cfg, replace: bool) -> list[Job]:
    """The jobs of a step: itself, or its shards and their merge (`shards: N`)."""
    if not step.shards:
        return [Job(step.name, step.name, step.command, to_dict(cfg), replace)]
    n = step.shards
    shards = []
    for i in range(n):
        shard_cfg = config_for(step, {"shard": f"{i}/{n}", "out": str(shard_out(step, i, n))})
        shards.append(Job(f"{step.name}.shard-{i}-of-{n}", step.name, step.command, to_dict(shard_cfg), replace,
                          shard=[i, n]))
    merge = Job(f"{step.name}.merge", step.name, MERGE, to_dict(cfg), replace, shards=[j.out for j in shards],
                step_command=step.command)
    return [*shards, merge]


def job_config(job: Job):
    """The stage config of a job, resolved again from its recorded values (the same config hash)."""
    return make_config(job.stage, options=dict(job.config))


def complete(job: Job) -> bool:
    """Is the job's output complete with its config and current inputs (nothing to do)?"""
    if COMMANDS[job.stage].done_file:  # plain files (report): always written again
        return False
    cfg = job_config(job)
    return output_state(job.out, COMMANDS[job.stage].kind, cfg, inputs_of(cfg)).complete


def run_job(job: Job, first_attempt: bool = True, cfg=None) -> Any:
    """Run one job in this process (what `rlt run --job SPEC` does); returns what its stage returns."""
    cfg = cfg if cfg is not None else job_config(job)
    if hasattr(cfg, "force"):
        cfg.force = job_force(job.out, job.stage, cfg, job.replace and first_attempt)
    if job.command == MERGE:
        return merge_shards(job, cfg)
    return call(job.command, cfg)


# ----------------------------------------------------------------------------- merge


def merge_shards(job: Job, cfg) -> Path:
    """Write a sharded step's output from its shards: the artifact one unsharded run writes (the step's config
    and inputs), every row once in shard order; the stage's `finish_merged` writes its own summary (eval:
    summary.json) and the manifest. `cfg.out` is the step's output (`job.out`)."""
    from stages.artifacts.layout import read_manifest
    from stages.artifacts.stage import run_stage

    def write(w) -> None:
        manifests = []
        for path in job.shards:
            require_finished(path)  # UserError naming an unfinished shard
            manifests.append(read_manifest(Path(path)) or {})
        for path in job.shards:  # one part per shard; a resumed merge skips the rows it wrote
            w.write(read_table(path).to_pylist())
        rows = w.all_rows()
        shards = [{"path": p, "rows": m.get("rows"), "seconds": (m.get("timings") or {}).get("seconds")}
                  for p, m in zip(job.shards, manifests)]
        module(job.stage).finish_merged(w, rows, manifests, {"shards": shards})
        log.info("merged %d shards (%d rows) into %s", len(job.shards), len(rows), w.out)

    return run_stage(cfg, COMMANDS[job.stage].kind, write)


def restart_count() -> int:
    """How often a scheduler restarted this job (Slurm's SLURM_RESTART_COUNT; 0 outside a job)."""
    try:
        return int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    except ValueError:
        return 0
