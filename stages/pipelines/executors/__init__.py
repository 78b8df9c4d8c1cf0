"""Executors: where the jobs of a pipeline run. `local` runs them in this process, in order; `slurm` submits
each step as a Slurm job (shards as job arrays) with `afterok` dependencies.

    executor = make("slurm", context)
    executor.check()                 # bad input (no sbatch, ...) is said before anything is submitted
    records = executor.execute()     # run or submit every step that is not complete; one record per step
    executor.job_states()            # what it knows of its jobs (rlt run --status)

A Ray or PBS executor is one more module here with an `Executor` subclass (base.py) and its name in
EXECUTORS; nothing else changes (`rlt run --executor NAME` picks it up).
"""

from __future__ import annotations

import importlib

EXECUTORS = {"local": "stages.pipelines.executors.local:LocalExecutor",
             "slurm": "stages.pipelines.executors.slurm:SlurmExecutor"}


def executor_class(name: str):
    module, _, cls = EXECUTORS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def make(name: str, context):
    """The executor `name` for a pipeline run (its module is imported only now: submitit loads only for slurm)."""
    return executor_class(name)(context)
