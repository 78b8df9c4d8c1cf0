"""`trl.*` keys of the training stages: one rule for `rlt teach` (GRPOConfig) and `rlt distill` (SFTConfig).

    check_trl_options(cfg.trl, GRPOConfig, MANAGED, "teach")

A `trl.NAME=VALUE` key passes VALUE to TRL's config as NAME. It must name a
field of that config, must not name one that a top-level key sets (`trl.learning_rate`
while `lr` does: the top-level key is named), and a number, integer or boolean
field must get one (`trl.adam_epsilon=1e-8` is a number), and only a mapping field takes
sub-keys (`trl.lr_scheduler_kwargs.num_decay_steps=100`). All of it is checked
before a model loads, and every problem is said in one line.
"""

from __future__ import annotations

import dataclasses
import types
import typing

from stages.config import expects
from stages.errors import UserError

_SIMPLE = (bool, int, float)


def _simple_type(tp) -> tuple[type | None, bool]:
    """(bool/int/float the field holds, whether None is allowed); (None, _) for any other type."""
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    kinds = [a for a in args if a is not type(None)]
    if len(kinds) == 1 and kinds[0] in _SIMPLE:
        return kinds[0], type(None) in args
    return None, True


def _takes_mapping(tp) -> bool:
    """Whether a field's type holds a dict (`lr_scheduler_kwargs: dict | str | None`)."""
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    return any(a is dict or typing.get_origin(a) is dict for a in args)


def _fits(value, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_trl_options(options: dict, config_cls: type, managed: dict[str, str], command: str) -> None:
    """Check `options` (the `trl.*` keys) against `config_cls`; `managed` maps a TRL field to the top-level
    key that sets it. Raises one UserError naming every problem."""
    fields = {f.name for f in dataclasses.fields(config_cls) if f.init}
    hints = typing.get_type_hints(config_cls)
    problems = []
    for key, value in options.items():
        if key in managed:
            problems.append(f"'trl.{key}' is set by the top-level key '{managed[key]}': use {managed[key]}=...")
            continue
        if key not in fields:
            problems.append(f"unknown {config_cls.__name__} option 'trl.{key}'")
            continue
        if isinstance(value, dict) and not _takes_mapping(hints.get(key)):  # e.g. trl.optim.x=1
            problems.append(f"'trl.{key}' has no sub-keys (got {value!r})")
            continue
        kind, optional = _simple_type(hints.get(key))
        if kind is not None and not (value is None and optional) and not _fits(value, kind):
            problems.append(f"'trl.{key}' expects {expects(kind)}, got {value!r}")
    if problems:
        raise UserError(f"{command}: " + "; ".join(problems) + f" (see trl.{config_cls.__name__} for the valid names)")
