"""`rlt CMD --help-keys [PREFIX]`: every config key of a command with its type, default and help.

`--help` shows the flags; many keys have none (`min_digits`, `reward.kl_coef`, `lora.r`): this lists
every key, nested ones dotted, from the same config dataclass (`stages.config.leaf_fields`), so a
field added to a config is listed with the help its `opt(...)` gives. A `trl` mapping (teach,
distill) takes any field of TRL's config class (the stage's `TRL_CONFIG`): `--help-keys trl`
lists those fields with TRL's own help, leaving out the ones a top-level key sets (`MANAGED`).

    rlt teach --help-keys            # every key
    rlt teach --help-keys reward     # reward.* (or any key containing 'reward')
    rlt distill --help-keys trl      # trl.* : the fields of trl.SFTConfig
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import types
import typing
from typing import Any

import click

from stages.config import leaf_fields, shown_name
from stages.errors import UserError


def type_name(tp: Any) -> str:
    """`int`, `float | None`, `list[str]`, `mapping` (a dict) for an annotation."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "None"
    if tp is dict or typing.get_origin(tp) is dict:
        return "mapping"
    if typing.get_origin(tp) is list:
        return "list[" + ", ".join(type_name(a) for a in typing.get_args(tp)) + "]"
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _shown(value: Any) -> str:
    """A default as it reads on the command line: `unset` for None or an empty string."""
    if value is None or value == "":
        return "unset"
    return repr(value) if isinstance(value, str) else str(value)


def rows(cls) -> list[tuple[str, str, str, str]]:
    """(key, type, default, help) of every key of config class `cls`, its own fields first; the help
    ends with the flag that also sets the key (`--max-steps`) or `(positional)`."""
    defaults = dataclasses.asdict(cls())
    own = set(inspect.get_annotations(cls))  # as `--help` orders them
    out = []
    for key, f, tp in sorted(leaf_fields(cls), key=lambda row: row[0].split(".")[0] not in own):
        value: Any = defaults
        for part in key.split("."):
            value = value[part]
        extra = ""
        if f.metadata.get("arg"):
            extra = " (positional argument)"
        elif f.metadata.get("flag"):
            extra = f" (flag {shown_name(key, f, tp)})"
        choices = f.metadata.get("choices")
        if choices:
            extra += f" (one of: {', '.join(map(str, choices))})"
        out.append((key, type_name(tp), _shown(value), f.metadata.get("help", "") + extra))
    return out


def trl_rows(stage_module) -> list[tuple[str, str, str, str]]:
    """(trl.NAME, type, default, TRL's help) of every field of the stage's TRL config that a `trl.*` key may
    set: TRL's config class (`TRL_CONFIG`) less the fields a top-level key sets (`MANAGED`)."""
    import trl

    config_cls = getattr(trl, stage_module.TRL_CONFIG)
    managed = getattr(stage_module, "MANAGED", {})
    hints = typing.get_type_hints(config_cls)
    out = []
    for f in dataclasses.fields(config_cls):
        if not f.init or f.name in managed or f.name.startswith("_"):
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        help_text = " ".join(str(f.metadata.get("help", "")).split())
        out.append((f"trl.{f.name}", type_name(hints.get(f.name, Any)), _shown(default), help_text))
    return out


def _matches(key: str, prefix: str) -> bool:
    return not prefix or key == prefix or key.startswith(prefix + ".") or prefix in key


def text(name: str, prefix: str = "") -> str:
    """The listing of command `name`'s keys matching `prefix`; UserError (one line, exit 2) when
    none does, with the nearest key."""
    from stages import commands

    stage = commands.module(name)
    cls = commands.config_class(name)
    listed = rows(cls)
    has_trl = hasattr(stage, "TRL_CONFIG")
    if has_trl:
        listed = [(k, t, d, h + f" Each trl.NAME=VALUE sets field NAME of trl.{stage.TRL_CONFIG}; "
                   f"`rlt {name} --help-keys trl` lists them.") if k == "trl" else (k, t, d, h)
                  for k, t, d, h in listed]
        if prefix == "trl" or prefix.startswith("trl."):
            listed = [r for r in listed if r[0] != "trl"] + trl_rows(stage)
    chosen = [r for r in listed if _matches(r[0], prefix)]
    if not chosen:
        names = {k.rsplit(".", i)[0] for k, _, _, _ in listed for i in range(k.count(".") + 1)}  # keys and groups
        near = difflib.get_close_matches(prefix, sorted(names), n=1, cutoff=0.6)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        raise UserError(f"no config key of 'rlt {name}' matches {prefix!r}{hint}")
    formatter = click.HelpFormatter(width=120, max_width=120)
    head = f"Config keys of rlt {name}" + (f" matching {prefix!r}" if prefix else "")
    with formatter.section(head + " (set as KEY=VALUE, nested keys dotted, or in --config FILE.yaml)"):
        formatter.write_dl([(f"{k}  {t} = {d}", h) for k, t, d, h in chosen], col_max=48)
    return formatter.getvalue().rstrip("\n")
