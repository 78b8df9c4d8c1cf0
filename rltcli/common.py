"""Shared CLI plumbing: logging setup and the error -> exit code mapping.

Exit codes: 0 ok, 2 bad input (one line on stderr), 1 internal failure,
130 interrupted (rerun the same command to resume).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

import click

from stages import secrets


def launched_child() -> bool:
    """True in a process started by `--launch` (accelerate/torchrun): the launching command speaks for it."""
    return "LOCAL_RANK" in os.environ or "ACCELERATE_LAUNCHED" in os.environ


def main_rank() -> bool:
    """True outside a launch and on global rank 0 inside one: the one process whose lines are shown."""
    return os.environ.get("RANK", "0") == "0"


def fail(message: str, code: int = 2) -> None:
    """One line on stderr (from rank 0 only: every rank meets the same bad input), then exit."""
    if main_rank():
        sys.stderr.write(f"rlt: error: {secrets.redact(message)}\n")
    sys.exit(code)


# Library switches read at import time: without --verbose their logs, warnings and bars stay off.
QUIET_ENV = {"TRANSFORMERS_VERBOSITY": "error", "DATASETS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
             "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
             "PYTHONWARNINGS": "ignore", "TORCH_CPP_LOG_LEVEL": "ERROR"}  # C++ warnings (DDP's unused parameters)
VERBOSE_ENV = "RLT_VERBOSE"  # inherited by processes a stage launches


class _Lines(logging.Formatter):
    """One unwrapped line per record: rlt's info as is, anything else with its level (and source when verbose);
    a URL's credentials hidden (stages/secrets.py), whoever logged it."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        text = secrets.redact(text)
        if record.levelno <= logging.INFO and record.name.split(".")[0] == "stages":
            return text
        source = "" if record.name.split(".")[0] == "stages" else f"[{record.name}] "
        return f"{record.levelname.lower()}: {source}{text}"


class _Once(logging.Filter):
    """Each distinct warning once per process: libraries repeat theirs (one per model or tokenizer load)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.levelno >= logging.ERROR:
            return True
        text = f"{record.name}:{record.getMessage()}"
        if text in self.seen:
            return False
        self.seen.add(text)
        return True


_ONCE = _Once()


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of the record (it may be replaced after setup)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(verbose: bool = False) -> None:
    """rlt's log lines on stderr; library logs, warnings and progress bars only when `verbose` (or RLT_VERBOSE=1).

    In a multi-process run only rank 0 logs below errors: one set of lines, not one per process.
    """
    verbose = verbose or os.environ.get(VERBOSE_ENV) == "1"
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    else:
        for key, value in QUIET_ENV.items():
            os.environ.setdefault(key, value)
        warnings.simplefilter("ignore")
        logging.getLogger("DeepSpeed").addFilter(lambda r: r.levelno >= logging.ERROR)  # has its own handler
    root = logging.getLogger()
    if not any(isinstance(h.formatter, _Lines) for h in root.handlers):
        handler = _Stderr()
        handler.setFormatter(_Lines())
        handler.addFilter(_ONCE)
        root.addHandler(handler)
    _ONCE.seen.clear()  # once per command (a test runs several in one process)
    root.setLevel(logging.INFO if verbose else logging.ERROR)
    logging.getLogger("stages").setLevel(logging.DEBUG if verbose else logging.INFO)
    if not main_rank():
        root.setLevel(logging.ERROR)
        logging.getLogger("stages").setLevel(logging.ERROR)


def echo_config(cfg) -> None:
    """`--print-config`: the resolved config as YAML on stdout."""
    import yaml

    from stages.config import to_dict

    click.echo(yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True))
