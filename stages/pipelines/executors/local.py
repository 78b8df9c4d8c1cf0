"""The local executor (`rlt run`, the default): every step in this process, one after another.

Each step is decided when its turn comes, from its output's state at that moment: an upstream
step that just ran and changed this step's inputs makes it run again (replacing its output); one
that wrote the same output leaves it up to date. A sharded step runs its shards in order, then
the merge. Resources are a cluster's business and are ignored here. A SIGTERM stops the step in
flight gracefully (stages/interrupt.py) and the run before the next step; the rerun resumes.
"""

from __future__ import annotations

import logging
import time

from stages import interrupt
from stages.pipelines.executors.base import Executor, record
from stages.pipelines.jobs import jobs_of, run_job
from stages.pipelines.plan import build_config, why_run
from stages.progress import clock

log = logging.getLogger("stages.pipelines.run")


class LocalExecutor(Executor):
    name = "local"

    def execute(self) -> list[dict]:
        if self.ctx.plan_only:
            return self.plan()
        steps, records, start = self.ctx.steps, [], time.time()
        for k, step in enumerate(steps, 1):
            interrupt.check("every step before this one is complete")
            cfg = build_config(step)
            verdict = why_run(step, cfg, set(), self.ctx.forced, self.ctx.by_name)
            where = f"[{k}/{len(steps)}] {step.name}"
            if verdict.action == "skip":
                log.info("%s: up to date, not run", where)
                records.append(record(step, "skip", "up to date"))
                continue
            log.info("%s: %s (%s)", where, step.command, verdict.reason)
            records.append(record(step, verdict.action, verdict.reason))
            t0 = time.time()
            for job in jobs_of(step, cfg, verdict.replace):  # a refusal: the stage raises it
                run_job(job, cfg=cfg if job.key == step.name else None)
            records[-1]["seconds"] = round(time.time() - t0, 1)
            log.info("%s: done in %s, %s since the start", where, clock(time.time() - t0), clock(time.time() - start))
        return records
