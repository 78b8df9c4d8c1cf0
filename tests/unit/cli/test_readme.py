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
    from tests.unit.cli.test_cli import cli

    block = fenced("## A tour", "sh")
    config = tmp_path / "tiny.yaml"
    config.write_text(re.search(r"<<'EOF'\n(.*?)\nEOF", block, re.DOTALL).group(1))
    for line in block.replace("\\\n", " ").splitlines():  # a command continued with a backslash is one line
        if not line.startswith("rlt ") or line.startswith(("rlt inspect", "rlt report")):
            continue
        argv = [str(config) if a == "tiny.yaml" else a for a in line.split()[1:]]
        code, _, err = cli(capsys, *argv, "--print-config")
        assert code == 0, (line, err)


def _code_lines(text: str) -> list[str]:
    """The `rlt ...` command lines of a markdown file's code (fenced blocks and indented lines), a command
    continued with a backslash joined, an optional `[--flag value]` taken as given."""
    lines, fenced = [], False
    for line in re.sub(r"\\\n\s*", " ", text).splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif (fenced or line.startswith("    ")) and line.strip().lstrip("$ ").startswith("rlt "):
            lines.append(re.sub(r"\[(--[^\]]*)\]", r"\1", line.strip().lstrip("$ ").split(" #")[0]))
    return lines


def test_every_command_in_the_readme_and_docs_parses(capsys, tmp_path, monkeypatch):
    """Each `rlt` line of README.md and docs/ resolves its config (`--print-config`: nothing runs)."""
    import shlex

    from tests.unit.cli.test_cli import cli

    monkeypatch.chdir(tmp_path)  # the tour's config file, where its commands name it
    (tmp_path / "tiny.yaml").write_text(re.search(r"<<'EOF'\n(.*?)\nEOF", README, re.DOTALL).group(1))
    checked = 0
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line in _code_lines(doc.read_text()):
            argv = shlex.split(line)[1:]
            cut = [i for i, t in enumerate(argv) if t in ("|", "&&", ";", ">", "&")]
            argv = argv[:cut[0]] if cut else argv
            code, _, err = cli(capsys, *argv, *([] if argv[0].startswith("-") else ["--print-config"]))
            assert code == 0, (doc.name, line, err)
            checked += 1
    assert checked >= 30
