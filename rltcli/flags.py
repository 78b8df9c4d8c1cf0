"""Command-line parameters built from a config dataclass.

Every field of a command's config (nested ones dotted) is settable as a
`key=value` argument; fields declared with `opt(..., flag=True)` are also
`--key` options, `opt(..., arg=True)` fields are positional. Types follow the
field annotation: int/float/str values, bools as `--x/--no-x`, lists as a
repeatable option, mappings as repeatable `--key k=v`.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from dataclasses import MISSING, Field
from typing import Any

import click

from stages.config import flag_names, leaf_fields

OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*=")  # a dotted key=value token (paths never match: no '/')
_SCALARS = {int: click.INT, float: click.FLOAT, str: click.STRING}


def _base(tp: Any) -> Any:
    """The annotation without `| None`."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if typing.get_origin(tp) in (typing.Union, types.UnionType) else tp


def _container(tp: Any) -> Any:
    return typing.get_origin(tp) or tp


def _default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not MISSING else None


def flag_decls(key: str, f: Field, tp: Any) -> list[str]:
    """The option names of a flagged field: `engine.batch_size` -> ['--batch-size'] (the rule: config.flag_names)."""
    return flag_names(key, f, tp)


def _help(f: Field, key: str, decls: list[str]) -> str:
    default = _default(f)
    shown = "" if default in ("", None, [], {}) else f" [default: {default}]"
    named = decls[0].split("/")[0][2:].replace("-", "_") == key  # say the key when the flag is named otherwise
    return f"{f.metadata.get('help', '')}{shown}" + ("" if named else f" (key: {key})")


def option(key: str, f: Field, tp: Any) -> click.Option:
    """A click option for one flagged field; its value is None when not given."""
    base, decls = _base(tp), flag_decls(key, f, tp)
    common = {"help": _help(f, key, decls), "default": None, "expose_value": True, "show_default": False}
    name = key.replace(".", "__")
    if base is bool:
        return click.Option([*decls, name], **common)
    if _container(base) is list:
        return click.Option([*decls, name], multiple=True, **{**common, "default": ()})
    if _container(base) is dict:
        return click.Option([*decls, name], multiple=True, metavar="KEY=VALUE", **{**common, "default": ()})
    return click.Option([*decls, name], type=_SCALARS.get(base, click.STRING), **common)


def params_of(cls) -> tuple[list[click.Option], list[tuple[str, Any]]]:
    """(options of the flagged fields, [(key, type)] of the positional fields) of a config class."""
    options, positional = [], []
    own = inspect.get_annotations(cls)  # a config's own fields are listed before inherited ones
    for key, f, tp in sorted(leaf_fields(cls), key=lambda row: row[0].split(".")[0] not in own):
        if f.metadata.get("arg"):
            positional.append((key, tp))
        elif f.metadata.get("flag"):
            options.append(option(key, f, tp))
            names = {d for decl in flag_decls(key, f, tp) for d in decl.split("/")}
            olds = [(f"--{old.rsplit('.', 1)[-1].replace('_', '-')}", old) for old in old_keys(key, f)]
            options += [click.Option([flag, old.replace(".", "__")], type=_SCALARS.get(_base(tp), click.STRING),
                                     hidden=True)
                        for flag, old in olds if flag not in names]  # an old key whose flag is the field's own
    return options, positional


def old_keys(key: str, f: Field) -> list[str]:
    """The deprecated dotted keys of a field (its `aliases`), still accepted with one deprecation line."""
    prefix = key.rpartition(".")[0]
    return [f"{prefix}.{old}" if prefix else old for old in f.metadata.get("aliases", ())]


def _pairs(key: str, values: tuple[str, ...]) -> list[str]:
    """`--map a=b,c=d --map e=f` -> dotted overrides ['map.a=b', 'map.c=d', 'map.e=f']."""
    out = []
    for value in values:
        parts = value.split(",") if all("=" in p for p in value.split(",")) else [value]
        for part in parts:
            k, sep, v = part.partition("=")
            if not sep or not k.strip():
                raise click.BadParameter(f"expects key=value, got {value!r}", param_hint=f"'{key}'")
            out.append(f"{key}.{k.strip()}={v}")
    return out


def collect(cls, values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Split click's values into (typed options by dotted key, dotted overrides from mapping flags)."""
    options, overrides = {}, []
    for key, f, _ in leaf_fields(cls):  # a deprecated flag passes its old key on: resolve says it is deprecated
        options.update({old: values[old.replace(".", "__")] for old in old_keys(key, f)
                        if values.get(old.replace(".", "__")) is not None})
    for key, f, tp in leaf_fields(cls):
        value = values.get(key.replace(".", "__"))
        if value is None or value == ():
            continue
        if _container(_base(tp)) is dict:
            overrides += _pairs(key, value)
        elif _container(_base(tp)) is list:
            options[key] = list(value)
        else:
            options[key] = value
    return options, overrides


def split_args(tokens: tuple[str, ...], positional: list[tuple[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """Positional tokens -> ({field: value}, overrides). Without positional fields every token is an override."""
    if not positional:
        return {}, list(tokens)
    plain = [t for t in tokens if not OVERRIDE.match(t)]
    overrides = [t for t in tokens if OVERRIDE.match(t)]
    values: dict[str, Any] = {}
    for key, tp in positional:
        if _container(_base(tp)) is list:
            values[key], plain = (plain or None), []
        elif plain:
            values[key], plain = plain[0], plain[1:]
    if plain:
        raise click.UsageError(f"unexpected argument {plain[0]!r}")
    return {k: v for k, v in values.items() if v is not None}, overrides


def usage_metavar(positional: list[tuple[str, Any]]) -> str:
    """`SRC [KEY=VALUE]...` for the usage line."""
    names = [k.upper() + ("..." if _container(_base(tp)) is list else "") for k, tp in positional]
    return " ".join([*names, "[KEY=VALUE]..."])
