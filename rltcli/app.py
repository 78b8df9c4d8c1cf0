"""The `rlt` command line, generated from the command table and the config dataclasses.

Each command of `stages/commands/__init__.py` COMMANDS becomes `rlt <command>` (a name
with a space, "data synth", becomes a sub-command of a group). Its flags,
positional arguments and help come from its config dataclass; every field,
nested ones dotted, is also settable as a `key=value` argument, and every
command takes `--config FILE.yaml`, `--print-config` and, where the stage has
presets, `--preset NAME`.

How to add a command: write its config dataclass and `run(cfg)` in a stage
module and add one `Command` entry to COMMANDS. How to add an option: add a
field `opt(default, "help", flag=True)` to the config dataclass. Nothing in
rltcli/ changes (a custom console display of the result goes in rltcli/show.py).

Stage modules are imported only when their command is built, so `rlt --help`
stays instant; torch and transformers load only when a command runs.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from stages.commands import COMMANDS, GROUPS

HELP = "Reinforcement-Learned Teachers: teach, generate, distill, eval - one artifact at a time."
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 120}


def _children(prefix: str) -> dict[str, str]:
    """Direct children of a group ('' = the root): name -> one-line help."""
    out: dict[str, str] = {}
    for name, cmd in COMMANDS.items():
        if not name.startswith(prefix):
            continue
        head, _, rest = name[len(prefix):].partition(" ")
        out[head] = GROUPS[prefix + head] if rest else cmd.help
    return out


class Group(click.Group):
    """A group whose commands are built from COMMANDS on first use."""

    def __init__(self, prefix: str = "", **kw: Any) -> None:
        super().__init__(context_settings=CONTEXT, no_args_is_help=True, **kw)
        self.prefix = prefix

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_children(self.prefix))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        full = self.prefix + name
        if full in COMMANDS:
            return build(full)
        if full in GROUPS:
            return Group(prefix=full + " ", name=name, help=GROUPS[full])
        return None

    def resolve_command(self, ctx: click.Context, args: list[str]):
        """A name that is no command: one line with the nearest command, not click's bare refusal."""
        from stages.errors import did_you_mean

        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            known = self.list_commands(ctx)
            raise click.UsageError(f"no command 'rlt {self.prefix}{name}' ({did_you_mean(name, known)}"
                                   f"commands: {', '.join(known)})")
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl(list(_children(self.prefix).items()))


def build(name: str) -> click.Command:
    """The click command of COMMANDS[name]."""
    from rltcli.flags import params_of, usage_metavar
    from stages import commands

    cls = commands.config_class(name)
    options, positional = params_of(cls)
    common = [click.Option(["--config"], type=click.Path(dir_okay=False), help="YAML file of config keys."),
              click.Option(["--print-config"], is_flag=True, help="Print the resolved config and exit."),
              click.Option(["--json", "as_json"], is_flag=True, help="Print the result as one JSON object on stdout."),
              click.Option(["-v", "--verbose"], is_flag=True, help="Also show library logs, warnings and bars.")]
    common.append(click.Option(["--help-keys"], is_flag=False, flag_value="", default=None, metavar="[PREFIX]",
                               is_eager=True, expose_value=False, callback=_help_keys(name),
                               help="List every config key (nested and trl.* too) with its type, default and "
                                    "help, or those matching PREFIX, and exit."))
    if commands.presets(name):
        common.append(click.Option(["--preset"], help=f"Named settings: {', '.join(commands.presets(name))}."))
    args = click.Argument(["args"], nargs=-1, metavar=usage_metavar(positional))
    epilog = "Every config key (listed by --help-keys) is also settable as KEY=VALUE, nested ones dotted."

    def callback(**values: Any) -> None:
        execute(name, cls, positional, values)

    return click.Command(name.split()[-1], params=[*options, *common, args], callback=callback,
                         help=COMMANDS[name].help, epilog=epilog, context_settings=CONTEXT, no_args_is_help=False)


def _help_keys(name: str):
    """The callback of `--help-keys [PREFIX]`: print the keys (rltcli/keys.py) and exit 0."""
    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is None or ctx.resilient_parsing:
            return
        from rltcli.keys import text

        click.echo(text(name, value.strip()))
        ctx.exit(0)
    return callback


def execute(name: str, cls: type, positional: list, values: dict[str, Any]) -> None:
    """Resolve the config from the parsed values and run (or print) it; UserError -> exit 2."""
    from rltcli.common import echo_config, fail, launched_child, setup_logging
    from rltcli.flags import collect, split_args
    from rltcli.show import show
    from stages import commands
    from stages.errors import Diverged, Refused, Reported, UserError
    from stages.progress import interval as progress_interval

    setup_logging(values.pop("verbose", False))
    as_json = values.pop("as_json", False)
    try:
        progress_interval()  # a bad RLT_PROGRESS_SECONDS is said now, not when the first bar starts
    except ValueError as e:
        fail(str(e))
    try:
        args, overrides = split_args(values.pop("args"), positional)
        options, pairs = collect(cls, values)
        cfg = commands.make_config(name, preset=values.get("preset"), file=values.get("config"),
                                   overrides=overrides + pairs, options={**options, **args},
                                   complete=not values.get("print_config"))
        if values.get("print_config"):
            echo_config(cfg)
            return
        result = commands.call(name, cfg)
        if not launched_child():  # the launching command shows the result of a multi-process run, once
            show(name, cfg, result, as_json=as_json)
    except Reported:
        sys.exit(2)  # its one line is already on stderr
    except Refused as e:  # several problems at once (a pipeline's preflight), after the plan they belong to
        if e.result is not None:
            show(name, cfg, e.result, as_json=as_json)
        for problem in e.problems:
            sys.stderr.write(f"rlt: error: {problem}\n")
        sys.exit(2)
    except UserError as e:
        fail(str(e).replace("\n", " "))
    except Diverged as e:  # one line, exit 1
        fail(str(e), code=1)
    except KeyboardInterrupt:
        fail("interrupted; rerun the same command to resume", code=130)


def _verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        os.environ["RLT_VERBOSE"] = "1"  # read by setup_logging, inherited by launched processes


def _version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from stages import __version__

        click.echo(f"rlt {__version__}")
        ctx.exit(0)


app = Group(name="rlt", help=HELP, params=[
    click.Option(["-v", "--verbose"], is_flag=True, expose_value=False, callback=_verbose,
                 help="Also show library logs, warnings and progress bars (any command takes it too)."),
    click.Option(["--version"], is_flag=True, expose_value=False, is_eager=True, callback=_version,
                 help="Print rlt's version and exit.")])


def main(argv: list[str] | None = None) -> None:
    """Console entry point: usage errors become one line and exit code 2."""
    try:
        code = app.main(args=sys.argv[1:] if argv is None else argv, prog_name="rlt", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as e:  # the help was asked for by giving nothing
        click.echo(e.ctx.get_help())
        sys.exit(0)
    except click.ClickException as e:
        sys.stderr.write(f"rlt: error: {e.format_message()}\n")
        sys.exit(e.exit_code)  # 2 for usage errors
    except (click.Abort, KeyboardInterrupt):
        sys.stderr.write("rlt: interrupted; rerun the same command to resume\n")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
