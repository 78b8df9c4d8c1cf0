"""Shared CLI plumbing: logging setup and the error -> exit code mapping.

Exit codes: 0 ok, 2 bad input (one line on stderr), 1 internal failure,
130 interrupted (rerun the same command to resume).
"""

from __future__ import annotations

import logging
import sys

import click


def fail(message: str, code: int = 2) -> None:
    """One line on stderr, then exit."""
    sys.stderr.write(f"rlt: error: {message}\n")
    sys.exit(code)


def setup_logging(level: int = logging.INFO) -> None:
    from rich.logging import RichHandler

    root = logging.getLogger()
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        from rich.console import Console

        handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=False)
        logging.basicConfig(level=level, format="%(message)s", handlers=[handler])
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def echo_config(cfg) -> None:
    """`--print-config`: the resolved config as YAML on stdout."""
    import yaml

    from stages.config import to_dict

    click.echo(yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True))
