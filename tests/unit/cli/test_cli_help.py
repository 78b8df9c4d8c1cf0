"""The help a user reads: options grouped in panels by what they set, required ones marked, choices listed, the
key=value form said once; `rlt --help` imports no stage; shell completion installs and completes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from rltcli.flags import ORDER, flag_decls, panel_of
from stages import commands
from stages.config import leaf_fields
from tests.conftest import ROOT, rlt
from tests.unit.cli.test_cli import cli


def panels(out: str) -> dict[str, str]:
    """Panel title -> the text inside that panel of a rich help screen."""
    found = {}
    for m in re.finditer(r"╭─ (.+?) ─+╮\n(.*?)╰", out, re.DOTALL):
        found[m.group(1)] = m.group(2)
    return found


def flat(out: str) -> str:
    """The help's words in one line: no box borders, wrapped lines joined."""
    return " ".join(out.replace("│", " ").split())


def test_teach_help_groups_its_options_in_panels(capsys):
    code, out, _ = cli(capsys, "teach", "--help")
    shown = panels(out)
    assert code == 0
    assert list(shown) == ["Arguments", "Inputs and output", "Models", "Sampling", "Training", "The reward",
                           "Launch", "Output and logging", "Config"]
    where = {"--data": "Inputs and output", "--out": "Inputs and output", "--teacher": "Models",
             "--student": "Models", "--temperature": "Sampling", "--num-generations": "Sampling", "--lr": "Training",
             "--max-steps": "Training", "--kl-coef": "The reward", "--launch": "Launch", "--nproc": "Launch",
             "--config": "Config", "--preset": "Config", "--json": "Output and logging"}
    for flag, panel in where.items():
        assert re.search(rf"{flag}\b", shown[panel]), (flag, panel)
    for flag in ("--teacher", "--student", "--data", "--out"):  # required: a star before the flag
        assert re.search(rf"\*\s+{flag}\b", out), flag
    assert not re.search(r"\*\s+--lr\b", out)
    assert "<paper|tiny>" in shown["Config"]


def test_every_flag_of_every_command_sits_in_a_named_panel():
    for name in commands.COMMANDS:
        for key, f, tp in leaf_fields(commands.config_class(name)):
            if f.metadata.get("flag"):
                assert panel_of(key) in ORDER, f"{name} {flag_decls(key, f, tp)[0]}: add '{key}' to flags.PANELS"


@pytest.mark.parametrize("name", list(commands.COMMANDS))
def test_every_help_lists_choices_and_says_key_value_once(capsys, name):
    code, out, err = cli(capsys, *name.split(), "--help")
    assert code == 0, err
    assert flat(out).count("KEY=VALUE: sets any config key") == 1
    for key, f, tp in leaf_fields(commands.config_class(name)):
        choices = f.metadata.get("choices")
        if f.metadata.get("flag") and choices:
            listed = ("<" + "|".join(map(str, choices)) + ">", f"[one of: {', '.join(map(str, choices))}]")
            assert any(text in flat(out) for text in listed), (name, key)
        if f.metadata.get("arg"):
            assert f"{key.upper()}: {' '.join(f.metadata['help'].split())}" in flat(out), (name, key)


def test_root_help_imports_no_stage_module():
    code = ("import sys\nfrom rltcli.app import main\n"
            "for argv in (['--help'], ['data', '--help'], ['model']):\n"
            "    try:\n        main(argv)\n    except SystemExit as e:\n        assert e.code == 0, argv\n"
            "print(' '.join(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    loaded = set(proc.stdout.split("\n")[-2].split())
    stages = {m for m in loaded if m.startswith(("stages.commands.", "stages.pipelines."))}
    assert not stages and not {"torch", "transformers", "pyarrow", "datasets"} & loaded, stages
    assert "Commands" in proc.stdout and "synth" in proc.stdout and "tiny" in proc.stdout


def _complete(words: str, tmp_path) -> list[str]:
    env = {"_RLT_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)}
    return rlt(env=env).stdout.split()


def test_shell_completion_installs_and_completes(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # Typed in bash, as a user does: typer finds the shell by walking the process tree, so the command runs as
    # bash's child (`; exit` keeps bash from exec'ing it), not as a child of whatever started the tests (make: sh).
    proc = subprocess.run(["bash", "-c", f'"{sys.executable}" -m rltcli --install-completion; exit $?'],
                          capture_output=True, text=True, check=False, cwd=ROOT, env={**os.environ, "HOME": str(home)},
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    script = (home / ".bash_completions" / "rlt.sh").read_text()
    assert "_RLT_COMPLETE=complete_bash" in script and "rlt.sh" in (home / ".bashrc").read_text()
    assert _complete("rlt dis", tmp_path) == ["distill"]
    assert _complete("rlt data sy", tmp_path) == ["synth"]
    assert _complete("rlt distill --role ", tmp_path) == ["student", "teacher"]
    assert _complete("rlt teach --preset ", tmp_path) == ["paper", "tiny"]
    assert "--max-steps" in _complete("rlt teach --max", tmp_path)
    source = rlt(env={"_RLT_COMPLETE": "bash_source"})  # the README's line for ~/.bashrc
    assert source.returncode == 0 and "complete -o default -F _rlt_completion rlt" in source.stdout


def test_help_keys_takes_an_optional_prefix(capsys):
    code, out, _ = cli(capsys, "teach", "--help-keys")
    assert code == 0 and "reward.kl_coef" in out and "lora.r" in out
    code, out, _ = cli(capsys, "teach", "--help-keys", "lora", "--json")
    assert code == 0 and "lora.r" in out and "reward.kl_coef" not in out
    code, out, _ = cli(capsys, "teach", "--help-keys=reward")
    assert code == 0 and "reward.kl_coef" in out and "lora.r" not in out


def test_markup_in_help_is_text(capsys):
    """Help text is rich markup: a `[default: x]` or `[required unless ...]` must show, not vanish."""
    code, out, _ = cli(capsys, "eval", "--help")
    assert code == 0 and "[default: " in out and "[required unless regrade]" in flat(out)


