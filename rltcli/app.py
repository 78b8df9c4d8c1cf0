"""The `rlt` command line on typer, generated from the command table and the config dataclasses.

Each command of `stages/commands/__init__.py` COMMANDS becomes `rlt <command>` (a name
with a space, "data synth", becomes a sub-command of a group). Its flags,
positional arguments and help come from its config dataclass (rltcli/flags.py builds
the function signature typer reads); every field, nested ones dotted, is also
settable as a `key=value` argument, and every command takes `--config FILE.yaml`,
`--print-config`, `--json`, `--help-keys` and, where the stage has presets,
`--preset NAME`. The help groups the options in panels (flags.PANELS); `rlt
--install-completion` installs shell completion.

How to add a command: write its config dataclass and `run(cfg)` in a stage
module and add one `Command` entry to COMMANDS. How to add an option: add a
field `opt(default, "help", flag=True)` to the config dataclass (and its name to
a panel of flags.PANELS). Nothing else in rltcli/ changes (a custom console display
of the result goes in rltcli/show.py).

Stage modules are imported only when their command is built (run or its own
`--help`), so `rlt --help` stays instant; torch and transformers load only when a
command runs.
"""

from __future__ import annotations

import inspect
import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

import stages.pipelines  # noqa: F401  (adds `rlt run` to the table)
from rltcli.common import fail
from rltcli.flags import CONFIG_PANEL, OUTPUT_PANEL, param
from stages.commands import COMMANDS, GROUPS
from stages.errors import UserError

HELP = "Reinforcement-Learned Teachers: teach, generate, distill, eval - one artifact at a time."
CONTEXT = {"help_option_names": ["-h", "--help"]}
COMPLETE_VAR = "_RLT_COMPLETE"  # shell completion asks through it (typer: _{PROG}_COMPLETE)


def _children(prefix: str) -> dict[str, str]:
    """Direct children of a group ('' = the root): name -> one-line help."""
    out: dict[str, str] = {}
    for name, cmd in COMMANDS.items():
        if not name.startswith(prefix):
            continue
        head, _, rest = name[len(prefix):].partition(" ")
        out[head] = GROUPS[prefix + head] if rest else cmd.help
    return out


def _help_width() -> None:
    """Help 100 columns wide where no terminal gives a width (a pipe, a file; TERMINAL_WIDTH still rules): the
    options panels have four columns."""
    from typer import rich_utils

    if "TERMINAL_WIDTH" not in os.environ and not sys.stdout.isatty():
        rich_utils.MAX_WIDTH = 100


class Group(TyperGroup):
    """A group of COMMANDS: listed from the table alone, each command built when it is resolved."""

    def __init__(self, prefix: str = "", **kw: Any) -> None:
        super().__init__(**{"context_settings": CONTEXT, **kw})
        self.prefix = prefix

    def list_commands(self, ctx) -> list[str]:
        return list(_children(self.prefix))

    def get_command(self, ctx, name: str):
        """The command as a listing shows it (name and help): no stage module is imported."""
        full = self.prefix + name
        if full in GROUPS:
            return Group(prefix=full + " ", name=name, help=GROUPS[full])
        return TyperCommand(name, help=COMMANDS[full].help) if full in COMMANDS else None

    def resolve_command(self, ctx, args: list[str]):
        """The command to run or complete, built from its config; a name that is no command: one line with
        the nearest command."""
        from stages.errors import did_you_mean

        name = args[0] if args else ""
        if name and not name.startswith("-") and self.prefix + name in COMMANDS:
            return name, build(self.prefix + name), args[1:]
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            known = self.list_commands(ctx)
            raise UserError(f"no command 'rlt {self.prefix}{name}' ({did_you_mean(name, known)}"
                                     f"commands: {', '.join(known)})")
        return super().resolve_command(ctx, args)

    def format_help(self, ctx, formatter) -> None:
        _help_width()
        super().format_help(ctx, formatter)

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        if not args and not ctx.resilient_parsing:  # nothing given: the help, exit 0
            typer.echo(ctx.get_help())
            ctx.exit(0)
        return super().parse_args(ctx, args)


class StageCommand(TyperCommand):
    """A command built from a config class: its usage names the positional fields, its help marks the options
    the config requires (`opt(required=True)`). Typer does not refuse a missing one itself: a --config file or
    a key=value may give it, and the config says what is missing once resolved."""

    usage = "[KEY=VALUE]..."
    required: tuple[str, ...] = ()

    def collect_usage_pieces(self, ctx) -> list[str]:
        return [self.options_metavar, self.usage]

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.rich_help_panel, option.metavar = CONFIG_PANEL, ""
        return option

    def format_help(self, ctx, formatter) -> None:
        _help_width()
        marked = [p for p in self.params if p.name in self.required]
        for p in marked:
            p.required = True
        try:
            super().format_help(ctx, formatter)
        finally:
            for p in marked:
                p.required = False


