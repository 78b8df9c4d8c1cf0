"""Pipeline files and plans: parse a pipeline, resolve every step's config, decide what each step needs.

A pipeline is a mapping with `steps` (ordered: name -> {command, options, resources, shards}) and
optionally `description`, `vars` (NAME: default) and `resources` (defaults of every step):

    mini:
      vars: {seed: 0}
      resources: {time: "1:00:00", partition: gpu}
      steps:
        train: {command: data synth, options: {n: 64, seed: "${seed}"}}
        traces: {command: generate, options: {teacher: m, data: "${train}"}, shards: 4}
        student: {command: distill, options: {model: m, data: "${traces}", launch: zero3},
                  resources: {nodes: 2, gpus_per_node: 8}}
        report: {command: report, options: {runs: ["${pipeline}"]}}

`${step}` is an earlier step's output directory (`<runs>/<pipeline>/<step>`), `${NAME}` a variable,
`${pipeline}` the pipeline's own folder (what a closing `report` step reads). `shards: N` (generate,
score, eval) runs N shards `--shard i/N` into `<runs>/<pipeline>/.pipeline/shards/<step>/` and merges
them into the step's output, which is then the artifact one unsharded run writes (same config and
inputs, the rows of every shard once). `resources` are what a cluster executor asks for
(`RESOURCE_KEYS`); the local executor ignores them.

Every step's config is resolved before anything runs. What a step does is decided by the rule its
stage applies to its output (`why_run`, `state.decide`): complete with the same kind, config and inputs ->
skip; missing, or interrupted before its first rows or checkpoint -> run; interrupted with rows or a
checkpoint -> resume; another kind, config or inputs -> run, replacing it; another process writing it, or a
damaged newest checkpoint -> refuse.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stages.artifacts.layout import read_manifest
from stages.artifacts.state import OutputState, decide, output_state
from stages.commands import COMMANDS, STEPS, make_config, with_trait
from stages.config import inputs_of, load_yaml, yaml_value
from stages.errors import UserError, did_you_mean

SHIPPED = Path(__file__).with_name("pipelines.yaml")
REF = re.compile(r"\$\{([A-Za-z0-9_.-]+)\}")
PIPELINE_KEYS = ("description", "vars", "resources", "steps")
STEP_KEYS = ("command", "options", "resources", "shards")
RESOURCE_KEYS = ("nodes", "gpus_per_node", "cpus_per_task", "mem", "time", "partition", "account", "qos",
                 "constraint")
OWN_DIR = "pipeline"  # ${pipeline}: the pipeline's folder
META = ".pipeline"  # <runs>/<pipeline>/.pipeline/: shards, job specs and records, logs, the run's variables


@dataclass
class Step:
    name: str
    command: str
    options: dict
    out: Path
    needs: list[str] = field(default_factory=list)
    resources: dict = field(default_factory=dict)
    shards: int | None = None


def pipeline_dir(runs: str | Path, name: str) -> Path:
    return Path(runs) / name


def meta_dir(runs: str | Path, name: str) -> Path:
    return pipeline_dir(runs, name) / META


def shard_out(step: Step, index: int, count: int) -> Path:
    """Where shard `index` of `count` of a sharded step writes its artifact."""
    return step.out.parent / META / "shards" / step.name / f"{index}-of-{count}"


# ----------------------------------------------------------------------------- files


def read_file(path: str | Path) -> dict:
    """The raw pipelines of a file (name -> spec), unvalidated; UserError when the file is unreadable."""
    data = load_yaml(path, "pipelines file")
    if not data:
        raise UserError(f"{path} defines no pipeline")
    return data


def load_pipelines(path: str | Path) -> dict[str, dict]:
    """The file's pipelines (name -> spec), every one validated (the first bad one raises)."""
    data = read_file(path)
    for name, spec in data.items():
        parse(name, spec, Path("runs"), str(path))
    return data


