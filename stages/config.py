"""Strict, typed configuration for every stage.

Each command has one dataclass whose fields carry a help text (`opt(...)`).
A config is resolved from, in increasing precedence:
dataclass defaults < `--preset` < `--config FILE.yaml` < dotted `key=value`
overrides < explicit CLI options. Unknown keys (nested too) and values of the
wrong type raise one `UserError` that lists every problem and the valid names.

    cfg = resolve(GenerateConfig, file="gen.yaml", overrides=["seed=3"])
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any

import yaml

from stages.errors import UserError

log = logging.getLogger(__name__)


def opt(default: Any = dataclasses.MISSING, help: str = "", hash: bool = True, flag: bool | str = False,
        arg: bool = False, aliases: tuple[str, ...] = (), **kw) -> Any:
    """A config field with its help text (also its `rlt` help).

    `hash=False` keeps it out of the config hash (paths of outputs, devices).
    Every field is settable as a dotted `key=value` override; `flag=True` also
    shows it as `--key` on the command line (`flag="--name"` or
    `"--on/--off"` names it), `arg=True` makes it a positional argument.
    `aliases` are the field's old names: still accepted (as keys and, for a
    flag, as `--old-name`) with one deprecation line.
    """
    meta = {"help": help, "hash": hash, "flag": flag, "arg": arg, "aliases": tuple(aliases)}
    if callable(default) and not isinstance(default, (str, int, float, bool)):
        return field(default_factory=default, metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


# ----------------------------------------------------------------------------- typing


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_dataclass_type(tp) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def yaml_value(text: str) -> Any:
    """`text` read as a YAML value (`1` -> 1, `[a, b]` -> a list, blank -> None); ValueError if it is not YAML."""
    try:
        return yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        raise ValueError(f"is not a YAML value: {text!r}") from None


def _coerce(value: Any, tp: Any, from_text: bool) -> Any:
    """Convert `value` to type `tp`; raise ValueError with a short reason."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        is_null = value is None or (from_text and str(value).lower() in ("null", "none", "~"))
        if is_null and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, from_text)
            except ValueError:
                pass
        raise ValueError(f"expects {_type_name(tp)}, got {value!r}")
    if tp is str:
        if from_text:
            return str(value)
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError(f"expects a string, got {value!r}")
    if from_text and isinstance(value, str):
        try:
            value = yaml_value(value)
        except ValueError:
            raise ValueError(f"expects {_type_name(tp)}, got {value!r}") from None
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"expects true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"expects an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ValueError(f"expects a number, got {value!r}")
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, list):
            raise ValueError(f"expects a list, got {value!r}")
        return [v if item is Any else _coerce(v, item, from_text=False) for v in value]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ValueError(f"expects a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    raise ValueError(f"unsupported type {tp!r}")


# ----------------------------------------------------------------------------- resolving


_warned: set[str] = set()


def aliases(cls) -> dict[str, str]:
    """Old (deprecated) key -> current field name, from the fields' `opt(..., aliases=...)`."""
    return {old: f.name for f in dataclasses.fields(cls) for old in f.metadata.get("aliases", ())}


def _renamed(cls, head: str, prefix: str) -> str:
    """The current name of a key; an old name is accepted with one deprecation line per process."""
    new = aliases(cls).get(head) if head not in _fields(cls) else None
    if new is None:
        return head
    if prefix + head not in _warned:
        _warned.add(prefix + head)
        log.warning("config key '%s%s' is deprecated: use '%s%s'", prefix, head, prefix, new)
    return new


def _apply(obj: Any, key: str, value: Any, from_text: bool, problems: list[str], prefix: str = "") -> None:
    """Set dotted `key` on a dataclass instance, collecting problems (named by full key)."""
    head, _, rest = key.partition(".")
    fields = _fields(type(obj))
    full = f"{prefix}{key}"
    head = _renamed(type(obj), head, prefix)
    if head not in fields:
        problems.append(f"unknown key '{full}' (valid: {', '.join(sorted(fields))})")
        return
    tp = _hints(type(obj))[head]
    current = getattr(obj, head)
    if rest:
        if _is_dataclass_type(tp):
            _apply(current, rest, value, from_text, problems, f"{prefix}{head}.")
        elif typing.get_origin(tp) is dict or tp is dict:
            sub = dict(current or {})
            try:
                sub[rest] = yaml_value(value) if from_text and isinstance(value, str) else value
            except ValueError as e:
                problems.append(f"'{full}' {e}")
                return
            setattr(obj, head, sub)
        else:
            problems.append(f"'{prefix}{head}' has no sub-keys (got '{full}')")
        return
    if _is_dataclass_type(tp):
        if not isinstance(value, dict):
            problems.append(f"'{full}' expects a mapping, got {value!r}")
            return
        for k, v in value.items():
            _apply(current, str(k), v, from_text, problems, f"{full}.")
        return
    try:
        setattr(obj, head, _coerce(value, tp, from_text))
    except ValueError as e:
        problems.append(f"'{full}' {e}")


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping with `yaml.safe_load`; UserError if absent or not a mapping."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise UserError(f"config file {p} is not valid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {p} must be a mapping of keys, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[str, str]:
    """Split `a.b=value`; UserError naming the override when malformed."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or any(c.isspace() for c in key.strip()):
        raise UserError(f"malformed override '{text}': expected dotted key=value, e.g. reward.kl_coef=3")
    return key.strip(), value


def resolve(cls, file: str | Path | None = None, overrides: list[str] | None = None,
            preset: dict | None = None, options: dict | None = None):
    """Build a `cls` instance from presets, a YAML file, overrides and CLI options."""
    cfg = cls()
    problems: list[str] = []
    layers: list[tuple[list[tuple[str, Any]], bool]] = []
    if preset:
        layers.append((list(preset.items()), False))
    if file:
        layers.append((list(load_yaml(file).items()), False))
    if overrides:
        layers.append(([parse_override(o) for o in overrides], True))
    if options:
        layers.append(([(k, v) for k, v in options.items() if v is not None], False))
    for items, from_text in layers:
        for key, value in items:
            _apply(cfg, key, value, from_text, problems)
    if problems:
        raise UserError("config: " + "; ".join(problems))
    return cfg


def to_dict(cfg) -> dict:
    """Plain-dict view of a config (for manifests and `--print-config`)."""
    return dataclasses.asdict(cfg)


def _hashable(obj) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _hashable(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.metadata.get("hash", True)}
    return obj


def config_hash(cfg, extra: bool = True) -> str:
    """sha256 of the fields that change a stage's output (paths of outputs excluded).

    A config class may declare `HASH_EXTRA: ClassVar[dict]`, versions of code whose
    change must invalidate outputs (e.g. the eval grader's version); they join the
    hash unless `extra=False`.
    """
    data = _hashable(cfg)
    versions = getattr(type(cfg), "HASH_EXTRA", None)
    if extra and versions:
        data = {**data, "__versions__": dict(versions)}
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def leaf_fields(cls, prefix: str = "") -> list[tuple[str, dataclasses.Field, Any]]:
    """(dotted key, field, type) of every settable key of a config class, nested configs walked."""
    rows = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if _is_dataclass_type(hints[f.name]):
            rows += leaf_fields(hints[f.name], f"{prefix}{f.name}.")
        else:
            rows.append((f"{prefix}{f.name}", f, hints[f.name]))
    return rows
