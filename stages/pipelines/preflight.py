"""The preflight of a pipeline run: what would fail after a step started (or after hours in a queue), found
before anything runs or is submitted, every problem at once.

    found = Findings()
    check_inputs(steps_that_run, all_steps, found)        # every executor
    check_cluster_resources(step, cfg, partitions, found)  # a cluster executor, with what its scheduler reports
    found.problems    # one line each: `rlt run` prints them all and exits 2, nothing runs or is submitted
    found.notes       # what the plan should say but does not stop a run (a hub model not cached here, ...)

What is checked:
- inputs: every path a step reads (its config's `input` fields) exists, or is the output of an earlier
  step of the pipeline (or a path inside one); a hub id (`org/name`) is looked up in the local hub cache
  only (never on the network): not cached is a note, and a problem when HF_HUB_OFFLINE is set (the run
  could not fetch it);
- on a cluster: the scheduler answers; each step's resources fit its options (GPUs for a step that
  launches GPU processes or generates with vLLM: `gpus`/`nproc` processes need nodes x gpus_per_node
  GPUs) and the partition (it exists, its nodes have that many GPUs and that much memory, `time` within
  its MaxTime; no `time` is a note naming the limit that then applies).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from stages.config import inputs_of
from stages.pipelines.plan import Step, clock_of, mem_mib, minutes

MODEL_FIELDS = ("model", "models", "teacher", "student")  # inputs that may name a hub model (the rest: artifacts)
SERVED_FIELDS = ("model", "models", "teacher")  # the models an engine generates with: names a server serves


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"problems": list(self.problems), "notes": list(self.notes)}


@dataclass
class Partition:
    """What a scheduler reports of one partition (sinfo), the largest node of it where nodes differ."""

    name: str
    max_minutes: int | None  # None: no limit
    default: bool = False
    gpus_per_node: int = 0
    cpus_per_node: int = 0
    mem_mib: float = 0  # 0: unknown


# ----------------------------------------------------------------------------- inputs


def _produced(path: str, earlier: list[Step]) -> bool:
    p = os.path.normpath(path)
    return any(p == os.path.normpath(s.out) or p.startswith(os.path.normpath(s.out) + os.sep)
               or p == os.path.normpath(s.out.parent) for s in earlier)


def hub_cached(repo: str, dataset: bool = False) -> bool:
    """Is hub id `repo` in the local hub cache (a model's config.json; any snapshot of a dataset)? No network."""
    from huggingface_hub import constants, try_to_load_from_cache

    if not dataset:
        return isinstance(try_to_load_from_cache(repo, "config.json"), str)
    folder = Path(constants.HF_HUB_CACHE) / f"datasets--{repo.replace('/', '--')}" / "snapshots"
    return folder.is_dir() and any(folder.iterdir())


def check_inputs(step: Step, cfg, earlier: list[Step], found: Findings) -> None:
    """Each path `step` reads exists, is made by an earlier step, or is a hub id cached here."""
    from huggingface_hub import constants

    from stages.models.loading import hub_id

    served = getattr(getattr(cfg, "engine", None), "name", None) == "openai"
    for name, path in inputs_of(cfg).items():
        field_name = name.split("[")[0]
        if _produced(path, earlier) or Path(path).exists() or (served and field_name in SERVED_FIELDS):
            continue
        dataset = step.command == "data import"
        if (field_name in MODEL_FIELDS or dataset) and hub_id(path):
            if hub_cached(path, dataset):
                continue
            what = f"step '{step.name}': {'dataset' if dataset else 'model'} {path} is not in the hub cache here"
            if constants.HF_HUB_OFFLINE:
                found.problems.append(f"{what} and HF_HUB_OFFLINE is set: download it first")
            else:
                found.notes.append(f"{what}: download it before running on nodes without network")
            continue
        found.problems.append(f"step '{step.name}': {field_name} not found: {path} "
                              "(no such file, and no earlier step makes it)")


# ----------------------------------------------------------------------------- GPUs a step's options use


def gpus_needed(step: Step, cfg) -> tuple[int, str] | None:
    """(GPUs the step's options use in all, why) or None when its options name no GPU.

    A launched run with `gpus`/`nproc` and a GPU preset runs that many GPU processes; `device: cuda`
    and the vLLM engine need at least one GPU. A launch without a process count takes one per GPU it finds
    (none found: CPU processes), so it names no number here.
    """
    options = step.options
    device = str(getattr(cfg, "device", None) or getattr(getattr(cfg, "engine", None), "device", None) or "")
    launch = getattr(cfg, "launch", None)
    count = getattr(cfg, "nproc", None) or getattr(cfg, "gpus", None)
    if launch and count and not str(launch).endswith("-cpu") and device != "cpu":
        key = "gpus" if options.get("gpus") is not None else "nproc"
        return int(count), f"launch {launch} with {key} {count}"
    if device.startswith("cuda"):
        return 1, f"device {device}"
    engine = getattr(cfg, "engine", None)
    if getattr(engine, "name", None) == "vllm" or getattr(cfg, "use_vllm", False):
        return 1, "the vLLM engine"
    return None


# ----------------------------------------------------------------------------- cluster resources


def check_cluster_resources(step: Step, cfg, partitions: dict[str, Partition] | None, found: Findings) -> None:
    """The step's resources against its options and, when the scheduler reported them, its partition."""
    res, here = step.resources, f"step '{step.name}'"
    nodes, gpus = res.get("nodes", 1), res.get("gpus_per_node") or 0
    need = gpus_needed(step, cfg)
    if need and nodes * gpus < need[0]:
        found.problems.append(f"{here}: {need[1]} needs {need[0]} GPU{'s' if need[0] != 1 else ''} but its resources "
                              f"give {nodes * gpus} ({nodes} node{'s' if nodes != 1 else ''} x gpus_per_node "
                              f"{gpus}): set resources.gpus_per_node (--slurm.gpus_per_node=N)")
    part = _partition(res, partitions, here, found)
    if res.get("time") is None:
        limit = "" if part is None else f" ({'none' if part.max_minutes is None else clock_of(part.max_minutes)})"
        found.notes.append(f"{here}: no time given: the partition's time limit applies{limit}")
    if part is None:
        return
    if res.get("time") is not None and part.max_minutes is not None and minutes(res["time"]) > part.max_minutes:
        found.problems.append(f"{here}: time {clock_of(minutes(res['time']))} is over partition {part.name}'s "
                              f"MaxTime {clock_of(part.max_minutes)}")
    if gpus > part.gpus_per_node:
        found.problems.append(f"{here}: gpus_per_node {gpus} but the nodes of partition {part.name} have "
                              f"{part.gpus_per_node} GPUs")
    if res.get("cpus_per_task") and part.cpus_per_node and res["cpus_per_task"] > part.cpus_per_node:
        found.problems.append(f"{here}: cpus_per_task {res['cpus_per_task']} but the nodes of partition "
                              f"{part.name} have {part.cpus_per_node} CPUs")
    if res.get("mem") is not None and part.mem_mib and mem_mib(res["mem"]) > part.mem_mib:
        found.problems.append(f"{here}: mem {res['mem']} but the nodes of partition {part.name} have "
                              f"{part.mem_mib / 1024:.0f}G")


def _partition(res: dict, partitions: dict[str, Partition] | None, here: str, found: Findings) -> Partition | None:
    if not partitions:
        return None
    name = res.get("partition")
    if name is None:
        return next((p for p in partitions.values() if p.default), None)
    for one in str(name).split(","):  # sbatch takes a list; the first known one is checked
        if one in partitions:
            return partitions[one]
    found.problems.append(f"{here}: partition {name} is not one of this cluster's ({', '.join(partitions)})")
    return None
