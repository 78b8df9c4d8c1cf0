"""A small pipeline through `--executor slurm` on a real Slurm equals a local run, artifact by artifact."""

from __future__ import annotations

import json
import time

import pyarrow.dataset as ds

from stages.artifacts.layout import manifest_path, metrics_path
from tests.cluster.conftest import cancel_all, jobs_of, rlt, wait_done

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
