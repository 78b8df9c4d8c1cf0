"""`rlt CMD --help-keys`: every config key of every command, nested and trl.* ones too, with type, default and help."""

from __future__ import annotations

import dataclasses
import re

import pytest

from rltcli.app import main
from rltcli.keys import rows
from stages import commands
from stages.config import leaf_fields


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(list(argv))
    out, err = capsys.readouterr()
    return e.value.code, out, err


def _listed(out: str) -> dict[str, str]:
    """key -> the text after it (type = default, then help, wrapped lines joined) of a --help-keys listing."""
    entries: dict[str, str] = {}
    key = None
    for line in out.splitlines()[1:]:
        m = re.match(r"^  (\S+)  (.*)$", line)
        if m:
            key = m.group(1)
            entries[key] = m.group(2)
        elif key:
            entries[key] += " " + line.strip()
    return {k: " ".join(v.split()) for k, v in entries.items()}


@pytest.mark.parametrize("name", list(commands.COMMANDS))
def test_every_key_of_every_command_is_listed_with_its_help(capsys, name):
    code, out, err = cli(capsys, *name.split(), "--help-keys")
    assert code == 0, err
    listed = _listed(out)
    keys = [k for k, _, _ in leaf_fields(commands.config_class(name))]
    assert set(listed) == set(keys)
    for key, f, _ in leaf_fields(commands.config_class(name)):
        assert f.metadata.get("help", "").strip(), f"{name}: key {key} has no help"
        assert " ".join(f.metadata["help"].split()) in listed[key], key


def test_nested_keys_show_type_default_and_help(capsys):
    code, out, _ = cli(capsys, "teach", "--help-keys", "reward")
    assert code == 0
    listed = _listed(out)
    from stages.method.settings import RewardConfig

    default = RewardConfig().kl_coef
    assert listed["reward.kl_coef"].startswith(f"float = {default} ")
    assert "lora.r" not in listed and all("reward" in k for k in listed)
    code, out, _ = cli(capsys, "data", "synth", "--help-keys", "min_digits")
    assert code == 0 and _listed(out)["min_digits"].startswith("int = 2 ")
    key_rows = {k: (t, d) for k, t, d, _ in rows(commands.config_class("teach"))}
    assert key_rows["max_steps"] == ("int | None", "unset") and key_rows["loss_type"][0] == "str"
    assert any(k.startswith("lora.") for k in key_rows) and any(k.startswith("prompts.") for k in key_rows)
    assert any(k.startswith("engine.") for k, _, _, _ in rows(commands.config_class("eval")))


@pytest.mark.parametrize("name,trl_class", [("distill", "SFTConfig"), ("teach", "GRPOConfig")])
def test_trl_keys_list_the_fields_of_trls_config(capsys, name, trl_class):
    import trl

    code, out, _ = cli(capsys, name, "--help-keys")
    assert f"trl.{trl_class}" in _listed(out)["trl"]  # the one trl row says what its keys are
    code, out, err = cli(capsys, name, "--help-keys", "trl")
    assert code == 0, err
    listed = _listed(out)
    managed = commands.module(name).MANAGED
    fields = {f"trl.{f.name}": f for f in dataclasses.fields(getattr(trl, trl_class)) if f.init}
    assert set(listed) == {k for k in fields if k[4:] not in managed and not k[4:].startswith("_")}
    beta2 = fields["trl.adam_beta2"]
    assert listed["trl.adam_beta2"].startswith(f"float = {beta2.default} ")
    assert " ".join(beta2.metadata["help"].split()) in listed["trl.adam_beta2"]
    assert "trl.learning_rate" not in listed  # set by lr: not a trl.* key


def test_a_prefix_matching_nothing_is_one_line_with_the_nearest(capsys):
    code, out, err = cli(capsys, "eval", "--help-keys", "engn")
    assert code == 2 and not out
    assert err.strip() == "rlt: error: no config key of 'rlt eval' matches 'engn' (did you mean 'engine'?)"
