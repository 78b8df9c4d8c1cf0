"""On a real Slurm: a pipeline equals a local run; a shard task killed and requeued, a training job requeued and a
step cancelled all end as they should. Skipped (one line) where no cluster runs: see tests/cluster/conftest.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from stages.artifacts.layout import data_files, manifest_path, metrics_path
from stages.pipelines import run as P
from stages.pipelines.executors import slurm as S
from tests.cluster.conftest import (
    ENV,
    cancel_all,
    jobs_of,
    pids_running,
    queue,
    rlt,
    start_now,
    status,
    wait_done,
    wait_for,
)

PIPELINE = """
mini:
  resources: {time: 10}
  steps:
    train: {command: data synth, options: {n: 16, seed: 0, min_digits: 2, max_digits: 2}}
    test: {command: data synth, options: {n: 4, split: test, min_digits: 2, max_digits: 2}}
    warmup: {command: distill, options: {model: MODEL, data: "${train}", role: teacher, preset: tiny, max_steps: 3,
                                         logging_steps: 1}}
    traces: {command: generate, options: {teacher: "${warmup}", data: "${train}", limit: 12, max_new_tokens: 12,
                                          temperature: 0.0}, shards: 2}
    student: {command: distill, options: {model: MODEL, data: "${traces}", preset: tiny, max_steps: 3, logging_steps: 1}}
    eval: {command: eval, options: {models: ["${student}"], data: "${test}", max_new_tokens: 12}}
"""
STEPS = ["train", "test", "warmup", "traces", "student", "eval"]
SECRET = "hf_rltClusterTestSecret7315"
TIMING = ("second", "time", "created", "model", "teacher")  # model and teacher paths differ by folder


def rows(path) -> list[dict]:
    table = ds.dataset(str(path), format="parquet").to_table()
    keep = [c for c in table.column_names if not any(t in c for t in TIMING)]
    return sorted((r for r in table.select(keep).to_pylist()), key=lambda r: json.dumps(r, sort_keys=True,
                                                                                          default=str))


def losses(out) -> list[float]:
    return [json.loads(line)["loss"] for line in metrics_path(out).read_text().splitlines()]


@pytest.mark.slow
def test_slurm_run_equals_a_local_run(slurm, tiny_teacher, tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(PIPELINE.replace("MODEL", str(tiny_teacher)))
    local, cluster = tmp_path / "local", tmp_path / "slurm"
    t0 = time.time()
    assert rlt("run", "mini", "--file", f, "--runs", local).returncode == 0
    t_local = time.time() - t0
    plan = rlt("run", "mini", "--file", f, "--runs", cluster, "--executor", "slurm", "--plan")
    assert plan.returncode == 0 and plan.stdout.count("submit") == len(STEPS) and "2 x 1 node, 0:10:00" in plan.stdout
    try:
        t0 = time.time()
        sub = rlt("run", "mini", "--file", f, "--runs", cluster, "--executor", "slurm", "--json",
                  env={"HF_TOKEN": SECRET})
        assert sub.returncode == 0, sub.stderr
        assert [r["action"] for r in json.loads(sub.stdout)["steps"]] == ["submitted"] * len(STEPS)
        again = rlt("run", "mini", "--file", f, "--runs", cluster, "--executor", "slurm", "--json")  # queued, running
        assert again.returncode == 0, again.stderr
        assert {r["action"] for r in json.loads(again.stdout)["steps"]} <= {"pending", "running", "skip"}
        wait_done("mini", f, cluster)
        t_slurm = time.time() - t0
    finally:
        cancel_all(cluster, "mini")
    book = jobs_of(cluster, "mini")
    assert len(book["traces"]["jobs"]) == 3  # an array of two shard tasks, then the merge
    assert {j["id"].split("_")[0] for j in book["traces"]["jobs"][:2]} != {book["traces"]["final"][0]}
    for step in STEPS:
        a, b = local / "mini" / step, cluster / "mini" / step
        ma, mb = (json.loads(manifest_path(p).read_text()) for p in (a, b))
        assert ma["config_hash"] == mb["config_hash"], step  # the same resolved config
        if ma["kind"] == "checkpoint":
            assert losses(a) == losses(b), step  # deterministic training: the same losses, step by step
            assert ma["global_step"] == mb["global_step"] == 3
        else:
            assert rows(a) == rows(b), step
            assert ma["rows"] == mb["rows"]
    merged = rows(cluster / "mini" / "traces")
    assert len(merged) == 12 and len({r["id"] for r in merged}) == 12  # every row once
    for job in (j for e in book.values() for j in e["jobs"]):
        assert (cluster / "mini" / ".pipeline" / "logs").as_posix() in job["log"]
        assert job["log"].endswith(f"{job['id']}_0_log.err")
    leaked = [str(p) for p in cluster.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert not leaked, leaked  # no job script, pickle, spec, log or manifest holds the token
    print(f"local run {t_local:.0f} s, slurm run {t_slurm:.0f} s")


@pytest.fixture
def one_thread_env(monkeypatch):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)  # the jobs inherit the submitting environment


def submit(name: str, f, runs) -> list[dict]:
    return P.run(P.RunConfig(name=name, file=str(f), runs=str(runs), executor="slurm"))


ARRAY = """
arr:
  resources: {time: 10}
  steps:
    train: {command: data synth, options: {n: 60, seed: 0}}
    traces: {command: generate, options: {teacher: MODEL, data: "${train}", max_new_tokens: 96, engine: {batch_size: 1}},
             shards: 3}
