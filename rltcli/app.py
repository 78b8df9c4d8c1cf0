"""The `rlt` app: one table maps each command to its module; a test checks it matches the CLI.

Heavy libraries (torch, transformers) are imported by the stages only when a
command runs, so `rlt --help` stays instant.
"""

from __future__ import annotations

import importlib
import sys

import typer
from typer.exceptions import TyperException

# command -> (module in rltcli, attribute: a function or a typer sub-app)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("rltcli.data", "app"),
    "model": ("rltcli.model", "app"),
    "inspect": ("rltcli.inspect", "inspect"),
    "score": ("rltcli.score", "score"),
    "distill": ("rltcli.distill", "distill"),
    "run": ("rltcli.run", "run"),
    "report": ("rltcli.report", "report"),
    "eval": ("rltcli.eval", "eval_"),
    "teach": ("rltcli.teach", "teach"),
    "generate": ("rltcli.generate", "generate"),
}

app = typer.Typer(
    name="rlt", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Reinforcement-Learned Teachers: teach, generate, distill, eval - one artifact at a time.",
)


def _register() -> None:
    for name, (module, attr) in COMMANDS.items():
        target = getattr(importlib.import_module(module), attr)
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)


_register()


def main() -> None:
    """Console entry point: usage errors become one line and exit code 2."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=sys.argv[1:], prog_name="rlt", standalone_mode=False)
    except TyperException as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # typer already printed the help
            sys.exit(0)
        sys.stderr.write(f"rlt: error: {e.format_message()}\n")
        sys.exit(e.exit_code)  # 2 for usage errors
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("rlt: interrupted; rerun the same command to resume\n")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
