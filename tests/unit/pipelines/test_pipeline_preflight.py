"""The preflight of `rlt run` (every refusal, all at once, nothing run or submitted), Slurm resources (no
submitit 5-minute default, memory with units, GPUs for GPU steps) and the plan's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stages.errors import Refused, UserError
from stages.pipelines import plan as PL
from stages.pipelines import run as P
from stages.pipelines.executors import slurm as S
from stages.pipelines.preflight import Findings, Partition, check_cluster_resources
from tests.conftest import rlt

GPU_STEP = """
g:
  steps:
    data: {command: data synth, options: {n: 8}}
    train: {command: distill, options: {model: MODEL, data: "${data}", preset: tiny, launch: zero3, gpus: 8},
            resources: {gpus_per_node: 8, time: "48:00:00", mem: 64G}}
"""


def _steps(tmp_path, text=GPU_STEP, model="m", overrides=None):
    f = tmp_path / "p.yaml"
    f.write_text(text.replace("MODEL", str(model)))
    name = next(iter(PL.read_file(f)))
    return PL.parse(name, PL.read_file(f)[name], tmp_path / "runs", str(f), resource_overrides=overrides), f


def _check(step, partitions=None) -> Findings:
    found = Findings()
    check_cluster_resources(step, PL.build_config(step), partitions, found)
    return found


def test_a_step_without_time_asks_for_no_time_and_the_plan_says_the_partition_limit_applies(tmp_path):
    from submitit.slurm.slurm import _make_sbatch_string

    (data, _), _ = _steps(tmp_path)
    params = S.SlurmExecutor(P.Context("g", [data], tmp_path))._params(data, [])
    assert "time" in params and params["time"] is None  # not left out: submitit would ask for 5 minutes
    script = _make_sbatch_string(command="x", folder=str(tmp_path), **params)
    assert "--time" not in script and "#SBATCH --signal=USR2@90" in script
    assert "the partition's time limit" in PL.describe_resources(data.resources)
    found = _check(data, {"debug": Partition("debug", 2880, default=True, cpus_per_node=8)})
    assert found.notes == ["step 'data': no time given: the partition's time limit applies (2-00:00:00)"]
    assert not found.problems


@pytest.mark.parametrize("mem, mib", [("64G", 65536), ("500M", 500), ("1.5T", 1.5 * 1024 ** 2), ("64GB", 65536),
                                      (0, 0), ("0", 0)])
def test_memory_is_read_with_its_unit(mem, mib):
    assert PL.mem_mib(mem) == mib
    assert PL.check_resources({"mem": mem}, "r")["mem"] in (str(mem).upper().removesuffix("B"), "0")


@pytest.mark.parametrize("mem", [64, "64", "64X", "lots", True, "-1G"])
def test_memory_without_a_unit_is_refused(mem):
    with pytest.raises(UserError, match="mem must be a size with its unit, such as 64G"):
        PL.check_resources({"mem": mem}, "r")


def test_a_bare_number_names_both_readings():
    with pytest.raises(UserError, match="64 would be 64 megabytes to Slurm: write 64G or 64M"):
        PL.check_resources({"mem": 64}, "pipeline 'p': resources")


def test_no_gpus_for_a_gpu_step_is_refused(tmp_path):
    (_, train), _ = _steps(tmp_path, overrides={"gpus_per_node": 0})
    found = _check(train)
    assert found.problems == [("step 'train': launch zero3 with gpus 8 needs 8 GPUs but its resources give 0 "
                               "(1 node x gpus_per_node 0): set resources.gpus_per_node (--slurm.gpus_per_node=N)")]
    (_, fine), _ = _steps(tmp_path)
    assert not _check(fine).problems  # 8 GPUs for 8 processes
    (_, fewer), _ = _steps(tmp_path, overrides={"gpus_per_node": 4})
    assert "needs 8 GPUs but its resources give 4" in _check(fewer).problems[0]


def test_vllm_steps_need_a_gpu(tmp_path):
    text = """
v:
  steps:
    data: {command: data synth, options: {n: 8}}
    gen: {command: generate, options: {teacher: m, data: "${data}", engine: {name: vllm}}}
