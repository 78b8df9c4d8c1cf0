"""`rlt run NAME --smoke`: any pipeline's topology at toy sizes, to prove the path before the real run.

The same steps, commands, dependencies, shards (at most SHARDS), launch presets and executor, with:
- every model that no earlier step makes (a hub id, an outside folder) replaced by one tiny model of the
  Qwen2 family made by a first step `smoke-model` (`rlt model tiny`);
- every `data import` whose source is not here replaced by `data synth` of ROWS rows (test questions for
  a benchmark format), one whose source is here limited to ROWS rows; `data synth` capped at ROWS rows;
- training for STEPS optimizer steps of small batches, STEPS GRPO steps of 2 prompts x 2 completions,
  at most NEW_TOKENS new tokens per completion, transformers' engine where no GPU is visible;
- launched steps on 2 processes (a preset that cannot run here, a DeepSpeed one without GPUs before
  CPU presets exist for it, becomes ddp, said in one log line);
- on a cluster: TIME minutes, 2 CPUs, no memory request; without GPUs (`--slurm.gpus_per_node=0`, or
  none visible to a local run) every step runs on CPUs.
Outputs go to `<runs>/smoke/<pipeline>/`, never beside the real run's.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from stages.commands import COMMANDS, config_class

log = logging.getLogger("stages.pipelines.run")
MODEL = "smoke-model"
ROWS, STEPS, NEW_TOKENS, SHARDS, TIME = 16, 2, 16, 2, 20
MODEL_KEYS = {"distill": ("model",), "teach": ("teacher", "student"), "generate": ("teacher", "student"),
              "score": ("teacher", "student"), "eval": ("models",)}
BENCHMARK_FORMATS = ("math500", "aime", "gpqa")
SIZES = {  # options of each command at toy sizes (only those its config has are set)
    "distill": {"max_steps": STEPS, "batch_size": 2, "global_batch": 4, "max_length": 1024, "save_steps": 1},
    "teach": {"max_steps": STEPS, "num_generations": 2, "prompts_per_step": 2, "grad_accum": 1,
              "max_new_tokens": NEW_TOKENS, "use_vllm": False},
    "generate": {"max_new_tokens": NEW_TOKENS},
    "eval": {"max_new_tokens": NEW_TOKENS},
}


def _fields(command: str) -> set[str]:
    import dataclasses

    return {f.name for f in dataclasses.fields(config_class(command))}


def _step_ref(value: Any, steps: set[str]) -> bool:
    """Is `value` an earlier step's output (`${step}` or a path inside it)?"""
    m = re.match(r"\$\{([A-Za-z0-9_.-]+)\}", str(value))
    return bool(m) and m.group(1) in steps


def _launch_here(preset: str) -> str:
    from stages.errors import UserError
    from stages.training import launch

    try:
        launch.check_launch(preset, 2)
        return preset
    except UserError as e:
        log.info("smoke run: --launch %s cannot run here (%s): ddp instead", preset, e)
        return "ddp"


def smoke_spec(spec: dict, on_cpu: bool) -> dict:
    """The pipeline spec at toy sizes (see the module docstring); `on_cpu`: every step on CPUs."""
    from pathlib import Path

    spec = copy.deepcopy(spec)
    steps = {MODEL: {"command": "model tiny", "options": {"seed": 0}}}
    names = set(spec["steps"]) | {MODEL}
    for name, s in spec["steps"].items():
        s = dict(s)
        command, options = s.get("command"), dict(s.get("options") or {})
        fields = _fields(command) if command in COMMANDS else set()
        for key in MODEL_KEYS.get(command, ()):
            value = options.get(key)
            if isinstance(value, list):
                options[key] = [v if _step_ref(v, names) else f"${{{MODEL}}}" for v in value]
            elif value is not None and not _step_ref(value, names):
                options[key] = f"${{{MODEL}}}"
        if command == "data import":
            src = str(options.get("src", ""))
            if "${" in src or not Path(src).exists():
                split = "test" if options.get("format") in BENCHMARK_FORMATS else "train"
                command, options = "data synth", {"n": ROWS, "seed": 0, "split": split}
            else:
                options["limit"] = ROWS
        elif command == "data synth":
            options["n"] = min(int(options.get("n", ROWS)) if str(options.get("n", "")).isdigit() else ROWS, ROWS)
        for key, value in SIZES.get(command, {}).items():
            if key in fields:
                options[key] = value
        if options.get("launch"):
            options["launch"] = _launch_here(str(options["launch"]))
            options.pop("gpus", None)
            options["nproc"] = 2
        if on_cpu:
            if "device" in fields:
                options["device"] = "cpu"
            if "engine" in fields:
                options["engine"] = {**(options.get("engine") or {}), "name": "hf", "device": "cpu"}
        if s.get("shards"):
            s["shards"] = min(int(s["shards"]), SHARDS)
        s["command"], s["options"] = command, options
        s["resources"] = _resources(s.get("resources") or {}, on_cpu)
        steps[name] = s
    spec["steps"] = steps
    spec["resources"] = _resources(spec.get("resources") or {}, on_cpu)
    return spec


def _resources(res: dict, on_cpu: bool) -> dict:
    out = {k: v for k, v in res.items() if k in ("nodes", "partition", "account", "qos", "constraint")}
    out.update(time=TIME, cpus_per_task=2)
    if not on_cpu and res.get("gpus_per_node"):
        out["gpus_per_node"] = min(int(res["gpus_per_node"]), 2)
    return out
