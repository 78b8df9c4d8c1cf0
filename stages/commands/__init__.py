"""The command table: every `rlt` command, the stage function it runs and that function's config.

The CLI (`rltcli/app.py`) builds its commands, flags and help from this table
and the config dataclasses; `rlt run` (stages/pipelines/) resolves and runs
pipeline steps through the same table, so the two cannot disagree. `rlt run`
itself joins the table from its own layer (`add`, in stages/pipelines/__init__.py):
the table names no module above stages/commands/.

    cfg = make_config("data synth", options={"out": "runs/d", "n": 20})
    call("data synth", cfg)   # -> Path of the dataset artifact

Adding a command = one `Command` entry here (plus its config dataclass and
function in its module under stages/commands/); the entry's traits (the artifact
kind it writes, whether it shards or launches) are what `rlt run` and its
executors read, never the command's name. Adding an option = one field in the config
dataclass: `opt(default, help)` makes it a dotted `key=value` override,
`flag=True` also shows it as `--key` (see stages/config.py `opt`).
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Any

from stages.config import check_required, load_yaml, resolve
from stages.errors import UserError


@dataclass(frozen=True)
class Command:
    """One command: `stages.<stage>.<func>(<config>(...))`; stage modules live in stages/commands/."""

    stage: str  # module below stages/ (dotted)
    config: str  # config dataclass in that module
    func: str  # function taking the resolved config
    help: str  # one-line summary (`rlt --help`); fields carry their own help
    step: bool = True  # usable as a step of a pipeline in `rlt run`
    kind: str | None = None  # the artifact kind it writes; None: the kind it reads (data merge, decontaminate)
    done_file: str | None = None  # writes plain files, not an artifact: the one that says it ran (rerun when older)
    shards: bool = False  # takes --shard i/n; its module's `finish_merged(w, rows, manifests, extra)` merges shards
    launches: bool = False  # takes --launch: one launcher per node on several machines


GROUPS: dict[str, str] = {
    "data": "Build, import, merge and compact datasets.",
    "model": "Build local models, or import one from a GGUF file.",
}

COMMANDS: dict[str, Command] = {
    "teach": Command("commands.teach", "TeachConfig", "run",
                     "GRPO on the teacher: explanations rewarded by how well the student then understands the solution.",
                     kind="checkpoint", launches=True),
    "generate": Command("commands.generate", "GenerateConfig", "run",
                        "Teacher explanations for every (question, solution) -> traces in the student format.",
                        kind="traces", shards=True),
    "distill": Command("commands.distill", "DistillConfig", "run",
                       "SFT a student on traces, or warm up a teacher (--role teacher).", kind="checkpoint",
                       launches=True),
    "eval": Command("commands.evaluate", "EvalConfig", "run",
                    "Accuracy of one or more models on a dataset (benchmarks or the synthetic test split).",
                    kind="eval", shards=True),
    "score": Command("commands.score", "ScoreConfig", "run",
                     "RLT reward of given explanations: a traces artifact with the reward columns (resumable).",
                     kind="traces", shards=True),
    "report": Command("commands.report", "ReportConfig", "run",
                      "Markdown report with plots: teacher reward per step, loss curves, accuracy with intervals.",
                      done_file="report.md"),
    "inspect": Command("commands.inspect", "InspectConfig", "run",
                       "Show an artifact's state (complete, interrupted, inputs changed), schema and first rows.",
                       step=False),
    "data synth": Command("commands.data", "SynthConfig", "synth", "Synthetic addition task with gold column-carry traces.",
                          kind="dataset"),
    "data import": Command("commands.data", "ImportConfig", "import_",
                           "Import a dataset in a known layout (Bespoke-Stratos, MATH-500, AIME, GPQA, plain columns).",
                           kind="dataset"),
    "data decontaminate": Command("commands.decontaminate", "DecontaminateConfig", "run",
                                  "Drop training rows whose question shares a word n-gram with a benchmark question."),
    "data merge": Command("commands.data", "MergeConfig", "merge",
                          "Merge shards or resumed runs into one artifact, refusing conflicting rows."),
    "data compact": Command("commands.compact", "CompactConfig", "run",
                            "Merge an artifact's parts into few files in part order; converts the older layout in place.",
                            step=False),
    "model tiny": Command("commands.tinymodel", "TinyModelConfig", "run",
                          "A tiny Qwen2-style model with a locally trained BPE tokenizer (no network).", kind="checkpoint"),
    "model import": Command("commands.modelimport", "ModelImportConfig", "run",
                            "A GGUF file (llama.cpp) -> a model directory: safetensors, float32, its tokenizer "
                            "and chat template.", kind="checkpoint"),
}

STEPS = [name for name, c in COMMANDS.items() if c.step]


def with_trait(trait: str) -> list[str]:
    """The commands whose `Command.<trait>` is true (`shards`, `launches`), in table order."""
    return [name for name, c in COMMANDS.items() if getattr(c, trait)]


def add(name: str, command: Command) -> None:
    """Join a command of a layer above this one to the table: `rlt run` (stages/pipelines/__init__.py) runs the
    table's commands, so the table naming its module would be an import circle. Never a step."""
    assert not command.step, name
    COMMANDS[name] = command


