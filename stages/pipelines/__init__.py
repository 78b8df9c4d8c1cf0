"""Pipelines: named graphs of the table's commands, run here or on Slurm; `rlt run` joins the command table here."""

from stages.commands import Command, add

add("run", Command("pipelines.run", "RunConfig", "run",
                   "Run a named pipeline of stages, here or on Slurm (--executor slurm); complete steps are skipped.",
                   step=False))
