"""Strict, typed configuration for every stage.

Each command has one dataclass whose fields carry a help text (`opt(...)`).
A config is resolved from, in increasing precedence:
dataclass defaults < `--preset` < `--config FILE.yaml` < dotted `key=value`
overrides < explicit CLI options. Unknown keys (nested too) and values of the
wrong type raise one `UserError` that lists every problem, suggests the nearest
valid key and names the file a key came from. Values are checked as the config
resolves: a field's `choices`, its `check` (e.g. `at_least(1)`) and, once the
config is complete, `required`.

YAML is read as YAML 1.2 reads numbers and booleans (`1e-5`, `.5`, `1_000` are
numbers; only true/false are booleans), in files, pipelines and `key=value`.

    cfg = resolve(GenerateConfig, file="gen.yaml", overrides=["seed=3"])
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import logging
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import field
from pathlib import Path
from typing import Any

import yaml

from stages import secrets
from stages.errors import UserError

log = logging.getLogger(__name__)


def opt(default: Any = dataclasses.MISSING, help: str = "", hash: bool = True, flag: bool | str = False,
        arg: bool = False, aliases: tuple[str, ...] = (), required: bool | str = False,
        choices: tuple | None = None, check: Callable[[Any], str | None] | None = None, input: bool = False,
        **kw) -> Any:
    """A config field with its help text (also its `rlt` help).

    `hash=False` keeps it out of the config hash (paths of outputs, devices).
    `input=True` marks a path (or list of paths) the stage reads: kept out of the
    config hash and identified by content instead (`inputs_of`), so a moved
    folder with the same data changes nothing and a retrained model does.
    Every field is settable as a dotted `key=value` override; `flag=True` also
    shows it as `--key` on the command line (`flag="--name"` or
    `"--on/--off"` names it), `arg=True` makes it a positional argument.
    `aliases` are the field's old names: still accepted (as keys and, for a
    flag, as `--old-name`) with one deprecation line.
    `required=True`: a command refuses to run while the field is empty (checked
    once the config is complete, see `check_required`); `required="other"`: unless
    field `other` is set (eval's models, unless `--regrade`). `choices` are the valid
    values; `check(value)` returns what is wrong with a value (None when it is
    fine). Both are checked whenever a config resolves (None, "unset", passes).
    """
    meta = {"help": help, "hash": hash and not input, "flag": flag, "arg": arg, "aliases": tuple(aliases),
            "required": required, "choices": tuple(choices) if choices else None, "check": check, "input": input}
    if callable(default) and not isinstance(default, (str, int, float, bool)):
        return field(default_factory=default, metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


def at_least(low: float) -> Callable[[Any], str | None]:
    """A `check` for numbers >= `low`."""
    return lambda v: None if v >= low else f"must be at least {low:g}, got {v:g}"


def above(low: float) -> Callable[[Any], str | None]:
    """A `check` for numbers > `low` (a learning rate, a temperature's top_p)."""
    return lambda v: None if v > low else f"must be above {low:g}, got {v:g}"


def between(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Callable[[Any], str | None]:
    """A `check` for `low <= v <= high`; `low_open` / `high_open` leave an end out (top_p: (0, 1])."""
    def check(v):
        ok = (low < v if low_open else low <= v) and (v < high if high_open else v <= high)
        span = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        return None if ok else f"must be in {span}, got {v:g}"
    return check


# ----------------------------------------------------------------------------- typing


def _fields(cls) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_dataclass_type(tp) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


_NONE = type(None)
_WORDS = {bool: "true/false", int: "an integer", float: "a number", str: "a string", list: "a list",
          dict: "a mapping"}


def expects(tp) -> str:
    """What a value of type `tp` looks like, in words: `bool | None` -> 'true/false (or null: unset)'."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        words = " or ".join(expects(a) for a in args if a is not _NONE)
        return words + (" (or null: unset)" if _NONE in args else "")
    return _WORDS.get(typing.get_origin(tp) or tp, getattr(tp, "__name__", str(tp)))


class _Yaml12Loader(yaml.SafeLoader):
    """yaml.SafeLoader reading numbers and booleans as YAML 1.2 (and Python) do.

    PyYAML follows YAML 1.1, where `1e-5` is a string (a float needs a dot) and `yes`/`off`
    are booleans; in YAML 1.2 and in Python `1e-5` is a number and only true/false are booleans.
    A key given twice in one mapping is an error, as YAML requires (PyYAML keeps the last silently);
    a key after a merge (`<<: *base`) still overrides the merged one.
    """

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} given twice (first on line {seen[key].line + 1})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


_FLOAT = "tag:yaml.org,2002:float"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_FLOAT, _INT, _BOOL)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Yaml12Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Yaml12Loader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+)$"), list("-+0123456789"))
_Yaml12Loader.add_implicit_resolver(_FLOAT, re.compile(r"""^(?:
    [-+]?(?:[0-9][0-9_]*)?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?   # 1.5  .5  -0.25e-3
   |[-+]?[0-9][0-9_]*\.(?:[eE][-+]?[0-9]+)?                   # 1.  1.e3
   |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+                          # 1e-5  1E5
   |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.VERBOSE), list("-+0123456789."))


def _yaml12_int(loader, node) -> int:
    text = loader.construct_scalar(node).replace("_", "")
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
        if text.startswith(prefix):
            return sign * int(text[2:], base)
    return sign * int(text)  # decimal, leading zeros too: 010 is 10, as in YAML 1.2


_Yaml12Loader.add_constructor(_INT, _yaml12_int)


def yaml_load(text: str) -> Any:
    """`text` parsed as YAML (safe: no Python tags) with YAML 1.2 numbers and booleans; raises yaml.YAMLError."""
    return yaml.load(text, Loader=_Yaml12Loader)


def yaml_value(text: str) -> Any:
    """`text` read as a YAML value (`1` -> 1, `1e-5` -> 1e-05, `[a, b]` -> a list, blank -> None).

    Raises ValueError if it is not YAML.
    """
    try:
        return yaml_load(text) if text.strip() else None
    except yaml.YAMLError:
        raise ValueError(f"is not a YAML value: {text!r}") from None


def _number(value: Any) -> Any:
    """A string that Python reads as a number (`1e-5`, `1_000`, ` 2 `) as that number; anything else unchanged."""
    if not isinstance(value, str):
        return value
    for convert in (int, float):
        try:
            return convert(value.strip())
        except ValueError:
            pass
    return value


def _coerce(value: Any, tp: Any, from_text: bool) -> Any:
    """Convert `value` to type `tp`; raise ValueError saying in words what was expected."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        is_null = value is None or (from_text and str(value).lower() in ("null", "none", "~", ""))
        if is_null and _NONE in args:
            return None
        for arg in args:
            if arg is _NONE:
                continue
            try:
                return _coerce(value, arg, from_text)
            except ValueError:
                pass
        raise ValueError(f"expects {expects(tp)}, got {value!r}")
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
            raise ValueError(f"expects {expects(tp)}, got {value!r}") from None
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"expects true/false, got {value!r}")
    if tp in (int, float):
        value = _number(value)  # a quoted number in a file, or one YAML left as text
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


def flag_names(key: str, f: dataclasses.Field, tp: Any) -> list[str]:
    """The option names of a flagged field: `engine.batch_size` -> ['--batch-size'], a bool ['--x/--no-x']
    (`no_explanation`: ['--no-explanation/--with-explanation'])."""
    named = f.metadata.get("flag")
    if isinstance(named, str):
        return [named]
    leaf = "--" + key.rsplit(".", 1)[-1].replace("_", "-")
    args = [a for a in typing.get_args(tp) if a is not _NONE]
    base = args[0] if typing.get_origin(tp) in (typing.Union, types.UnionType) and args else tp
    if base is not bool:
        return [leaf]
    off = f"--with-{leaf[5:]}" if leaf.startswith("--no-") else f"--no-{leaf[2:]}"  # never --no-no-x
    return [f"{leaf}/{off}"]


def shown_name(key: str, f: dataclasses.Field, tp: Any) -> str:
    """How the command line names a field: its flag (`--out`), its positional (`SRC`), else `key=`."""
    if f.metadata.get("arg"):
        return key.upper()
    if f.metadata.get("flag"):
        return flag_names(key, f, tp)[0].split("/")[0]
    return f"{key}="


def shortcuts(cls) -> dict[str, str]:
    """Top-level keys that name a nested flagged field the way its flag does: `device` -> `engine.device`.

    A flag is named by its leaf (`--device` sets `engine.device`), so the same word works as a key
    wherever no top-level field takes it: one name, one meaning, as flag and as key.
    """
    top = {f.name for f in dataclasses.fields(cls)}
    found: dict[str, list[str]] = {}
    for key, f, tp in leaf_fields(cls):
        if "." in key and f.metadata.get("flag"):
            name = flag_names(key, f, tp)[0].split("/")[0][2:].replace("-", "_")
            if name not in top:
                found.setdefault(name, []).append(key)
    return {name: keys[0] for name, keys in found.items() if len(keys) == 1}


def _unknown(root, full: str, here: list[str]) -> str:
    """`unknown key 'x' (did you mean 'y'? valid: ...)`: the nearest of every key of `root`, then this level's."""
    keys = [k for k, _, _ in leaf_fields(root)] + [a for a in aliases(root)] + list(shortcuts(root))
    near = difflib.get_close_matches(full, keys, n=1, cutoff=0.6) or \
        difflib.get_close_matches(full.rsplit(".", 1)[-1], [k.rsplit(".", 1)[-1] for k in keys], n=1, cutoff=0.75)
    if near and near[0] not in keys:  # matched a leaf name: give its full key
        near = [next(k for k in keys if k.rsplit(".", 1)[-1] == near[0])]
    hint = f"did you mean '{near[0]}'? " if near else ""
    return f"unknown key '{full}' ({hint}valid: {', '.join(sorted(here))})"


def _apply(obj: Any, key: str, value: Any, from_text: bool, problems: list[str], prefix: str = "",
           root: Any = None) -> None:
    """Set dotted `key` on a dataclass instance, collecting problems (named by full key)."""
    root = root or type(obj)
    if not prefix and key.partition(".")[0] not in _fields(root) and key.partition(".")[0] not in aliases(root):
        key = shortcuts(root).get(key, key)
    head, _, rest = key.partition(".")
    fields = _fields(type(obj))
    full = f"{prefix}{key}"
    head = _renamed(type(obj), head, prefix)
    if head not in fields:
        problems.append(_unknown(root, full, list(fields)))
        return
    tp = _hints(type(obj))[head]
    current = getattr(obj, head)
    if rest:
        if _is_dataclass_type(tp):
            _apply(current, rest, value, from_text, problems, f"{prefix}{head}.", root)
        elif typing.get_origin(tp) is dict or tp is dict:
            try:
                value = yaml_value(value) if from_text and isinstance(value, str) else _number(value)
            except ValueError as e:
                problems.append(f"'{full}' {e}")
                return
            setattr(obj, head, _set_nested(current, rest.split("."), value))
        else:
            problems.append(f"'{prefix}{head}' has no sub-keys (got '{full}')")
        return
    if _is_dataclass_type(tp):
        if not isinstance(value, dict):
            problems.append(f"'{full}' expects a mapping, got {value!r}")
            return
        for k, v in value.items():
            _apply(current, str(k), v, from_text, problems, f"{full}.", root)
        return
    if typing.get_origin(tp) is dict or tp is dict:
        value = {k: _number(v) for k, v in value.items()} if isinstance(value, dict) else value
    try:
        setattr(obj, head, _coerce(value, tp, from_text))
    except ValueError as e:
        problems.append(f"'{full}' {e}")


def _set_nested(mapping: dict | None, keys: list[str], value: Any) -> dict:
    """A copy of `mapping` with `value` at the path `keys` (`trl.lr_scheduler_kwargs.num_decay_steps=100` sets
    one key of the nested mapping, keeping its others)."""
    out = dict(mapping or {})
    head, rest = keys[0], keys[1:]
    inner = out.get(head)
    out[head] = _set_nested(inner if isinstance(inner, dict) else None, rest, value) if rest else value
    return out


def check_values(cfg, prefix: str = "") -> list[str]:
    """What is wrong with the values of `cfg` by its fields' `choices` and `check` (one phrase each,
    naming a field as the command line does: `--role`, else `'key'`)."""
    problems = []
    hints = _hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value, key = getattr(cfg, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            problems += check_values(value, f"{key}.")
            continue
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        choices, check = f.metadata.get("choices"), f.metadata.get("check")
        name = shown_name(key, f, hints[f.name]) if f.metadata.get("flag") else f"'{key}'"
        if choices and value not in choices:
            problems.append(f"unknown {name} {value!r} (valid: {', '.join(map(str, choices))})")
        elif check is not None and (why := check(value)):
            problems.append(f"{name} {why}")
    return problems


def check_config(cfg) -> None:
    """Raise one UserError for a config built in Python (not resolved) or changed since: missing
    required options, values outside their `choices` or `check`. Stages call it first thing."""
    check_required(cfg)
    problems = check_values(cfg)
    if problems:
        raise UserError("config: " + "; ".join(problems))


def _is_required(cfg, f: dataclasses.Field) -> bool:
    rule = f.metadata.get("required")
    return bool(rule) and not (isinstance(rule, str) and getattr(cfg, rule))  # a str: "unless that field is set"


def missing_required(cfg, options: bool = True) -> list[str]:
    """The command-line names (`SRC`, `--out`) of required fields of `cfg` left empty (`options=False`:
    positional arguments only)."""
    hints = _hints(type(cfg))
    return [shown_name(f.name, f, hints[f.name]) for f in dataclasses.fields(cfg)
            if _is_required(cfg, f) and (options or f.metadata.get("arg"))
            and getattr(cfg, f.name) in (None, "", [], {})]


def check_required(cfg, options: bool = True) -> None:
    """Raise one UserError naming every required field of `cfg` not given: `missing argument SRC`,
    `missing required option --out` (`options=False`: positional arguments only)."""
    missing = missing_required(cfg, options)
    args = [m for m in missing if not m.startswith("-") and not m.endswith("=")]
    rest = [m for m in missing if m not in args]
    parts = ([f"missing argument{'s' if len(args) > 1 else ''} {', '.join(args)}"] if args else []) + \
        ([f"missing required option{'s' if len(rest) > 1 else ''} {', '.join(rest)}"] if rest else [])
    if parts:
        raise UserError("; ".join(parts))


def yaml_problem(e: yaml.YAMLError) -> tuple[str, str]:
    """(`:LINE:COLUMN` where a YAML error is, 1-based as editors count, or ""; what is wrong, one line)."""
    if not isinstance(e, yaml.MarkedYAMLError):
        return "", " ".join(str(e).split())
    mark, context = e.problem_mark or e.context_mark, ""
    if e.context and e.context_mark is not None and e.context_mark is not mark:
        context = f" ({e.context} started at {e.context_mark.line + 1}:{e.context_mark.column + 1})"
    elif e.context:
        context = f" ({e.context})"
    at = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
    return at, f"{e.problem or e.context}{context if e.problem else ''}"


def load_yaml(path: str | Path, what: str = "config file") -> dict:
    """Read a YAML mapping (safe, YAML 1.2 numbers: `yaml_load`); one UserError naming the file (`what`), and for
    YAML that does not parse the line and column, when it is absent, not UTF-8 or not a mapping."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{what} not found: {p}")
    try:
        data = yaml_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        line = e.object[:e.start].count(b"\n") + 1
        raise UserError(f"{what} {p} is not UTF-8 text (byte {e.object[e.start]:#04x} on line {line}): "
                        "save it as UTF-8") from None
    except yaml.YAMLError as e:
        at, problem = yaml_problem(e)
        raise UserError(f"{what} {p}{at} is not valid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{what} {p} must be a mapping of keys, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[str, str]:
    """Split `a.b=value`; UserError naming the override when malformed."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or any(c.isspace() for c in key.strip()):
        raise UserError(f"malformed override '{text}': expected dotted key=value, e.g. reward.kl_coef=3")
    return key.strip(), value


def resolve(cls, file: str | Path | None = None, overrides: list[str] | None = None,
            preset: dict | None = None, options: dict | None = None, preset_name: str | None = None):
    """Build a `cls` instance from presets, a YAML file, overrides and CLI options.

    Raises one UserError naming every unknown key (with the nearest valid one and, for a key
    of `file`, the file), mistyped value and value outside a field's `choices` or `check`.
    """
    cfg = cls()
    problems: list[str] = []
    layers: list[tuple[list[tuple[str, Any]], bool, str]] = []
    if preset:
        layers.append((list(preset.items()), False, f"preset {preset_name}: " if preset_name else "preset: "))
    if file:
        layers.append((list(load_yaml(file).items()), False, f"{file}: "))
    if overrides:
        layers.append(([parse_override(o) for o in overrides], True, ""))
    if options:
        layers.append(([(k, v) for k, v in options.items() if v is not None], False, ""))
    for items, from_text, source in layers:
        for key, value in items:
            found: list[str] = []
            _apply(cfg, key, value, from_text, found)
            problems += [source + p for p in found]
    if not problems:
        problems = check_values(cfg)
    if problems:
        raise UserError("config: " + "; ".join(problems))
    _reveal_credentials(cfg)
    return cfg


def _reveal_credentials(cfg) -> None:
    """Give back, from the environment, the credentials `to_dict` hid in URLs of a recorded config (a job's
    spec, a launched rank's config): the run uses them, its records still never hold them."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            _reveal_credentials(value)
        elif isinstance(value, str) and secrets.SHOWN in value and "://" in value:
            setattr(cfg, f.name, secrets.reveal(value) or value)


def to_dict(cfg) -> dict:
    """Plain-dict view of a config, as every record and display of it holds it (manifests, job specs,
    `--print-config`): a URL's credentials are hidden (`secrets.stash`: redacted here, the full URL
    kept in the environment that processes started from here inherit)."""
    return _hide_credentials(dataclasses.asdict(cfg))


def _hide_credentials(value):
    if isinstance(value, dict):
        return {k: _hide_credentials(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_hide_credentials(v) for v in value)
    return secrets.stash(value) if isinstance(value, str) and "://" in value else value


def _hashable(obj) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _hashable(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.metadata.get("hash", True)}
    return obj


def inputs_of(cfg) -> dict[str, str]:
    """The paths a stage reads, by field name (`opt(input=True)`); a list field gives `name[i]` per entry.

    Recorded in the manifest with each input's content hash: the one rule by which
    every stage tells a changed input from a moved one.
    """
    out: dict[str, str] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if not f.metadata.get("input") or not value:
            continue
        if isinstance(value, (list, tuple)):
            out.update({f"{f.name}[{i}]": str(v) for i, v in enumerate(value)})
        else:
            out[f.name] = str(value)
    return out


def config_hash(cfg, extra: bool = True, ignore: tuple[str, ...] = ()) -> str:
    """sha256 of the fields that change a stage's output (paths of outputs excluded).

    A config class may declare `HASH_EXTRA: ClassVar[dict]`, versions of code whose
    change must invalidate outputs (e.g. the eval grader's version); they join the
    hash unless `extra=False`. `ignore`: top-level fields left out (the shards of one
    run share `config_hash(cfg, ignore=("shard",))`).
    """
    data = {k: v for k, v in _hashable(cfg).items() if k not in ignore}
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
