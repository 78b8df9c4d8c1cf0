"""The preflight against a real Slurm: a step without `time` runs under the partition's limit (never submitit's
5 minutes), and resources the partition cannot give are refused before anything is submitted."""

from __future__ import annotations

import json
import subprocess

import pytest

from stages.artifacts.layout import manifest_path
from tests.cluster.conftest import rlt, wait_done, wait_for

ONE_STEP = """
p:
  steps:
    data: {command: data synth, options: {n: 8}, resources: {cpus_per_task: 1, mem: 500M}}
"""
GPU_STEP = """
g:
  steps:
    data: {command: data synth, options: {n: 8}}
    train: {command: distill, options: {model: MODEL, data: "${data}", preset: tiny, launch: zero3, gpus: 8},
            resources: {gpus_per_node: 8, time: 30}}
"""


def test_a_step_without_time_gets_the_partitions_limit(slurm, tmp_path):
    f, runs = tmp_path / "p.yaml", tmp_path / "runs"
    f.write_text(ONE_STEP)
    plan = rlt("run", "p", "--file", f, "--runs", runs, "--executor", "slurm", "--plan", "--json")
    assert plan.returncode == 0, plan.stderr
    notes = json.loads(plan.stdout)["preflight"]["notes"]
    assert any("no time given: the partition's time limit applies" in n for n in notes), notes
    proc = rlt("run", "p", "--file", f, "--runs", runs, "--executor", "slurm", "--json")
    assert proc.returncode == 0, proc.stderr
    (job,) = [r["job"] for r in json.loads(proc.stdout)["steps"]]
    scripts = list((runs / "p/.pipeline/logs/data").glob("*_submission.sh"))
    assert scripts and all("--time" not in s.read_text() for s in scripts)
    shown = subprocess.run(["scontrol", "show", "job", job], check=False, capture_output=True, text=True).stdout
    assert "TimeLimit=00:05:00" not in shown  # the partition's limit, not submitit's default
    wait_done("p", f, runs)


def test_resources_the_partition_cannot_give_are_refused_before_submitting(slurm, tiny_teacher, tmp_path):
    f, runs = tmp_path / "g.yaml", tmp_path / "runs"
    f.write_text(GPU_STEP.replace("MODEL", str(tiny_teacher)))
    proc = rlt("run", "g", "--file", f, "--runs", runs, "--executor", "slurm", "--slurm.gpus_per_node=0")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and lines == [
        ("rlt: error: step 'train': launch zero3 with gpus 8 needs 8 GPUs but its resources give 0 (1 node x "
         "gpus_per_node 0): set resources.gpus_per_node (--slurm.gpus_per_node=N)")], proc.stderr
    proc = rlt("run", "g", "--file", f, "--runs", runs, "--executor", "slurm")
    assert proc.returncode == 2 and "step 'train': gpus_per_node 8 but the nodes of partition" in proc.stderr
    assert not runs.exists()  # nothing submitted, nothing written



@pytest.mark.slow
def test_the_paper_smoke_run_on_slurm(slurm, tmp_path):
    """`rlt run paper --smoke` through Slurm on CPU nodes: every step a job, the ZeRO-3 steps on 2 processes."""
    from stages.pipelines import run as P

    runs = tmp_path / "runs"
    proc = rlt("run", "paper", "--smoke", "--runs", runs, "--executor", "slurm", "--slurm.gpus_per_node=0")
    assert proc.returncode == 0, proc.stderr[-2000:]

    def done() -> bool:
        recs = P.run(P.RunConfig(name="paper", runs=str(runs), smoke=True, status=True))
        failed = [r for r in recs if r["action"] == "failed"]
        assert not failed, failed
        return all(r["action"] == "complete" for r in recs)

    wait_for(done, 1200, "the paper's smoke run on Slurm", every=5)
    teach = json.loads(manifest_path(runs / "smoke/paper/teach").read_text())
    assert teach["training"]["processes"] == 2