"""


@pytest.mark.slow
def test_array_split_merge_and_a_killed_shard_resumes(slurm, tiny_teacher, tmp_path, monkeypatch, one_thread_env):
    f, runs = tmp_path / "p.yaml", tmp_path / "runs"
    f.write_text(ARRAY.replace("MODEL", str(tiny_teacher)))
    monkeypatch.setattr(S, "max_array_size", lambda: 2)  # this cluster's 1001 split at 2: arrays of 2 and 1
    try:
        submit("arr", f, runs)
        book = jobs_of(runs, "arr")["traces"]
        shard_jobs, merge = book["jobs"][:3], book["jobs"][3]
        assert [j["key"] for j in shard_jobs] == [f"traces.shard-{i}-of-3" for i in range(3)]
        arrays = [j["id"].split("_")[0] for j in shard_jobs]
        assert arrays[0] == arrays[1] != arrays[2] and merge["key"] == "traces.merge"
        first = shard_jobs[0]
        out = runs / "arr" / ".pipeline" / "shards" / "traces" / "0-of-3"
        wait_for(lambda: data_files(out), 240, "shard 0 to write its first part", every=0.2)
        assert not manifest_path(out).exists(), "shard 0 finished before it could be killed: make it longer"
        subprocess.run(["scontrol", "requeue", first["id"]], check=True, capture_output=True)
        for pid in pids_running(f"{first['key']}.json"):  # killed hard: no graceful stop
            os.kill(pid, signal.SIGKILL)
        start_now(first["id"])
        assert queue(merge["id"])[0] == "PENDING"  # the merge waits for the requeued task
        wait_done("arr", f, runs)
    finally:
        cancel_all(runs, "arr")
    log = Path(first["log"]).read_text()
    assert "attempt 2" in log and "from the earlier run" in log  # the rerun resumed its shard
    merged = ds.dataset(str(runs / "arr" / "traces"), format="parquet").to_table().to_pylist()
    assert len(merged) == 60 and len({r["id"] for r in merged}) == 60  # every row once
    manifest = json.loads(manifest_path(runs / "arr" / "traces").read_text())
    assert [s["rows"] for s in manifest["shards"]] and sum(s["rows"] for s in manifest["shards"]) == 60


TRAIN = """
train:
  resources: {time: 10}
  steps:
    data: {command: data synth, options: {n: 64, seed: 0}}
    student: {command: distill, options: {model: MODEL, data: "${data}", preset: tiny, max_steps: 30, batch_size: 4, logging_steps: 1,
                                          save_steps: 1000}}