def available(file: str | None) -> tuple[dict[str, dict], dict[str, str]]:
    """(the shipped pipelines with `file`'s added or replacing them by name, unvalidated; name -> its source)."""
    shipped = read_file(SHIPPED)
    sources = {n: "the shipped pipelines" for n in shipped}
    if file is None:
        return shipped, sources
    extra = read_file(file)
    return {**shipped, **extra}, {**sources, **{n: str(file) for n in extra}}


def first_sentence(text: str | None) -> str:
    text = " ".join(str(text or "").split())
    m = re.match(r"(.+?[.!?])(\s|$)", text)
    return m.group(1) if m else text


# ----------------------------------------------------------------------------- parsing


def pipeline_vars(spec: dict, overrides: dict, where: str) -> dict[str, Any]:
    """Declared variables with `overrides` applied; UserError on an undeclared one.

    Override values given as text are read as YAML scalars (`seed=1` -> 1).
    """
    declared = spec.get("vars") or {}
    if not isinstance(declared, dict):
        raise UserError(f"{where}: 'vars' must be a mapping of NAME: default")
    clash = set(declared) & set(spec["steps"])
    if clash:
        raise UserError(f"{where}: {sorted(clash)} name both a variable and a step")
    reserved = ({OWN_DIR} & (set(declared) | set(spec["steps"])))
    if reserved:
        raise UserError(f"{where}: '{OWN_DIR}' is reserved (${{{OWN_DIR}}} is the pipeline's folder)")
    unknown = set(overrides) - set(declared)
    if unknown:
        valid = ", ".join(sorted(declared)) or "none declared"
        raise UserError(f"{where}: unknown variable(s) {sorted(unknown)} (valid: {valid})")
    values = dict(declared)
    for k, v in overrides.items():
        try:
            values[k] = yaml_value(v) if isinstance(v, str) else v
        except ValueError as e:
            raise UserError(f"{where}: variable {k} {e}") from None
    return values


def _unknown_keys(found, valid, what: str) -> str:
    bad = sorted(set(found) - set(valid))
    hints = [m for b in bad for m in difflib.get_close_matches(b, valid, n=1)]
    hint = f"; did you mean {', '.join(repr(h) for h in hints)}?" if hints else ""
    return f"unknown {what} {', '.join(repr(b) for b in bad)} (valid: {', '.join(valid)}){hint}"


def parse(name: str, spec: Any, runs: Path, source: str = "pipelines", overrides: dict | None = None,
          resource_overrides: dict | None = None) -> list[Step]:
    """Validate one pipeline spec and return its steps in order, references resolved, configs checked.

    Every error names the source, the pipeline and the step: `FILE: pipeline 'p', step 's': ...`.
    """
    where = f"{source}: pipeline '{name}'"
    if not isinstance(spec, dict) or not isinstance(spec.get("steps"), dict) or not spec["steps"]:
        raise UserError(f"{where} needs a non-empty 'steps' mapping")
    if set(spec) - set(PIPELINE_KEYS):
        raise UserError(f"{where}: {_unknown_keys(spec, PIPELINE_KEYS, 'keys')}")
    variables = pipeline_vars(spec, overrides or {}, where)
    defaults = check_resources(spec.get("resources") or {}, f"{where}: resources")
    commands = [*STEPS]
    steps: list[Step] = []
    for sname, s in spec["steps"].items():
        here = f"{where}, step '{sname}'"
        if isinstance(s, dict) and set(s) - set(STEP_KEYS):  # first: a mistyped `command` key is named
            raise UserError(f"{here}: {_unknown_keys(s, STEP_KEYS, 'keys')}")
        if not isinstance(s, dict) or s.get("command") not in commands:
            hint = did_you_mean(s.get("command"), commands) if isinstance(s, dict) and s.get("command") else ""
            raise UserError(f"{here}: 'command' must be one of {', '.join(commands)}"
                            + (f" ({hint.strip()})" if hint else ""))
        options = s.get("options") or {}
        if not isinstance(options, dict):
            raise UserError(f"{here}: 'options' must be a mapping")
        step = Step(str(sname), s["command"], {}, Path(runs) / name / str(sname))
        step.options = _resolve_refs(options, {p.name: p for p in steps}, step, here, variables,
                                     tuple(map(str, spec["steps"])))
        if step.needs == [OWN_DIR]:
            step.needs = [p.name for p in steps]  # the pipeline's folder: every earlier step
        own = check_resources(s.get("resources") or {}, f"{here}: resources")
        step.resources = {**defaults, **own, **check_resources(resource_overrides or {}, "--slurm")}
        step.shards = _shards(s.get("shards"), step, here)
        _check_nodes(step, here)
        steps.append(step)
    for step in steps:
        build_config(step, where)  # unknown keys and bad types surface before anything runs
    return steps


