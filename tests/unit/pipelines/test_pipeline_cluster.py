"""Pipelines beyond one machine, without a cluster: resources, shards, a closing report, --list, --var records,
--from/--force, the plan's wording, graceful stops (stages/interrupt.py) and the multi-node launch arguments."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from stages import interrupt
from stages.errors import UserError
from stages.pipelines import plan as PL
from stages.pipelines import run as P
from stages.pipelines.executors import slurm as S
from stages.training import launch

GOOD_AND_BAD = """
good:
  description: Two datasets. The second sentence is not listed.
  steps:
    a: {command: data synth, options: {n: 6, seed: 0}}
    b: {command: data synth, options: {n: 4, seed: 1, split: test}}
    report: {command: report, options: {runs: ["${pipeline}"]}}
bad:
  steps:
    x: {command: data synth, options: {nn: 3}}
"""


def _file(tmp_path, text=GOOD_AND_BAD) -> Path:
    f = tmp_path / "p.yaml"
    f.write_text(text)
    return f


def test_one_bad_pipeline_does_not_block_the_others_and_errors_name_it(tmp_path):
    f = _file(tmp_path)
    recs = P.run(P.RunConfig(name="good", file=str(f), runs=str(tmp_path / "runs")))
    assert [r["action"] for r in recs] == ["run"] * 3
    assert (tmp_path / "runs/good/report/report.md").is_file()  # a pipeline may end with a report
    again = P.run(P.RunConfig(name="good", file=str(f), runs=str(tmp_path / "runs")))
    assert [r["action"] for r in again] == ["skip"] * 3  # the report is newer than what it reads
    with pytest.raises(UserError, match=rf"{f}: pipeline 'bad', step 'x': .*unknown key 'nn'"):
        P.run(P.RunConfig(name="bad", file=str(f)))
    listed = {r["pipeline"]: r for r in P.run(P.RunConfig(list_pipelines=True, file=str(f)))}
    assert listed["good"]["description"] == "Two datasets." and listed["good"]["steps"] == 3
    assert listed["bad"]["steps"] is None and listed["bad"]["description"].startswith("invalid: ")
    assert {"demo", "paper"} <= set(listed) and listed["demo"]["source"] == "the shipped pipelines"


def test_plan_wording_from_and_force(tmp_path, caplog):
    f = _file(tmp_path)
    runs = str(tmp_path / "runs")
    caplog.set_level("INFO")
    plan = P.run(P.RunConfig(name="good", file=str(f), runs=runs, plan=True))
    assert [r["reason"] for r in plan[:2]] == ["no output yet"] * 2  # a fresh run: nothing about upstream steps
    assert not [m for m in caplog.messages if "[1/" in m]  # a plan prints no step-by-step lines
    P.run(P.RunConfig(name="good", file=str(f), runs=runs, until="b"))
    plan = P.run(P.RunConfig(name="good", file=str(f), runs=runs, plan=True, start="b"))
    assert [(r["action"], r["reason"]) for r in plan] == [("skip", "up to date"), ("run", "--from b"),
                                                         ("run", "--from b")]
    assert plan[0]["seconds"] >= 0  # what the finished step took
    with pytest.raises(UserError, match="give one of them"):
        P.run(P.RunConfig(name="good", file=str(f), runs=runs, start="b", force=True))


VARS = """
seeded:
  vars: {seed: 0}
  steps:
    a: {command: data synth, options: {n: 5, seed: "${seed}"}}
