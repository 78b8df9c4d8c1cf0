"""On a real two-node Slurm: a distill step with `resources: {nodes: 2}` runs as one job across both nodes.

The nodes are partition `two` of scripts/slurm-cluster.sh: two slurmd, each in its own network namespace
with its own host name and address, so the ranks of one node reach the other's only over the network, with
the arguments rlt derives from the Slurm step (the first node as main process, a port from the job id).
The weights must be those of the same step as two processes on one machine. Skipped (one line) where the
cluster or its partition `two` is not up.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from stages.artifacts.layout import manifest_path
from stages.pipelines.executors import slurm as S
from tests.cluster.conftest import cancel_all, jobs_of, queue, rlt, wait_done, wait_for

PARTITION = "two"
OPTIONS = {"max_steps": 3, "batch_size": 2, "global_batch": 8, "lr": 0.01, "logging_steps": 1, "save_steps": 2,
           "device": "cpu"}
PIPELINE = """
span:
  steps:
    student:
      command: distill
      options: {{model: {model}, data: {data}, launch: ddp, {options}}}
      resources: {{nodes: 2, partition: {partition}, time: 10}}
"""


def max_diff(a, b) -> float:
    """Largest absolute difference between two saved models' tensors (the same names)."""
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert wa.keys() == wb.keys()
    return max((wa[k] - wb[k]).abs().max().item() for k in wa)


@pytest.fixture
def two_nodes(slurm):
    """The partition's two nodes, in order; skip (one line) where the partition is not up."""
    out = subprocess.run(["sinfo", "-h", "-p", PARTITION, "-N", "-o", "%N|%T"], check=False, capture_output=True,
                         text=True).stdout
    nodes = [line.split("|") for line in out.split()]
    if len(nodes) < 2 or not all(s.rstrip("*") in ("idle", "mixed") for _, s in nodes):
        pytest.skip(f"no two idle nodes in Slurm partition {PARTITION!r}: `sudo bash scripts/slurm-cluster.sh up` "
                    "makes them (RLT_SLURM_TWO_NODES=1, the default)")
    return sorted(n for n, _ in nodes)


@pytest.mark.slow
def test_a_two_node_step_is_one_job_on_both_nodes_and_trains_as_on_one(two_nodes, tiny_teacher, synth_train,
                                                                       tmp_path):
    f, runs = tmp_path / "p.yaml", tmp_path / "runs"
    f.write_text(PIPELINE.format(model=tiny_teacher, data=synth_train, partition=PARTITION,
                                 options=", ".join(f"{k}: {v}" for k, v in OPTIONS.items())))
    plan = rlt("run", "span", "--file", f, "--runs", runs, "--executor", "slurm", "--plan")
    assert plan.returncode == 0, plan.stderr
    assert "2 nodes" in plan.stdout and f"partition {PARTITION}" in plan.stdout
    t0 = time.time()
    done = False
    try:
        sub = rlt("run", "span", "--file", f, "--runs", runs, "--executor", "slurm", "--json")
        assert sub.returncode == 0, sub.stderr
        assert [r["action"] for r in json.loads(sub.stdout)["steps"]] == ["submitted"]
        wait_done("span", f, runs, timeout=300)
        (job,) = jobs_of(runs, "span")["student"]["jobs"]  # one job for the step
        # the output is complete once rank 0 wrote it; the job ends when both nodes' launchers have
        state = wait_for(lambda: (queue(job["id"]) or ("",))[0] not in S.LIVE and queue(job["id"]), 120,
                         f"job {job['id']} to end")
        done = True
    finally:
        if not done:
            cancel_all(runs, "span")
    t_slurm = time.time() - t0
    assert state[0] == "COMPLETED", state  # every task of the job exited 0

    logs = {task: (runs / "span" / ".pipeline" / "logs" / "student" / f"{job['id']}_{task}_log.out").read_text()
            for task in (0, 1)}
    # submitit's first line of each task: the host name its node's processes see, and its node index
    env = r"JobEnvironment\(job_id=(\d+), hostname=([\w.-]+), local_rank=0\(1\), node=(\d)\(2\), global_rank=(\d)\(2\)"
    seen = {}
    for task, text in logs.items():
        m = re.search(env, text)
        assert m, text[-2000:]
        assert (m.group(1), int(m.group(4))) == (job["id"], task)
        seen[int(m.group(3))] = m.group(2)
    assert seen == {0: two_nodes[0], 1: two_nodes[1]}  # one launcher on each node, node 0 the first listed

    reference = tmp_path / "one-node"
    t0 = time.time()
    local = rlt("distill", "--model", tiny_teacher, "--data", synth_train, "--out", reference, "--launch", "ddp",
                "--nproc", 2, *(f"{k}={v}" for k, v in OPTIONS.items()), timeout=300)
    t_local = time.time() - t0
    assert local.returncode == 0, local.stderr[-3000:]

    out = runs / "span" / "student"
    mine, theirs = (json.loads(manifest_path(p).read_text()) for p in (out, reference))
    assert mine["config_hash"] == theirs["config_hash"]
    assert (mine["processes"], mine["global_step"], mine["rows_per_step"]) == (2, 3, 8)
    assert max_diff(out, tiny_teacher) > 1e-3  # it trained
    diff = max_diff(out, reference)
    assert diff < 1e-5
    print(f"two nodes vs one: max |dw| = {diff:.2e}; slurm {t_slurm:.0f} s, local {t_local:.0f} s")