"""


def test_requeued_training_resumes_from_its_checkpoint(slurm, tiny_teacher, tmp_path, one_thread_env):
    f, runs = tmp_path / "p.yaml", tmp_path / "runs"
    f.write_text(TRAIN.replace("MODEL", str(tiny_teacher)))
    out = runs / "train" / "student"
    try:
        submit("train", f, runs)
        job = jobs_of(runs, "train")["student"]["final"][0]
        rows = lambda: len(metrics_path(out).read_text().splitlines()) if metrics_path(out).is_file() else 0
        wait_for(lambda: rows() >= 3, 240, "three training steps", every=0.2)
        t0 = time.time()
        subprocess.run(["scontrol", "requeue", job], check=True, capture_output=True)
        start_now(job)
        stopped = time.time() - t0
        wait_done("train", f, runs)
    finally:
        cancel_all(runs, "train")
    manifest = json.loads(manifest_path(out).read_text())
    log = Path(jobs_of(runs, "train")["student"]["jobs"][0]["log"]).read_text()
    saved = int(log.split("checkpoint saved at step ")[1].split()[0].rstrip(";:,"))
    assert 3 <= saved < 30 and manifest["resumed_from"] == f"checkpoint-{saved}"  # the graceful stop's checkpoint
    assert manifest["global_step"] == 30
    steps = [json.loads(line)["step"] for line in metrics_path(out).read_text().splitlines()]
    assert steps == list(range(1, 31))  # each metrics row once
    assert stopped < 45  # stopped within Slurm's KillWait (30 s), not killed after it


CANCEL = """
cancel:
  resources: {time: 10}
  steps:
    data: {command: data synth, options: {n: 64, seed: 0}}
    test: {command: data synth, options: {n: 4, split: test, seed: 0}}
    student: {command: distill, options: {model: MODEL, data: "${data}", preset: tiny, max_steps: 400, logging_steps: 1,
                                          save_steps: 1000}}
    eval: {command: eval, options: {models: ["${student}"], data: "${test}", max_new_tokens: 8}}
"""


def test_a_cancelled_step_fails_its_dependants_and_reruns_alone(slurm, tiny_teacher, tmp_path, one_thread_env):
    f, runs = tmp_path / "p.yaml", tmp_path / "runs"
    f.write_text(CANCEL.replace("MODEL", str(tiny_teacher)))
    out = runs / "cancel" / "student"
    try:
        submit("cancel", f, runs)
        book = jobs_of(runs, "cancel")
        student, ev = book["student"]["final"][0], book["eval"]["final"][0]
        wait_for(lambda: metrics_path(out).is_file(), 240, "the student's first step", every=0.2)
        subprocess.run(["scancel", student], check=True)
        wait_for(lambda: (queue(student) or ("",))[0] == "CANCELLED", 60, "the cancelled job to end")
        gone = wait_for(lambda: (queue(ev) or ("",))[0] == "CANCELLED" and queue(ev), 30, "the dependant to be "
                        "cancelled, not left pending")
        assert gone[1] == "DependencyNeverSatisfied"
        states = status("cancel", f, runs)
        assert [states[s]["action"] for s in ("data", "test")] == ["complete"] * 2
        assert states["student"]["action"] == "failed" and f"{student}_0_log.err" in states["student"]["reason"]
        assert "cancelled" in states["student"]["reason"]
        said = states["student"]["reason"].split("_log.err: ", 1)[1]  # rlt's own last line, not srun's
        assert said == "rlt: error: interrupted; rerun the same command to resume", states["student"]["reason"]
        assert states["eval"]["action"] == "failed" and "depends on failed" in states["eval"]["reason"]
        again = rlt("run", "cancel", "--file", f, "--runs", runs, "--executor", "slurm", "--json")
        assert again.returncode == 0, again.stderr
        actions = {r["step"]: (r["action"], r["reason"]) for r in json.loads(again.stdout)["steps"]}
        assert [actions[s][0] for s in ("data", "test", "student", "eval")] == ["skip", "skip", "submitted",
                                                                                "submitted"]
        assert actions["student"][1].startswith("resume interrupted run (at step")  # saved when it was cancelled
    finally:
        cancel_all(runs, "cancel")
