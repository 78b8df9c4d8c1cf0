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

ROOT = Path(__file__).resolve().parents[2]

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


def test_an_interrupted_training_step_resumes_from_its_checkpoint_step(tmp_path):
    from stages.artifacts.writer import ArtifactWriter

    spec = {"steps": {"t": {"command": "data synth", "options": {"n": 4}}}}
    (step,) = P.parse("x", spec, tmp_path)
    cfg = P.build_config(step)
    with ArtifactWriter(step.out, "checkpoint", cfg):  # left unfinished, as after a kill
        ckpt = step.out / "checkpoints" / "checkpoint-20"
        ckpt.mkdir(parents=True)
        (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 20}))
    assert P.why_run(step, cfg, set()) == ("resume interrupted run (at step 20)", False)