def _shards(value: Any, step: Step, here: str) -> int | None:
    if value is None:
        return None
    if not COMMANDS[step.command].shards:
        raise UserError(f"{here}: 'shards' needs a command that shards ({', '.join(with_trait('shards'))}), "
                        f"not {step.command}")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{here}: 'shards' must be a whole number of at least 1, got {value!r}")
    if step.options.get("shard") is not None:
        raise UserError(f"{here}: give 'shards: N' or the 'shard' option, not both")
    return value


def _check_nodes(step: Step, here: str) -> None:
    nodes = step.resources.get("nodes", 1)
    if nodes <= 1:
        return
    if not COMMANDS[step.command].launches:
        raise UserError(f"{here}: resources.nodes {nodes} needs a command that launches one process per node "
                        f"({', '.join(with_trait('launches'))}), not {step.command}")
    if not step.options.get("launch"):
        raise UserError(f"{here}: resources.nodes {nodes} needs the 'launch' option (ddp, zero2, zero3, ...): "
                        "a plain run uses one process on one node")
    nproc = step.options.get("nproc", step.options.get("gpus"))
    if isinstance(nproc, int) and nproc % nodes:
        raise UserError(f"{here}: nproc {nproc} counts the processes of all {nodes} nodes: it must be a multiple "
                        f"of {nodes}")


def _resolve_refs(value: Any, earlier: dict[str, Step], step: Step, where: str, variables: dict,
                  steps: tuple[str, ...] = ()) -> Any:
    """`value` with its `${...}` references resolved; `steps` names every step of the pipeline (a reference to
    a later one is said so); UserError naming the nearest reference for one that is none."""
    if isinstance(value, dict):
        return {k: _resolve_refs(v, earlier, step, where, variables, steps) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_refs(v, earlier, step, where, variables, steps) for v in value]
    if not isinstance(value, str):
        return value
    whole = REF.fullmatch(value)
    if whole and whole.group(1) in variables:  # `seed: ${seed}` keeps the variable's type
        return variables[whole.group(1)]

    def sub(m: re.Match) -> str:
        ref = m.group(1)
        if ref in variables:
            return str(variables[ref])
        if ref == OWN_DIR:
            step.needs.append(OWN_DIR)
            return str(step.out.parent)
        if ref not in earlier:
            later = " (a step reads only the steps above it)" if ref in steps else ""
            hint = "" if later else did_you_mean(ref, [*earlier, *variables, OWN_DIR])
            raise UserError(f"{where}: ${{{ref}}} is not an earlier step or a variable{later}"
                            + (f" ({hint.strip()})" if hint else ""))
        step.needs.append(ref)
        return str(earlier[ref].out)

    return REF.sub(sub, value)


def build_config(step: Step, where: str | None = None):
    """The stage config of a step (preset applied, `out` set to the step's directory)."""
    return config_for(step, {}, where)


def config_for(step: Step, extra: dict, where: str | None = None):
    """The stage config of a step with `extra` options (a shard's `shard` and `out`)."""
    options = dict(step.options)
    preset = options.pop("preset", None)
    try:
        return make_config(step.command, preset=preset, options={**options, "out": str(step.out), **extra})
    except UserError as e:
        raise UserError(f"{where + ', ' if where else ''}step '{step.name}': {e}") from None


