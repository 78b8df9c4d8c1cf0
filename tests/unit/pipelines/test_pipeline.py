"""Pipelines: parsing and validation of every shipped pipeline, skip and re-run logic."""

import json
import re
from pathlib import Path

import pytest
import yaml

from stages.artifacts.layout import manifest_path, read_manifest
from stages.commands import STEPS
from stages.errors import UserError
from stages.pipelines import run as P

ROOT = Path(__file__).resolve().parents[3]

MINI = """
mini:
  description: two datasets merged
  steps:
    a: {command: data synth, options: {n: 20, seed: 0}}
    b: {command: data synth, options: {n: 10, seed: 1, split: test}}
    both: {command: data merge, options: {inputs: ["${a}", "${b}"]}}
"""


def test_every_shipped_pipeline_parses():
    text = (ROOT / "pipelines.yaml").read_text()
    pipelines = P.load_pipelines(ROOT / "pipelines.yaml")
    assert {"demo", "paper"} <= set(pipelines)
    parsed = {name: P.parse(name, spec, Path("runs")) for name, spec in pipelines.items()}
    assert all(s.command in STEPS for steps in parsed.values() for s in steps)
    # counted in the raw text, independently of the parser: every pipeline and every step was validated
    assert sorted(parsed) == sorted(re.findall(r"^([\w-]+):", text, re.MULTILINE))
    assert sum(map(len, parsed.values())) == len(re.findall(r"\bcommand:", text)) >= 10


def test_demo_has_the_baselines():
    steps = {s.name: s for s in P.parse("demo", P.load_pipelines(ROOT / "pipelines.yaml")["demo"], Path("runs"))}
    commands = [s.command for s in steps.values()]
    assert {"teach", "generate", "distill", "eval"} <= set(commands)
    distills = [s for s in steps.values() if s.command == "distill" and s.options.get("role", "student") == "student"]
    assert any(s.options.get("no_explanation") for s in distills)  # solutions-only baseline
    assert len(distills) >= 3


def test_demo_arms_differ_only_in_what_they_compare():
    """The teachers decode alike (only RL differs); the students train alike (only their data differs)."""
    pipelines = P.load_pipelines(ROOT / "pipelines.yaml")
    steps = {s.name: s.options for s in P.parse("demo", pipelines["demo"], Path("runs"))}
    rl, warm = dict(steps["traces-rl"]), dict(steps["traces-warmup"])
    assert rl.pop("teacher").endswith("/teach") and warm.pop("teacher").endswith("/warmup") and rl == warm
    students = [dict(steps[n]) for n in ("student-rl", "student-warmup", "student-solution")]
    data = [s.pop("data") for s in students]
    assert len(set(data)) == 3 and students[2].pop("no_explanation") is True
    assert students[0] == students[1] == students[2]
    assert students[0]["lr_scheduler"] == "warmup_stable_decay"  # ends settled, not at a constant rate's last step
    # the correlation's students follow the demo students' recipe and every set is ranked with one estimator
    corr = [s for s in P.parse("demo-correlation", pipelines["demo-correlation"], Path("runs"))]
    for s in (s for s in corr if s.command == "distill"):
        mine = {k: v for k, v in s.options.items() if k not in ("data", "model")}
        assert mine == {k: v for k, v in students[0].items() if k != "model"}, s.name
    scores = [s for s in corr if s.command == "score"]
    assert len(scores) >= 6 and all(s.options["reward"]["full_kl"] is True for s in scores)


@pytest.mark.parametrize("name", ["demo", "demo-correlation"])
def test_every_demo_step_that_renders_a_view_uses_the_same_prompts(name):
    """A model trained with one system prompt and scored, sampled or evaluated with another is a silent bug."""
    pipelines = P.load_pipelines(ROOT / "pipelines.yaml")
    steps = P.parse(name, pipelines[name], Path("runs"))
    rendering = [s for s in steps if s.command in ("distill", "teach", "generate", "score", "eval")]
    assert len(rendering) >= 5
    prompts = {s.name: s.options.get("prompts") for s in rendering}
    assert prompts[rendering[0].name] and len({repr(p) for p in prompts.values()}) == 1, prompts
    demo_prompts = next(s.options["prompts"] for s in P.parse("demo", pipelines["demo"], Path("runs"))
                        if s.command == "distill")
    assert prompts[rendering[0].name] == demo_prompts  # the correlation scores and evaluates the demo's models