def _common(name: str, presets: list[str], positional_help: str, usage: str) -> list[inspect.Parameter]:
    """The parameters every command takes: config file, preset, display switches, and the positional tokens."""
    out = [param("config", str | None, typer.Option("--config", metavar="FILE", rich_help_panel=CONFIG_PANEL,
                                                       help="YAML file of config keys.")),
           param("print_config", bool | None, typer.Option("--print-config", metavar="", rich_help_panel=CONFIG_PANEL,
                                                              help="Print the resolved config and exit.")),
           param("help_keys", str | None, typer.Option(
               "--help-keys", metavar="[PREFIX]", rich_help_panel=CONFIG_PANEL,
               help="List every config key (nested and trl.* too) with its type, default and help, or those "
                    "matching PREFIX, and exit.")),
           param("as_json", bool | None, typer.Option("--json", metavar="", rich_help_panel=OUTPUT_PANEL,
                                                         help="Print the result as one JSON object on stdout.")),
           param("verbose", bool | None, typer.Option("-v", "--verbose", metavar="", rich_help_panel=OUTPUT_PANEL,
                                                         help="Also show library logs, warnings and bars."))]
    if presets:
        out.append(param("preset", str | None, typer.Option(
            "--preset", metavar="<" + "|".join(presets) + ">", rich_help_panel=CONFIG_PANEL,
            autocompletion=lambda incomplete: [p for p in presets if p.startswith(incomplete)],
            help="Named settings.")))
    out.append(param("args", list[str] | None, typer.Argument(metavar=usage, help=positional_help,
                                                                 show_default=False)))
    return out


def build(name: str) -> StageCommand:
    """The typer command of COMMANDS[name]: a function whose signature is built from the config class."""
    from rltcli.flags import arguments_help, in_panel_order, params_of, usage_metavar
    from stages import commands

    cls = commands.config_class(name)
    options, positional, required = params_of(cls)
    usage = usage_metavar(positional)
    params = in_panel_order([*options, *_common(name, list(commands.presets(name)), arguments_help(cls, positional),
                                                usage)])

    def callback(**values: Any) -> None:
        execute(name, cls, positional, values)

    callback.__signature__ = inspect.Signature(params)
    one = typer.Typer(add_completion=False)
    one.command(name.split()[-1], cls=StageCommand, help=COMMANDS[name].help, context_settings=CONTEXT)(callback)
    command = typer.main.get_command(one)
    command.usage, command.required = usage, tuple(required)
    return command


def execute(name: str, cls: type, positional: list, values: dict[str, Any]) -> None:
    """Resolve the config from the parsed values and run (or print) it; UserError -> exit 2."""
    from rltcli.common import echo_config, launched_child, setup_logging
    from rltcli.flags import collect, split_args
    from rltcli.show import show
    from stages import commands
    from stages.errors import Diverged, Refused, Reported, UserError
    from stages.progress import interval as progress_interval

    prefix = values.pop("help_keys")
    if prefix is not None:  # --help-keys [PREFIX]: the keys, not a run
        from rltcli.keys import text

        try:
            typer.echo(text(name, prefix.strip()))
        except UserError as e:
            fail(str(e))
        return
    setup_logging(bool(values.pop("verbose", False)))
    as_json = bool(values.pop("as_json", False))
    try:
        progress_interval()  # a bad RLT_PROGRESS_SECONDS is said now, not when the first bar starts
    except ValueError as e:
        fail(str(e))
    try:
        args, overrides = split_args(values.pop("args") or (), positional)
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


def _version(value: bool) -> None:
    if value:
        from stages import __version__

        typer.echo(f"rlt {__version__}")
        raise typer.Exit(0)


cli = typer.Typer(cls=Group, help=HELP, context_settings=CONTEXT, rich_markup_mode="rich")


@cli.callback()
def _root(verbose: Annotated[bool, typer.Option(
              "-v", "--verbose", metavar="", help="Also show library logs, warnings and progress bars (any command takes it "
                                      "too).")] = False,
          version: Annotated[bool, typer.Option("--version", metavar="", is_eager=True, callback=_version,
                                                help="Print rlt's version and exit.")] = False) -> None:
    if verbose:
        os.environ["RLT_VERBOSE"] = "1"  # read by setup_logging, inherited by launched processes


app = typer.main.get_command(cli)


def _optional_value(argv: list[str]) -> list[str]:
    """`--help-keys [PREFIX]` as typer reads it: the PREFIX is the token after it when there is one that is no
    option (`--help-keys=PREFIX`), else empty (`--help-keys=`)."""
    out = list(argv)
    for i, token in enumerate(out):
        if token == "--":
            break
        if token == "--help-keys":
            given = i + 1 < len(out) and not out[i + 1].startswith("-")
            out[i:i + 1 + given] = [f"--help-keys={out[i + 1] if given else ''}"]
            break
    return out


def _completion_instruction() -> None:
    """`_RLT_COMPLETE=bash_source rlt` (click's order, which rlt took before typer) as typer spells it
    (`source_bash`): a completion line already in a shell's startup file keeps working."""
    shell, _, what = os.environ.get(COMPLETE_VAR, "").partition("_")
    if what in ("source", "complete") and shell in ("bash", "zsh", "fish"):
        os.environ[COMPLETE_VAR] = f"{what}_{shell}"


def main(argv: list[str] | None = None) -> None:
    """Console entry point: usage errors become one line and exit code 2."""
    argv = _optional_value(sys.argv[1:] if argv is None else argv)
    _completion_instruction()
    try:
        code = app.main(args=argv, prog_name="rlt", standalone_mode=False)
    except typer.TyperException as e:  # typer's usage errors
        fail(" ".join(e.format_message().split()))
    except UserError as e:  # a command name that is none
        fail(str(e))
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("rlt: interrupted; rerun the same command to resume\n")
        sys.exit(130)
    if code == 130:  # typer's answer to Ctrl-C while it parses (a running command says so itself)
        sys.stderr.write("rlt: interrupted; rerun the same command to resume\n")
    sys.exit(code if isinstance(code, int) else 0)