def module(name: str):
    """The stage module of command `name` (imported on first use: heavy imports stay lazy)."""
    return importlib.import_module(f"stages.{COMMANDS[name].stage}")


def config_class(name: str) -> type:
    """The config dataclass of command `name`."""
    return getattr(module(name), COMMANDS[name].config)


def presets(name: str) -> dict[str, dict]:
    """Named settings of a command (`--preset`), {} when it has none."""
    return getattr(module(name), "PRESETS", {})


def _named_preset(file, overrides: list[str] | None) -> str | None:
    """The preset a `preset=NAME` override or a `preset:` key of the config file names (the override wins)."""
    for text in reversed(overrides or []):
        key, _, value = text.partition("=")
        if key.strip() == "preset":
            return value.strip() or None
    value = load_yaml(file).get("preset") if file else None
    return None if value is None else str(value)


def make_config(name: str, preset: str | None = None, file=None, overrides: list[str] | None = None,
                options: dict[str, Any] | None = None, complete: bool = True):
    """Resolve the config of command `name`: defaults < preset < file < overrides < options.

    The preset is the `--preset` flag's, else the one a `preset` key names (in `file` or an
    override): a named preset is applied wherever it is named, not only recorded. With
    `complete`, required options must be given, else only positional arguments (`--print-config`
    shows a config still missing options).
    Raises UserError for an unknown preset, unknown keys, mistyped or invalid values and
    missing required options.
    """
    cls, named = config_class(name), presets(name)
    if preset is None and named:
        preset = _named_preset(file, overrides)
    if preset is not None and preset not in named:
        raise UserError(f"unknown --preset {preset!r} (valid: {', '.join(sorted(named)) or 'none'})")
    options = dict(options or {})
    if preset is not None and "preset" in {f.name for f in dataclasses.fields(cls)}:
        options["preset"] = preset  # recorded in the manifest
    cfg = resolve(cls, file=file, overrides=overrides, preset=named.get(preset) if preset else None,
                  options=options, preset_name=preset)
    check_required(cfg, options=complete)
    # A stage may derive values from others (distill's teacher warm-up recipe): what the CLI prints,
    # `rlt run` compares with a finished output and the stage records is then one config.
    finalize = getattr(module(name), "finalize_config", None)
    return finalize(cfg) if finalize else cfg


def call(name: str, cfg) -> Any:
    """Run command `name` on its resolved config; returns what the stage returns.

    Raises UserError when a required option is missing or a value is invalid: each stage checks
    its config first thing (`config.check_config`), once, whoever calls it. While it runs, SIGTERM and the scheduler's warning
    signal stop it gracefully (stages/interrupt.py: interrupt.GracefulStop, exit 130 in the CLI).
    """
    from stages import interrupt

    with interrupt.handled():
        return getattr(module(name), COMMANDS[name].func)(cfg)
