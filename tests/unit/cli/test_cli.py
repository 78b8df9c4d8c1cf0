"""The CLI is generated from the command table and the config dataclasses: every command and field is reachable."""

from __future__ import annotations

import dataclasses
import typing

import pytest
import yaml

from rltcli.app import app, main
from rltcli.flags import _base, _container, flag_decls
from stages import commands
from stages.config import leaf_fields, opt


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run `rlt argv` in-process: (exit code, stdout, stderr); help as plain text even where the environment
    asks rich for colours (FORCE_COLOR, GITHUB_ACTIONS)."""
    from unittest import mock

    from typer import rich_utils

    with pytest.raises(SystemExit) as e, mock.patch.object(rich_utils, "FORCE_TERMINAL", False):
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def _lookup(cfg: dict, key: str):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


def _other_value(tp, default, f=None):
    """(text for key=value, the value it must resolve to): differs from the default and is valid for the field."""
    base = _base(tp)
    choices, check = (f.metadata.get("choices"), f.metadata.get("check")) if f is not None else (None, None)
    if choices:
        value = next(c for c in choices if c != default)
        return str(value), value
    if base is bool:
        return str(not default).lower(), not default
    if base is int:
        value = next(v for v in ((default or 0) + 7, (default or 0) + 1, 1, 2) if v != default
                     and (check is None or check(v) is None))
        return str(value), value
    if base is float:
        value = next(v for v in (0.125, 0.5, 2.0) if v != default and (check is None or check(v) is None))
        return str(value), value
    if _container(base) is list:
        return "a,b", ["a", "b"]
    if check is not None and check("zz") is not None:  # a checked string (a device)
        return "cpu", "cpu"
    return "zz", "zz"


FIELDS = [(name, key, f, tp) for name in commands.COMMANDS
          for key, f, tp in leaf_fields(commands.config_class(name))]


def test_every_command_is_reachable_from_the_root(capsys):
    for name in commands.COMMANDS:
        code, out, err = cli(capsys, *name.split(), "--help")
        assert code == 0 and "Usage: rlt " + name in out, err
    code, out, _ = cli(capsys, "--help")
    assert code == 0 and {n.split()[0] for n in commands.COMMANDS} <= set(out.split())
    assert set(app.list_commands(None)) == {n.split()[0] for n in commands.COMMANDS}


@pytest.mark.parametrize("name,key,f,tp", FIELDS, ids=[f"{n}:{k}" for n, k, _, _ in FIELDS])
def test_every_field_is_settable_as_key_value_and_documented(capsys, name, key, f, tp):
    assert f.metadata.get("help"), f"{name}: field {key} has no help"
    default = _lookup(dataclasses.asdict(commands.config_class(name)()), key)
    if _container(_base(tp)) is dict:
        text, want, key_arg = "v", {"k": "v"}, f"{key}.k=v"
    elif key == "preset":  # a preset named by its key is applied: it must be one of the command's
        want = min(commands.presets(name))
        key_arg = f"preset={want}"
    else:
        text, want = _other_value(tp, default, f)
        key_arg = f"{key}={text}"
    positional = [k for k, g, _ in leaf_fields(commands.config_class(name)) if g.metadata.get("arg") and k != key]
    code, out, err = cli(capsys, *name.split(), *(f"{k}=x" for k in positional), key_arg, "--print-config")
    assert code == 0, err
    got = _lookup(yaml.safe_load(out), key)
    assert got == want, (key, got, want)


FLAGGED = [(n, k, f, tp) for n, k, f, tp in FIELDS if f.metadata.get("flag")]


@pytest.mark.parametrize("name,key,f,tp", FLAGGED, ids=[f"{n}:{k}" for n, k, _, _ in FLAGGED])
def test_every_flag_sets_its_field(capsys, name, key, f, tp):
    default = _lookup(dataclasses.asdict(commands.config_class(name)()), key)
    decl = flag_decls(key, f, tp)[0]
    on, _, off = decl.partition("/")
    if _base(tp) is bool:
        argv, want = [off if default and off else on], not default if off else True
    elif _container(_base(tp)) is dict:
        argv, want = [on, "k=v"], {"k": "v"}
    elif _container(_base(tp)) is list:
        argv, want = [on, "a", on, "b"], ["a", "b"]
    else:
        text, want = _other_value(tp, default, f)
        argv = [on, text]
    positional = [k for k, g, _ in leaf_fields(commands.config_class(name)) if g.metadata.get("arg")]
    code, out, err = cli(capsys, *name.split(), *(f"{k}=x" for k in positional), *argv, "--print-config")
    assert code == 0, err
    assert _lookup(yaml.safe_load(out), key) == want


def test_flags_are_unique_and_device_is_the_same_flag_everywhere():
    for name in commands.COMMANDS:
        flags = [d for k, f, tp in leaf_fields(commands.config_class(name)) if f.metadata.get("flag")
                 for d in flag_decls(k, f, tp)[0].split("/")]
        assert len(flags) == len(set(flags)), f"{name}: duplicate flags"
        devices = [k for k, _, _ in leaf_fields(commands.config_class(name)) if k.split(".")[-1] == "device"]
        assert len(devices) <= 1 and (not devices or "--device" in flags), name
    assert any(k == "engine.device" for k, _, _ in leaf_fields(commands.config_class("eval")))


def test_pipeline_steps_use_the_same_table(tmp_path):
    """A pipeline accepts a command as a step exactly when the command table says it may be one."""
    from stages.errors import UserError
    from stages.pipelines import run as pipeline

    for name, c in commands.COMMANDS.items():
        try:
            pipeline.parse("p", {"steps": {"s": {"command": name}}}, tmp_path)
            accepted = True
        except UserError as e:  # a step command may still miss its required options: that is not a refusal
            accepted = "'command' must be one of" not in str(e)
        assert accepted == c.step, name
    assert {"teach", "generate", "distill", "eval", "score", "data synth", "model tiny"} <= set(commands.STEPS)


def test_a_new_config_field_appears_in_help_and_print_config_with_no_cli_edit(capsys, monkeypatch):
    import stages.commands.data

    @dataclasses.dataclass
    class Extended(stages.commands.data.SynthConfig):
        brand_new: int = opt(5, "A field added to the config only.", flag=True)
        hidden_one: float = opt(0.5, "Settable as key=value only.")

    monkeypatch.setattr(stages.commands.data, "SynthConfig", Extended)
    code, out, _ = cli(capsys, "data", "synth", "--help")
    assert code == 0 and "--brand-new" in out and "A field added to the config only." in out
    assert "--hidden-one" not in out
    code, out, _ = cli(capsys, "data", "synth", "--brand-new", "9", "hidden_one=2", "--print-config")
    cfg = yaml.safe_load(out)
    assert code == 0 and cfg["brand_new"] == 9 and cfg["hidden_one"] == 2.0


@pytest.mark.parametrize("argv,expect", [
    (["data", "synth", "--n", "many"], "'many' is not a valid integer"),
    (["data", "synth", "n=many"], "'n' expects an integer"),
    (["data", "synth", "n"], "malformed override 'n'"),
    (["data", "synth", "--bogus"], "No such option"),
    (["fly"], "no command 'rlt fly'"),
    (["data", "import", "--print-config"], "missing argument SRC"),
    (["run", "demo", "extra"], "unexpected argument 'extra'"),
    (["teach", "--preset", "nope"], "unknown --preset 'nope'"),
    (["data", "import", "x.parquet", "--map", "question"], "expects key=value"),
    # typer's own refusals are one line too
    (["teach", "--lr"], "Option '--lr' requires an argument"),
    (["teach", "--lr", "fast"], "'fast' is not a valid float"),
    (["teach", "--force=yes"], "does not take a value"),
    (["--bogus"], "No such option: --bogus"),
    (["-v"], "Missing command"),
    (["data", "bogus"], "no command 'rlt data bogus'"),
    (["teach", "--help-keys", "rewrad"], "did you mean 'reward'?"),
])
def test_usage_errors_are_one_line_exit_2(capsys, argv, expect):
    code, _, err = cli(capsys, *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1 and expect in err and err.startswith("rlt: error: ")


def test_no_arguments_prints_help_and_exits_0(capsys):
    code, out, _ = cli(capsys)
    assert code == 0 and "Commands" in out and "teach" in out
    code, out, _ = cli(capsys, "data")
    assert code == 0 and "synth" in out and "merge" in out


def test_config_types_are_ones_the_cli_can_build():
    supported = {int, float, str, bool, list, dict}
    for name, key, _, tp in FIELDS:
        assert _container(_base(tp)) in supported or typing.get_origin(_base(tp)) in supported, (name, key, tp)


@pytest.mark.parametrize("argv,old,key,value", [
    (["generate", "--samples", "3"], "samples", "num_generations", 3),
    (["generate", "samples=3"], "samples", "num_generations", 3),
    (["eval", "--samples", "2"], "samples", "num_generations", 2),
    (["generate", "score_batch_size=4"], "score_batch_size", "reward_batch_size", 4),
    (["teach", "max_completion_length=9"], "max_completion_length", "max_new_tokens", 9),
    (["teach", "--max-completion-length", "9", "max_completion_length=9"], "max_completion_length", "max_new_tokens", 9),
])
def test_old_keys_still_work_with_one_deprecation_line(capsys, monkeypatch, argv, old, key, value):
    from stages import config

    monkeypatch.setattr(config, "_warned", set())
    code, out, err = cli(capsys, *argv, "--print-config")
    assert code == 0 and yaml.safe_load(out)[key] == value
    assert [line for line in err.splitlines() if "deprecated" in line] == [
        f"warning: config key '{old}' is deprecated: use '{key}'"]


def test_every_alias_names_a_field_of_its_config():
    from stages.config import aliases

    for name in commands.COMMANDS:
        cls = commands.config_class(name)
        fields = {f.name for f in dataclasses.fields(cls)}
        assert set(aliases(cls).values()) <= fields and not set(aliases(cls)) & fields, name


def test_device_and_batch_size_mean_one_thing_everywhere(capsys):
    """`--device`: one help, `device=` a key wherever the flag is, one refusal; `--batch-size`: sequences per batch."""
    helps, batch_helps = set(), set()
    for name in commands.COMMANDS:
        cls = commands.config_class(name)
        positional = [f"{k}=x" for k, g, _ in leaf_fields(cls) if g.metadata.get("arg")]
        devices = [f for k, f, _ in leaf_fields(cls) if k.split(".")[-1] == "device"]
        if devices:
            helps.add(devices[0].metadata["help"])
            code, out, err = cli(capsys, *name.split(), *positional, "device=cpu", "--print-config")
            assert code == 0 and "device: cpu" in out, (name, err)
            code, _, err = cli(capsys, *name.split(), *positional, "--device", "gpu", "--print-config")
            assert code == 2 and "--device must be auto, cpu, cuda, cuda:N or mps, got 'gpu'" in err, (name, err)
        batch_helps |= {f.metadata["help"].split(" ")[0] for k, f, tp in leaf_fields(cls)
                        if f.metadata.get("flag") and flag_decls(k, f, tp)[0] == "--batch-size"}
    assert len(helps) == 1 and batch_helps == {"Sequences"}


def test_version_and_json_results(capsys, tmp_path):
    import json

    from stages import __version__

    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.strip() == f"rlt {__version__}"
    code, out, _ = cli(capsys, "data", "synth", "--out", tmp_path / "d", "--n", "3", "--json")
    assert code == 0 and json.loads(out) == {"path": str(tmp_path / "d"), "kind": "dataset", "rows": 3}
    code, out, _ = cli(capsys, "inspect", tmp_path / "d", "--json")
    info = json.loads(out)
    assert code == 0 and info["state"] == "complete" and info["rows"] == 3 and len(info["head"]) == 3
    code, out, _ = cli(capsys, "inspect", tmp_path, "--json")
    assert code == 0 and [a["path"] for a in json.loads(out)["artifacts"]] == [str(tmp_path / "d")]