"""
    (_, gen), _ = _steps(tmp_path, text)
    assert _check(gen).problems[0].startswith("step 'gen': the vLLM engine needs 1 GPU but its resources give 0")


def test_resources_beyond_the_partition_are_refused_all_at_once(tmp_path):
    (_, train), _ = _steps(tmp_path)
    small = {"gpu": Partition("gpu", 24 * 60, default=True, gpus_per_node=4, cpus_per_node=32, mem_mib=32768)}
    problems = _check(train, small).problems
    assert problems == ["step 'train': time 2-00:00:00 is over partition gpu's MaxTime 1-00:00:00",
                        "step 'train': gpus_per_node 8 but the nodes of partition gpu have 4 GPUs",
                        "step 'train': mem 64G but the nodes of partition gpu have 32G"]
    (_, elsewhere), _ = _steps(tmp_path, overrides={"partition": "big"})
    assert _check(elsewhere, small).problems[0] == "step 'train': partition big is not one of this cluster's (gpu)"


def test_sinfo_output_is_read():
    assert S._gres_gpus("gpu:h100:8(S:0-1)") == 8 and S._gres_gpus("(null)") == 0
    assert S._gres_gpus("gpu:a100:4,shard:8") == 4
    assert S._limit_minutes("infinite") is None and S._limit_minutes("2-00:00:00") == 2880
    assert S._limit_minutes("30:00") == 30


def test_a_scheduler_that_does_not_answer_is_a_problem(tmp_path, monkeypatch):
    (data, _), _ = _steps(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no sinfo, no sbatch
    found = Findings()
    S.SlurmExecutor(P.Context("g", [data], tmp_path)).check_resources([data], found)
    assert found.problems == ["Slurm does not answer here: no sinfo on PATH (run on a cluster's login node)"]


MISSING = """
miss:
  steps:
    src: {command: data import, options: {src: data/nowhere.jsonl}}
    more: {command: data import, options: {src: data/elsewhere.parquet}}
    train: {command: distill, options: {model: ./no-model, data: "${src}", preset: tiny}}
    other: {command: distill, options: {model: ./no-model, data: runs-elsewhere/traces, preset: tiny}}
"""


def test_missing_inputs_are_listed_at_once_and_nothing_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, f = _steps(tmp_path, MISSING)
    with pytest.raises(Refused) as e:
        P.run(P.RunConfig(name="miss", file=str(f), runs=str(tmp_path / "runs")))
    assert e.value.problems == [
        "step 'src': src not found: data/nowhere.jsonl (no such file, and no earlier step makes it)",
        "step 'more': src not found: data/elsewhere.parquet (no such file, and no earlier step makes it)",
        "step 'train': model not found: ./no-model (no such file, and no earlier step makes it)",
        "step 'other': model not found: ./no-model (no such file, and no earlier step makes it)",
        "step 'other': data not found: runs-elsewhere/traces (no such file, and no earlier step makes it)"]
    assert e.value.result is None and not (tmp_path / "runs").exists()  # nothing written
    with pytest.raises(Refused) as e:  # the plan refuses too, and carries what it shows
        P.run(P.RunConfig(name="miss", file=str(f), runs=str(tmp_path / "runs"), plan=True))
    assert [r["step"] for r in e.value.result] == ["src", "more", "train", "other"]
    assert len(e.value.result.preflight["problems"]) == 5


def test_a_hub_model_not_cached_is_a_note_and_offline_a_problem(tmp_path, monkeypatch, tiny_teacher):
    from huggingface_hub import constants

    text = """
hub:
  steps:
    data: {command: data synth, options: {n: 8}}
    train: {command: distill, options: {model: some-org/never-cached-model, data: "${data}", preset: tiny}}
"""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    _, f = _steps(tmp_path, text)
    plan = P.run(P.RunConfig(name="hub", file=str(f), runs=str(tmp_path / "runs"), plan=True))
    assert plan.preflight["problems"] == []
    assert "step 'train': model some-org/never-cached-model is not in the hub cache here" in plan.preflight["notes"][0]
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(Refused, match="HF_HUB_OFFLINE is set: download it first"):
        P.run(P.RunConfig(name="hub", file=str(f), runs=str(tmp_path / "runs"), plan=True))


def test_plan_json_has_the_preflight_and_numbers_and_exits_2(tmp_path, tiny_teacher):
    text = MISSING + f"""
ok:
  steps:
    data: {{command: data synth, options: {{n: 8}}}}
    train: {{command: distill, options: {{model: {tiny_teacher}, data: "${{data}}", preset: tiny, max_steps: 3}}}}
"""
    f = tmp_path / "p.yaml"
    f.write_text(text)
    proc = rlt("run", "miss", "--file", f, "--runs", tmp_path / "runs", "--plan", "--json")
    assert proc.returncode == 2, proc.stderr
    data = json.loads(proc.stdout)
    assert [s["step"] for s in data["steps"]] == ["src", "more", "train", "other"]
    assert len(data["preflight"]["problems"]) == 5
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 5 and all(line.startswith("rlt: error: step '") for line in errors)
    proc = rlt("run", "ok", "--file", f, "--runs", tmp_path / "runs", "--plan", "--json")
    assert proc.returncode == 0, proc.stderr
    est = json.loads(proc.stdout)["estimates"]
    (train,) = est["steps"]
    assert train["params"] == 544_896 and train["optimizer_steps"] == 3 and train["gpu_hours"] >= 0
    assert train["memory"]["per_device_gib"] > 0 and set(train["memory"]["parts_gib"]) >= {"activations", "logits"}
    assert est["gpu"] == "H100" and est["gpu_figures"]["memory_gib"] == 80
    assert not Path(tmp_path / "runs").exists()
