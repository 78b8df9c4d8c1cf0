"""The README says what the CLI does: its pipeline example parses, its list of step commands is the table's,
its option names exist."""

from __future__ import annotations

import re

import yaml

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def fenced(after: str, lang: str) -> str:
    """The first ```lang block after the heading `after`."""
    body = README[README.index(after):]
    return re.search(rf"```{lang}\n(.*?)```", body, re.DOTALL).group(1)


def test_the_pipeline_example_is_a_valid_pipelines_file(tmp_path):
    from stages.pipelines import run as pipeline

    spec = yaml.safe_load(fenced("## Pipelines", "yaml"))
    for name, p in spec.items():
        steps = pipeline.parse(name, p, tmp_path / "runs")
        assert [s.name for s in steps] == list(p["steps"])
    student = next(s for s in pipeline.parse("mine", spec["mine"], tmp_path) if s.name == "student")
    assert student.options["preset"] == "tiny" and student.options["max_steps"] == 50  # the merge key applied


def test_the_step_commands_listed_are_the_tables():
    from stages.commands import STEPS

    line = next(x for x in README.splitlines() if x.startswith("- Commands that may be steps:"))
    listed = [c.strip() for c in line.split(":", 1)[1].rstrip(".").split(",")]
    assert listed == STEPS


def test_the_tour_uses_options_that_exist(capsys, tmp_path):
    """Every tour command resolves (flags, keys, --config of the tour's own file) without running."""
    from tests.unit.test_cli import cli

    block = fenced("## A tour", "sh")
    config = tmp_path / "tiny.yaml"
    config.write_text(re.search(r"<<'EOF'\n(.*?)\nEOF", block, re.DOTALL).group(1))
    for line in block.replace("\\\n", " ").splitlines():  # a command continued with a backslash is one line
        if not line.startswith("rlt ") or line.startswith(("rlt inspect", "rlt report")):
            continue
        argv = [str(config) if a == "tiny.yaml" else a for a in line.split()[1:]]
        code, _, err = cli(capsys, *argv, "--print-config")
        assert code == 0, (line, err)