def run(tmp_path, **kw):
    f = tmp_path / "p.yaml"
    f.write_text(kw.pop("text", MINI))
    cfg = P.RunConfig(name="mini", file=str(f), runs=str(tmp_path / "runs"), **kw)
    return {r["step"]: r for r in P.run(cfg)}


def test_skip_then_rerun_downstream_of_a_changed_input(tmp_path):
    first = run(tmp_path)
    assert [r["action"] for r in first.values()] == ["run"] * 3
    assert read_manifest(tmp_path / "runs/mini/both")["kind"] == "dataset"
    second = run(tmp_path)
    assert [r["action"] for r in second.values()] == ["skip"] * 3
    third = run(tmp_path, text=MINI.replace("n: 10, seed: 1", "n: 12, seed: 1"))
    assert [third[s]["action"] for s in ("a", "b", "both")] == ["skip", "run", "run"]
    # decided when its turn comes: b's new output is a changed input of both
    assert third["b"]["reason"] == "config changed (n)" and "inputs[1]" in third["both"]["reason"]
    plan = run(tmp_path, start="b", plan=True)
    assert [plan[s]["action"] for s in ("a", "b", "both")] == ["skip", "run", "run"]
    assert [plan[s]["reason"] for s in ("b", "both")] == ["--from b"] * 2
    assert all(r["seconds"] >= 0 for r in plan.values())  # what the finished outputs took


def test_until_and_plan_run_nothing(tmp_path):
    recs = run(tmp_path, until="a")
    assert list(recs) == ["a"] and not (tmp_path / "runs/mini/b").exists()
    recs = run(tmp_path, plan=True)
    assert recs["b"]["action"] == "run" and not (tmp_path / "runs/mini/b").exists()


@pytest.mark.parametrize("text, fragment", [
    ("x: {steps: {a: {command: nope}}}", "'command' must be one of"),
    ("x: {steps: {a: {command: data synth, options: {bogus: 1}}}}", "unknown key 'bogus'"),
    ("x: {steps: {a: {command: data merge, options: {inputs: ['${later}']}}}}", "not an earlier step"),
    ("x: {steps: {}}", "non-empty 'steps'"),
    ("x: {steps: {a: {command: data synth, option: {}}}}", "unknown keys"),
    ("- 1", "must be a mapping"),
])
def test_bad_pipelines_are_refused(tmp_path, text, fragment):
    f = tmp_path / "p.yaml"
    f.write_text(text)
    with pytest.raises(UserError, match=fragment):
        P.load_pipelines(f)


def test_unknown_name_and_step(tmp_path):
    with pytest.raises(UserError, match="no pipeline 'nope'"):
        P.run(P.RunConfig(name="nope", file=str(_write(tmp_path))))
    with pytest.raises(UserError, match="--from 'zz' is not a step"):
        P.run(P.RunConfig(name="mini", file=str(_write(tmp_path)), runs=str(tmp_path), start="zz"))