"""


def test_another_var_value_does_not_replace_a_finished_run(tmp_path):
    f, runs = _file(tmp_path, VARS), str(tmp_path / "runs")
    P.run(P.RunConfig(name="seeded", file=str(f), runs=runs))
    with pytest.raises(UserError, match=r"holds the outputs of seed=0; seed=1 would replace them: .*--runs .*seed1"):
        P.run(P.RunConfig(name="seeded", file=str(f), runs=runs, vars={"seed": "1"}))
    with pytest.raises(UserError, match="seed=1 would replace them") as plan:  # the plan shows the refusal
        P.run(P.RunConfig(name="seeded", file=str(f), runs=runs, vars={"seed": "1"}, plan=True))
    assert plan.value.result[0]["action"] == "refuse" and plan.value.result[0]["reason"].startswith("config changed")
    forced = P.run(P.RunConfig(name="seeded", file=str(f), runs=runs, vars={"seed": "1"}, plan=True, force=True))
    assert forced[0]["action"] == "run"
    P.run(P.RunConfig(name="seeded", file=str(f), runs=str(tmp_path / "seed1"), vars={"seed": "1"}))
    recs = P.run(P.RunConfig(name="seeded", file=str(f), runs=runs, vars={"seed": "1"}, force=True))
    assert recs[0]["action"] == "run"


RES = """
r:
  resources: {time: "1:30:00", partition: gpu, cpus_per_task: 8}
  steps:
    a: {command: data synth, options: {n: 5}, resources: {mem: 64G, time: 20}}
    b: {command: data synth, options: {n: 5}}
