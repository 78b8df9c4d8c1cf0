"""Command-line parameters built from a config dataclass, as typer parameters.

Every field of a command's config (nested ones dotted) is settable as a
`key=value` argument; fields declared with `opt(..., flag=True)` are also
`--key` options, `opt(..., arg=True)` fields are positional. Types follow the
field annotation: int/float/str values, bools as `--x/--no-x`, lists as a
repeatable option, mappings as repeatable `--key k=v`. Each option sits in the
help panel its field belongs to (`PANELS`); a field's `choices` are listed and
completed, its `required` marked.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from dataclasses import MISSING, Field
from typing import Annotated, Any

import typer

from stages.config import flag_names, leaf_fields, shown_name
from stages.errors import UserError

OVERRIDE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*=")  # a dotted key=value token (paths never match: no '/')

# The help panels, in the order `--help` shows them, and the fields each holds: a dotted key, a leaf name
# (`device` is `engine.device` too) or a nested config's name (`reward`), looked up in that order.
# A flag of no panel is listed under "Options".
PANELS: dict[str, tuple[str, ...]] = {
    "Inputs and output": ("data", "out", "src", "against", "inputs", "path", "runs", "file", "force", "limit", "shard",
                          "split", "format", "map", "task", "n", "unhelpful", "ngram", "frequent", "max_file_mb",
                          "regrade", "skip_bad_golds", "no_explanation", "start", "until", "vars"),
    "Models": ("teacher", "student", "model", "models", "trust_remote_code", "allow_pickle", "offload_student",
               "hidden", "layers", "tokenizer", "corpus", "tag_tokens", "engine.name", "engine.base_url", "engine.api_model"),
    "Sampling": ("num_generations", "max_new_tokens", "temperature", "top_p", "select", "max_student_tokens", "seed",
                 "use_vllm", "engine.batch_size"),
    "Training": ("role", "max_steps", "epochs", "lr", "prompts_per_step", "grad_accum", "batch_size", "max_length",
                 "packing", "padding_free", "eval_split"),
    "The reward": ("reward", "reward_batch_size"),
    "Launch": ("launch", "nproc", "gpus", "device", "executor", "slurm", "job", "gpu", "smoke", "throughput"),
    "Output and logging": ("report_to", "plan", "status", "list_pipelines", "compare", "rows", "row", "where"),
}
CONFIG_PANEL = "Config"  # --config, --preset, --print-config, --help-keys, --help
OUTPUT_PANEL = "Output and logging"  # --json, -v
CHOICES_WIDTH = 24  # choices longer than this are listed in the help text, not as the value's type
ORDER = [*PANELS, CONFIG_PANEL]  # "Output and logging" (--json, -v) before "Config" (--config, --help)


def panel_of(key: str) -> str | None:
    """The help panel of config key `key` (`PANELS`), None when it has none."""
    for name in (key, key.rsplit(".", 1)[-1], key.split(".", 1)[0]):
        for panel, names in PANELS.items():
            if name in names:
                return panel
    return None


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
    """The field's help with its default, its key when the flag is named otherwise, and `required unless`."""
    default = _default(f)
    shown = "" if default in ("", None, [], {}) else f" [default: {default}]"
    named = decls[0].split("/")[0][2:].replace("-", "_") == key  # say the key when the flag is named otherwise
    rule = f.metadata.get("required")
    unless = f" [required unless {rule}]" if isinstance(rule, str) else ""
    return f"{f.metadata.get('help', '')}{shown}" + ("" if named else f" (key: {key})") + unless


def _number(kind: type, word: str):
    """A parser of an int/float flag: the value as Python reads it (`1e-5`, `1_000`), or one line naming it."""
    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            raise typer.BadParameter(f"{text!r} is not a valid {word}") from None
    return parse


def _completer(choices: tuple):
    def complete(incomplete: str) -> list[str]:
        return [str(c) for c in choices if str(c).startswith(incomplete)]
    return complete