def _write(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(MINI)
    return f


VARS = """
seeded:
  vars: {seed: 0, n: 12}
  steps:
    a: {command: data synth, options: {n: "${n}", seed: "${seed}", split: train}}
    b: {command: data merge, options: {inputs: ["${a}"], out: "unused-${seed}"}}
"""


def test_pipeline_variables_default_override_and_refusals(tmp_path):
    spec = yaml.safe_load(VARS)["seeded"]
    steps = P.parse("seeded", spec, tmp_path)
    assert steps[0].options == {"n": 12, "seed": 0, "split": "train"}  # whole-value refs keep their type
    steps = P.parse("seeded", spec, tmp_path, overrides={"seed": "3"})
    assert steps[0].options["seed"] == 3 and P.build_config(steps[0]).seed == 3
    assert steps[1].options["out"] == "unused-3" and steps[1].needs == ["a"]
    with pytest.raises(UserError, match=r"unknown variable\(s\) \['sed'\] \(valid: n, seed\)"):
        P.parse("seeded", spec, tmp_path, overrides={"sed": "1"})
    clash = {"vars": {"a": 1}, "steps": spec["steps"]}
    with pytest.raises(UserError, match="name both a variable and a step"):
        P.parse("seeded", clash, tmp_path)


def test_run_with_var_writes_under_another_runs_folder(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text(VARS.replace("    b: {command: data merge, options: {inputs: [\"${a}\"], out: \"unused-${seed}\"}}\n", ""))
    P.run(P.RunConfig(name="seeded", file=str(f), runs=str(tmp_path / "s1"), vars={"seed": "1"}))
    manifest = yaml.safe_load(manifest_path(tmp_path / "s1/seeded/a").read_text())
    assert manifest["config"]["seed"] == 1


def _whole_checkpoint(out: Path, step: int) -> Path:
    """A checkpoint a resume can load: trainer state, weights, optimizer state."""
    import torch
    from safetensors.torch import save_file

    ckpt = out / "checkpoints" / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    save_file({"w": torch.zeros(4)}, str(ckpt / "model.safetensors"))
    torch.save({"state": {}, "param_groups": []}, ckpt / "optimizer.pt")
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return ckpt


def test_the_plan_predicts_what_the_training_step_does(tmp_path):
    """--plan says resume only where the stage resumes, and refuses what the stage refuses: the plan and the stage
    apply one rule (state.decide), with the stage's kind, inputs and the --force its job gives it."""
    import subprocess
    import sys

    from stages.artifacts.state import process_identity, require
    from stages.artifacts.writer import ArtifactWriter
    from stages.config import inputs_of
    from stages.pipelines.plan import job_force

    for name, text in (("a", "1 + 1"), ("b", "2 + 2")):
        (tmp_path / f"{name}.jsonl").write_text(json.dumps({"question": text}) + "\n")
    pipeline = tmp_path / "p.yaml"

    def plan(data="a"):
        pipeline.write_text(f"t:\n  steps:\n    warm: {{command: distill, options: {{model: {tmp_path / 'm'}, "
                            f"data: {tmp_path / data}.jsonl}}}}\n")
        cfg = P.RunConfig(name="t", file=str(pipeline), runs=str(tmp_path / "runs"), plan=True)
        try:
            (r,) = P.run(cfg)
        except UserError as e:  # refused: the plan is still shown
            (r,) = e.result
        step = P.parse("t", P.read_file(pipeline)["t"], tmp_path / "runs")[0]
        stage_cfg = P.build_config(step)
        try:  # what the stage itself decides when the step's job runs it
            require(step.out, "checkpoint", stage_cfg, inputs_of(stage_cfg),
                    job_force(step.out, "distill", stage_cfg, False))
            stage = "runs"
        except UserError as e:
            stage = str(e)
        return r["action"], r["reason"], stage, step, stage_cfg

    action, _, _, step, cfg = plan()
    assert action == "run"
    with ArtifactWriter(step.out, "checkpoint", cfg, inputs_of(cfg)):  # stopped before its first checkpoint
        pass
    action, reason, stage, *_ = plan()
    assert (action, stage) == ("run", "runs") and "nothing to resume" in reason
    ckpt = _whole_checkpoint(step.out, 20)
    action, reason, stage, *_ = plan()
    assert (action, reason, stage) == ("resume", "resume interrupted run (at step 20)", "runs")
    # other inputs: the stage would refuse to resume it, so the pipeline replaces it (its job gives --force)
    action, reason, stage, *_ = plan(data="b")
    assert (action, stage) == ("run", "runs") and reason.startswith("input data (") and "changed" in reason
    # a damaged checkpoint: refused, in the plan with the stage's own line
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:20])
    action, reason, stage, *_ = plan()
    assert action == "refuse" and reason == stage and "is damaged" in reason
    # another process writing it: refused (the lock refuses it when the stage opens its writer)
    weights.unlink()
    _whole_checkpoint(step.out, 30)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (step.out / ".rlt" / "lock").write_text(json.dumps(process_identity(live.pid)))
        action, reason, *_ = plan()
        assert action == "refuse" and f"being written by process {live.pid}" in reason
    finally:
        live.kill()
        live.wait()
    action, reason, *_ = plan()
    assert (action, reason) == ("resume", "resume interrupted run (at step 30)")