"""


def test_resources_defaults_step_values_and_overrides(tmp_path):
    spec = PL.read_file(_file(tmp_path, RES))["r"]
    a, b = PL.parse("r", spec, tmp_path, resource_overrides={"partition": "big"})
    assert a.resources == {"time": 20, "partition": "big", "cpus_per_task": 8, "mem": "64G"}
    assert b.resources["time"] == "1:30:00"
    assert PL.describe_resources(a.resources) == "1 node, 8 CPUs, 64G memory, 0:20:00, partition big"
    assert [PL.minutes(v) for v in (90, "90", "1:30:00", "45:30", "1-12", "2-00:00:00")] == [90, 90, 90, 46, 2160,
                                                                                             2880]
    for bad in ("soon", 0, "1:", True):
        with pytest.raises(UserError, match="time must be"):
            PL.minutes(bad)
    ex = S.SlurmExecutor(P.Context("r", [a, b], tmp_path))
    params = ex._params(a, ["12_0", "12_1", "13"])
    assert params["time"] == 20 and params["mem"] == "64G" and params["partition"] == "big"
    assert params["additional_parameters"] == {"requeue": True, "kill-on-invalid-dep": "yes",
                                               "dependency": "afterok:12:13"}
    assert ex._params(a, [], merge=True).keys() >= {"time", "partition"} and "mem" not in ex._params(a, [], merge=True)
    assert S.chunks(list(range(5)), 2) == [[0, 1], [2, 3], [4]]


def test_multi_node_arguments_come_from_the_slurm_step(monkeypatch):
    assert launch.first_host("gpu[01-04,07],cpu3") == "gpu01" and launch.first_host("r[1-2]-n[3-4]") == "r1-n3"
    assert launch.first_host("a1,a2") == "a1"
    for k in ("SLURM_STEP_NUM_NODES", "SLURM_NODEID", "SLURM_STEP_NODELIST", "SLURM_JOB_ID"):
        monkeypatch.delenv(k, raising=False)
    assert launch.slurm_machine_args() == []  # not in a step (or a batch script of its own)
    monkeypatch.setenv("SLURM_STEP_NUM_NODES", "2")
    monkeypatch.setenv("SLURM_NODEID", "1")
    monkeypatch.setenv("SLURM_STEP_NODELIST", "node[7-8]")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    assert launch.slurm_machine_args() == ["--num_machines", "2", "--machine_rank", "1", "--main_process_ip",
                                           "node7", "--main_process_port", str(20000 + 4242)]
    assert launch.slurm_machine_args(["--num_machines", "3"]) == []  # the user's own launch_args win
    import torch

    assert launch.processes(None, None) == 2 * max(torch.cuda.device_count(), 1)  # one per GPU of every node


def test_sigterm_is_recorded_in_a_graceful_region_and_raised_outside():
    before = signal.getsignal(signal.SIGTERM)
    with interrupt.handled():
        items = []
        with pytest.raises(interrupt.GracefulStop, match="SIGTERM"):
            for i in interrupt.stoppable(range(5)):
                items.append(i)
                if i == 1:
                    os.kill(os.getpid(), signal.SIGTERM)  # recorded: the item in flight finishes
        assert items == [0, 1]
    with interrupt.handled(), pytest.raises(interrupt.GracefulStop):
        os.kill(os.getpid(), signal.SIGTERM)  # outside a region: at once
        signal.pause()
    assert signal.getsignal(signal.SIGTERM) == before  # restored after the command


def test_status_of_a_local_run(tmp_path):
    f, runs = _file(tmp_path), str(tmp_path / "runs")
    P.run(P.RunConfig(name="good", file=str(f), runs=runs, until="a"))
    states = {r["step"]: r for r in P.run(P.RunConfig(name="good", file=str(f), runs=runs, status=True))}
    assert (states["a"]["action"], states["a"]["reason"]) == ("complete", "6 rows") and states["a"]["seconds"] >= 0
    assert states["b"]["action"] == states["report"]["action"] == "not run"
    changed = _file(tmp_path, GOOD_AND_BAD.replace("n: 6, seed: 0", "n: 7, seed: 0"))
    states = {r["step"]: r for r in P.run(P.RunConfig(name="good", file=str(changed), runs=runs, status=True))}
    assert states["a"]["action"] == "stale" and "config changed (n)" in states["a"]["reason"]
    with pytest.raises(UserError, match="give one of them"):
        P.run(P.RunConfig(name="good", file=str(f), runs=runs, status=True, plan=True))


def test_a_cancelled_jobs_log_gives_rlts_own_last_line_not_the_schedulers(tmp_path):
    from stages.pipelines.executors.slurm import cancelled_in_log, last_error_line

    log = tmp_path / "84_0_log.err"  # what a job's stderr holds after scancel (the progress bar's \r updates too)
    log.write_text("rlt job student (distill)\nsrun: got SIGCONT\n"
                   "submitit WARNING (2026-12-06 22:12:45,663) - Bypassing signal SIGCONT\n"
                   "slurmstepd-vm: error: *** JOB 84 ON vm CANCELLED AT 2026-12-06T22:12:45 ***\n"
                   "srun: forcing job termination\nrlt: SIGTERM: stopping at the next boundary\n"
                   "distill (student): 1/400 steps\rdistill (student): 2/400 steps, stopped after 3 s\n"
                   "srun: error: vm: task 0: Exited with exit code 130\n")
    assert last_error_line(str(log)) == "distill (student): 2/400 steps, stopped after 3 s"
    assert cancelled_in_log(str(log))
    log.write_text("rlt: error: no such file\nsrun: error: vm: task 0: Exited with exit code 2\n")
    assert last_error_line(str(log)) == "rlt: error: no such file" and not cancelled_in_log(str(log))


def _squeue(tmp_path, monkeypatch, stderr: str, code: int) -> None:
    """A `squeue` on PATH that answers as a busy or forgetful controller does (exit code and stderr)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text(f"#!/bin/sh\necho '{stderr}' >&2\nexit {code}\n")
    (bin_dir / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_a_controller_that_does_not_answer_is_no_empty_queue(tmp_path, monkeypatch):
    # read as "no job left", every submitted job would count as ended and a rerun would submit them again
    _squeue(tmp_path, monkeypatch, "slurm_load_jobs error: Socket timed out on send/recv operation", 1)
    with pytest.raises(UserError, match=r"squeue failed \(slurm_load_jobs error: Socket timed out.*try again"):
        S.queue_states(["12_0", "13"])


def test_jobs_squeue_no_longer_knows_are_none_left(tmp_path, monkeypatch):
    _squeue(tmp_path, monkeypatch, "slurm_load_jobs error: Invalid job id specified", 1)
    assert S.queue_states(["12_0", "13"]) == {}