def param(name: str, annotation: Any, option: Any) -> inspect.Parameter:
    """One keyword parameter of a command function: `name: Annotated[annotation, option] = None`."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[annotation, option])


def option(key: str, f: Field, tp: Any) -> inspect.Parameter:
    """The typer option of one flagged field; its value is None when not given."""
    base, decls = _base(tp), flag_decls(key, f, tp)
    kw: dict[str, Any] = {"help": _escape(_help(f, key, decls)), "show_default": False,
                          "rich_help_panel": panel_of(key)}
    choices = f.metadata.get("choices")
    if choices:
        listed = "|".join(map(str, choices))
        if len(listed) <= CHOICES_WIDTH:
            kw["metavar"] = f"<{listed}>"
        else:  # a long list would fold in the type column
            kw["help"] += _escape(f" [one of: {', '.join(map(str, choices))}]")
        kw["autocompletion"] = _completer(choices)
    if base is bool:
        annotation, kw["metavar"] = bool | None, ""  # a switch: no value to describe
    elif _container(base) is list:
        annotation = list[str] | None
    elif _container(base) is dict:
        annotation, kw["metavar"] = list[str] | None, "KEY=VALUE"
    elif base in (int, float):
        annotation, kw["parser"] = base | None, _number(base, "integer" if base is int else "float")
    else:
        annotation = str | None
    return param(key.replace(".", "__"), annotation, typer.Option(*decls, **kw))


def _escape(text: str) -> str:
    from rich.markup import escape  # help is rich markup: a `[default: x]` is text

    return escape(text)


def params_of(cls) -> tuple[list[inspect.Parameter], list[tuple[str, Any]], list[str]]:
    """(typer options of the flagged fields in panel order, [(key, type)] of the positional fields, the keys of
    the required flags) of a config class."""
    options, positional, required = [], [], []
    own = inspect.get_annotations(cls)  # a config's own fields are listed before inherited ones
    for key, f, tp in sorted(leaf_fields(cls), key=lambda row: row[0].split(".")[0] not in own):
        if f.metadata.get("arg"):
            positional.append((key, tp))
        elif f.metadata.get("flag"):
            options.append(option(key, f, tp))
            required += [key.replace(".", "__")] if f.metadata.get("required") is True else []
            names = {d for decl in flag_decls(key, f, tp) for d in decl.split("/")}
            olds = [(f"--{old.rsplit('.', 1)[-1].replace('_', '-')}", old) for old in old_keys(key, f)]
            options += [param(old.replace(".", "__"), str | None, typer.Option(flag, hidden=True))
                        for flag, old in olds if flag not in names]  # an old key whose flag is the field's own
    return options, positional, required


def in_panel_order(params: list[inspect.Parameter]) -> list[inspect.Parameter]:
    """`params` sorted as their panels are shown (ORDER; the help shows a panel where its first option is)."""
    def rank(p: inspect.Parameter) -> int:
        panel = typing.get_args(p.annotation)[1].rich_help_panel
        return ORDER.index(panel) if panel in ORDER else -1
    return sorted(params, key=rank)


def old_keys(key: str, f: Field) -> list[str]:
    """The deprecated dotted keys of a field (its `aliases`), still accepted with one deprecation line."""
    prefix = key.rpartition(".")[0]
    return [f"{prefix}.{old}" if prefix else old for old in f.metadata.get("aliases", ())]


def _pairs(key: str, values: list[str], flag: str) -> list[str]:
    """`--map a=b,c=d --map e=f` -> dotted overrides ['map.a=b', 'map.c=d', 'map.e=f']."""
    out = []
    for value in values:
        parts = value.split(",") if all("=" in p for p in value.split(",")) else [value]
        for part in parts:
            k, sep, v = part.partition("=")
            if not sep or not k.strip():
                raise UserError(f"{flag} expects key=value, got {value!r}")
            out.append(f"{key}.{k.strip()}={v}")
    return out


def collect(cls, values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Split typer's values into (typed options by dotted key, dotted overrides from mapping flags)."""
    options, overrides = {}, []
    for key, f, _ in leaf_fields(cls):  # a deprecated flag passes its old key on: resolve says it is deprecated
        options.update({old: values[old.replace(".", "__")] for old in old_keys(key, f)
                        if values.get(old.replace(".", "__")) is not None})
    for key, f, tp in leaf_fields(cls):
        value = values.get(key.replace(".", "__"))
        if value is None or value in ((), []):
            continue
        if _container(_base(tp)) is dict:
            overrides += _pairs(key, value, shown_name(key, f, tp))
        elif _container(_base(tp)) is list:
            options[key] = list(value)
        else:
            options[key] = value
    return options, overrides


def split_args(tokens: list[str] | tuple[str, ...], positional: list[tuple[str, Any]]
               ) -> tuple[dict[str, Any], list[str]]:
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
        raise UserError(f"unexpected argument {plain[0]!r}")
    return {k: v for k, v in values.items() if v is not None}, overrides


def usage_metavar(positional: list[tuple[str, Any]]) -> str:
    """`SRC [KEY=VALUE]...` for the usage line."""
    names = [k.upper() + ("..." if _container(_base(tp)) is list else "") for k, tp in positional]
    return " ".join([*names, "[KEY=VALUE]..."])


def arguments_help(cls, positional: list[tuple[str, Any]]) -> str:
    """The help of the positional arguments and, once, of the `key=value` form."""
    fields = {k: f for k, f, _ in leaf_fields(cls)}
    said = [f"{k.upper()}: {fields[k].metadata.get('help', '')}" for k, _ in positional]
    said.append("KEY=VALUE: sets any config key, nested ones dotted (a.b=1); --help-keys lists them all, "
                "a --config FILE.yaml takes the same keys.")
    return _escape(" ".join(said))