# ----------------------------------------------------------------------------- resources


def check_resources(res: Any, where: str) -> dict:
    """The resources mapping checked (RESOURCE_KEYS, types; `time` read as minutes); UserError naming the key."""
    if not isinstance(res, dict):
        raise UserError(f"{where} must be a mapping of {', '.join(RESOURCE_KEYS)}")
    if set(res) - set(RESOURCE_KEYS):
        raise UserError(f"{where}: {_unknown_keys(res, RESOURCE_KEYS, 'key')}")
    out = {}
    for key, value in res.items():
        if value is None:
            continue
        if key in ("nodes", "gpus_per_node", "cpus_per_task"):
            low = 0 if key == "gpus_per_node" else 1
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise UserError(f"{where}: {key} must be a whole number of at least {low}, got {value!r}")
        elif key == "time":
            minutes(value, f"{where}: time")
        elif key == "mem":
            mem_mib(value, f"{where}: mem")
            value = str(value).strip().upper().removesuffix("B")
        elif not isinstance(value, str) or not value.strip():
            raise UserError(f"{where}: {key} must be a name, got {value!r}")
        out[key] = value
    return out


MEM_UNITS = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}  # Slurm's --mem units, powers of 1024


def mem_mib(value: Any, where: str = "mem") -> float:
    """Memory per node in MiB from a size with its unit: "64G", "500M", "1.5T" (Slurm's units, powers of
    1024; a trailing B is allowed). 0 is the node's whole memory (returns 0). A bare number is refused: Slurm
    would read `64` as 64 megabytes, rarely what is meant. Raises UserError naming `where`."""
    text = str(value).strip().upper().removesuffix("B")
    if text == "0" and not isinstance(value, bool):
        return 0
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT])", text)
    if isinstance(value, bool) or not m:
        hint = f" (64 would be 64 megabytes to Slurm: write {value}G or {value}M)" if re.fullmatch(r"\d+", text) else ""
        raise UserError(f"{where} must be a size with its unit, such as 64G or 500M (0: all of the node's "
                        f"memory), got {value!r}{hint}")
    return float(m.group(1)) * MEM_UNITS[m.group(2)]


def minutes(value: Any, where: str = "time") -> int:
    """Slurm's time formats as whole minutes: 90, "90", "1:30:00", "2-00:00:00", "1-12", "45:00" (MM:SS)."""
    text = str(value).strip()
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if isinstance(value, bool) or not m or (m.group(1) is None and m.group(3) is None and m.group(4) is None
                                             and int(m.group(2)) < 1):
        raise UserError(f"{where} must be minutes or a Slurm time (MM:SS, HH:MM:SS, D-HH, D-HH:MM:SS), "
                        f"got {value!r}")
    days, a, b, c = (int(g) if g else None for g in m.groups())
    if days is not None:  # D-HH[:MM[:SS]]
        total = days * 1440 + a * 60 + (b or 0) + ((c or 0) + 59) // 60
    elif c is not None:  # HH:MM:SS
        total = a * 60 + b + (c + 59) // 60
    elif b is not None:  # MM:SS
        total = a + (b + 59) // 60
    else:
        total = a
    if total < 1:
        raise UserError(f"{where} must be at least a minute, got {value!r}")
    return total


def clock_of(total_minutes: int) -> str:
    """Minutes as Slurm writes a time: `4:00:00`, `2-00:00:00` from a day on."""
    days, rest = divmod(int(total_minutes), 1440)
    return (f"{days}-" if days else "") + f"{rest // 60:{'02d' if days else 'd'}}:{rest % 60:02d}:00"


