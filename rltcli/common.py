"""Shared CLI plumbing: option types, config resolution, error -> exit code mapping.

A command module parses options and calls `call_stage`; all ML logic lives in
`stages/`. Exit codes: 0 ok, 2 bad input (one line on stderr), 1 internal
failure, 130 interrupted (rerun the same command to resume).
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="YAML file of config keys.", show_default=False)]
Overrides = Annotated[Optional[list[str]], typer.Argument(help="Dotted key=value overrides, e.g. reward.kl_coef=3.", show_default=False)]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing output of another config.")]
PrintConfigOpt = Annotated[bool, typer.Option("--print-config", help="Print the resolved config and exit.")]
PresetOpt = Annotated[Optional[str], typer.Option("--preset", help="Named settings: tiny or paper.", show_default=False)]


def fail(message: str, code: int = 2) -> None:
    """One line on stderr, then exit."""
    sys.stderr.write(f"rlt: error: {message}\n")
    raise typer.Exit(code)


def setup_logging(level: int = logging.INFO) -> None:
    from rich.logging import RichHandler

    root = logging.getLogger()
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        from rich.console import Console

        handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=False)
        logging.basicConfig(level=level, format="%(message)s", handlers=[handler])
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def call_stage(module: str, config_cls: str, func: str = "run", config: Optional[Path] = None,
               overrides: Optional[list[str]] = None, preset: Optional[str] = None,
               print_config: bool = False, **options: Any) -> Any:
    """Resolve `stages.<module>.<config_cls>` and call `<func>(cfg)`, mapping errors to exit codes."""
    setup_logging()
    from stages.errors import UserError

    try:
        from stages import config as cfgmod

        mod = importlib.import_module(f"stages.{module}")
        presets = getattr(mod, "PRESETS", {})
        if preset is not None and preset not in presets:
            raise UserError(f"unknown --preset {preset!r} (valid: {', '.join(sorted(presets)) or 'none'})")
        cfg = cfgmod.resolve(getattr(mod, config_cls), file=config, overrides=overrides,
                             preset=presets.get(preset) if preset else None, options=options)
        if print_config:
            import yaml

            typer.echo(yaml.safe_dump(cfgmod.to_dict(cfg), sort_keys=False, allow_unicode=True))
            return None
        return getattr(mod, func)(cfg)
    except UserError as e:
        fail(str(e).replace("\n", " "))
    except KeyboardInterrupt:
        fail("interrupted; rerun the same command to resume", code=130)