def describe_resources(res: dict, shards: int | None = None) -> str:
    """`2 nodes x 8 GPUs, 64 CPUs, 200G, 4:00:00, partition gpu` (what a cluster executor asks per job)."""
    parts = []
    nodes, gpus = res.get("nodes", 1), res.get("gpus_per_node")
    parts.append(f"{nodes} node{'s' if nodes != 1 else ''}" + (f" x {gpus} GPU{'s' if gpus != 1 else ''}"
                                                               if gpus else ""))
    if res.get("cpus_per_task"):
        parts.append(f"{res['cpus_per_task']} CPUs")
    if res.get("mem") is not None:
        parts.append("all memory" if str(res["mem"]) == "0" else f"{res['mem']} memory")
    if res.get("time") is not None:
        parts.append(clock_of(minutes(res["time"])))
    else:  # sbatch gets no --time: the partition's limit applies
        parts.append("the partition's time limit")
    parts += [f"{k} {res[k]}" for k in ("partition", "account", "qos", "constraint") if res.get(k)]
    return (f"{shards} x " if shards else "") + ", ".join(parts)


# ----------------------------------------------------------------------------- state


def earlier_seconds(out: Path) -> float | None:
    """Seconds the finished output at `out` took (its manifest's timings), None without one."""
    m = read_manifest(out) if out.is_dir() else None
    if not m:
        return None
    seconds = (m.get("timings") or {}).get("seconds")
    return round(float(seconds), 1) if seconds is not None else None


def done_path(step: Step) -> Path | None:
    """The file that says a step writing plain files (report: report.md) ran; None for a step writing an
    artifact (its manifest says it)."""
    name = COMMANDS[step.command].done_file
    return step.out / name if name else None


def files_current(step: Step, steps: dict[str, Step]) -> bool:
    """A step writing plain files (report) is up to date when its done file (report.md) is newer than every
    manifest it reads."""
    done = done_path(step)
    if done is None or not done.is_file():
        return False
    from stages.artifacts.layout import manifest_path

    times = [manifest_path(steps[n].out).stat().st_mtime for n in step.needs
             if n in steps and manifest_path(steps[n].out).is_file()]
    return all(t <= done.stat().st_mtime for t in times)


def job_force(out: str | Path, command: str, cfg, replace: bool) -> bool:
    """Whether a job's stage runs with --force (`replaces`, on the output's state as the stage sees it)."""
    return replaces(output_state(out, COMMANDS[command].kind, cfg, inputs_of(cfg)), replace)


def replaces(state: OutputState, replace: bool) -> bool:
    """Whether a job replaces the output in `state`: one from another kind, config or inputs (compared as the stage
    compares them), or any when `replace` (the plan forced the step: --from, --force)."""
    return state.status == "conflicting" or (replace and state.status != "missing")


@dataclass(frozen=True)
class Verdict:
    """What a step does: `action` skip | run | resume | refuse (`state.decide`'s actions), why, and whether its
    output is replaced (the stage runs with --force)."""

    action: str
    reason: str | None
    replace: bool = False


def why_run(step: Step, cfg, rerun: set[str], forced: dict[str, str] | None = None,
            steps: dict[str, Step] | None = None) -> Verdict:
    """What `step` will do when it runs, decided by the rule its stage applies (`state.decide`, with the stage's
    kind and inputs and the --force its job gives it, `replaces`).

    `rerun`: steps that run before this one (an upstream step that runs may change this step's
    inputs); `forced`: step -> why it is forced (--from, --force).
    """
    if forced and step.name in forced:
        return Verdict("run", forced[step.name], True)
    upstream = [n for n in step.needs if n in rerun]
    if done_path(step) is not None:  # files without a manifest (report): rerun when older than its inputs
        if steps is not None and files_current(step, steps) and not upstream:
            return Verdict("skip", None)
        return Verdict("run", "the report is older than what it reads")
    decision = decide(step.out, COMMANDS[step.command].kind, cfg, inputs_of(cfg))
    if replaces(decision.state, False):  # another kind, config or inputs: its job gives --force, the stage runs
        return Verdict("run", "; ".join(decision.state.differs), True)
    if upstream and decision.action in ("skip", "resume"):  # decided again when its turn comes
        return Verdict("run", f"upstream step {upstream[0]} runs first (its output is an input here)")
    if decision.action == "skip":
        return Verdict("skip", None)
    return Verdict(decision.action, decision.reason)
