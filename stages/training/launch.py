"""Multi-process / multi-node launching of a training stage (`rlt distill`, `rlt teach`) through `accelerate launch`.

The presets in `stages/training/presets/*.yaml` are accelerate config files: `ddp`
(plain data parallel, one process per GPU), `zero2`, `zero3` and `zero3-offload`
(DeepSpeed, the `[deepspeed]` extra). Each has a CPU variant (`ddp-cpu`,
`zero2-cpu`, ...: gloo processes in float32) that `--launch NAME` uses when no
GPU is visible; the DeepSpeed ones read their settings from a JSON file beside
them, partitioning every parameter (`stage3_param_persistence_threshold: 0`) so
that small models gather and release weights as large ones do on GPUs. `rlt distill ... --launch zero3 --nproc 8`
(`--gpus` is an alias of `--nproc`) writes the resolved stage config to a
temporary YAML file and re-executes the same stage as (an argv list, never a
shell string):

    accelerate launch --config_file <rlt>/stages/presets/zero3.yaml --num_processes 8 \\
        --main_process_port <free port> -m rltcli distill --config <resolved.yaml>

Multi-node: run the same command on every machine with `launch_args` adding
`--num_machines N --machine_rank R --main_process_ip IP --main_process_port P`
(`--nproc` counts the processes of all machines); see README "Multi-node".
Inside a Slurm step spanning several nodes (`srun rlt distill ... --launch zero3`
in an sbatch script of 2 nodes, or a pipeline step with `resources: {nodes: 2}`)
rlt fills these itself (`slurm_machine_args`): the node count and this node's
rank from `SLURM_STEP_NUM_NODES` / `SLURM_NODEID`, the first host of
`SLURM_STEP_NODELIST` as the main process and a port derived from the job id;
`--nproc` then defaults to one process per GPU of every node.

Launched processes die with their launcher (Linux `PR_SET_PDEATHSIG`), so
killing the launching command stops the whole run and a rerun resumes it.
A graceful stop (SIGTERM or the warning signal, stages/interrupt.py) of the
launching command reaches every rank through a stop file: each saves at the
same optimizer step, the ranks exit 0 and the launching command ends with 130.
The launcher itself ignores the warning signal (Slurm signals every process of
a job, and its default action would kill the launcher mid-step).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import yaml

from stages import interrupt
from stages.artifacts.layout import read_manifest
from stages.config import opt
from stages.errors import Diverged, Reported, UserError

log = logging.getLogger(__name__)
DIVERGED_FILE_ENV = "RLT_DIVERGED_FILE"  # set for launched processes: where a run that diverged says so


@dataclass
class LaunchOptions:
    """The multi-process options of the training stages (`--launch PRESET --nproc N`), declared once."""

    launch: str | None = opt(None, "Preset of a multi-process run: ddp (gloo CPU processes when no GPU is visible), "
                             "zero2, zero3, zero3-offload.", hash=False, flag=True)
    nproc: int | None = opt(None, "Processes for --launch, all machines (default: one per GPU).", hash=False, flag=True)
    gpus: int | None = opt(None, "Alias of --nproc.", hash=False, flag=True)
    launch_args: list[str] = opt(list, "Extra `accelerate launch` arguments (multi-node: --num_machines, "
                                 "--machine_rank, --main_process_ip, --main_process_port).", hash=False)
PRESET_DIR = Path(__file__).resolve().parent / "presets"
DEEPSPEED_PRESETS = ("zero2", "zero3", "zero3-offload")


def preset_names() -> list[str]:
    """Names of the shipped launch presets (file stems of stages/presets/*.yaml)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    """Path of a shipped preset; UserError listing the valid names."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"unknown --launch preset {name!r} (valid: {', '.join(preset_names())})")
    return path


def in_launched_process() -> bool:
    """True inside a process started by accelerate/torchrun (do not launch again)."""
    return "LOCAL_RANK" in os.environ or "ACCELERATE_LAUNCHED" in os.environ


def local_rank() -> int:
    """This process's index on its machine (0 outside a launcher)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def rank() -> int:
    """Global rank of this process (0 outside a launcher)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """Number of training processes of this run (1 outside a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def per_step(per_device: int, grad_accum: int) -> int:
    """Rows (completions) per optimizer step over all processes: per device x accumulation x processes."""
    return per_device * grad_accum * world_size()


def processes(nproc: int | None, gpus: int | None = None) -> int:
    """Processes of a launch: `nproc`, or its alias `gpus`; default one per visible GPU (1 without) of every
    node of the Slurm step it runs in."""
    if nproc is not None and gpus is not None and nproc != gpus:
        raise UserError(f"--nproc {nproc} and its alias --gpus {gpus} disagree; give one of them")
    n = nproc if nproc is not None else gpus
    if n is None:
        import torch

        n = max(torch.cuda.device_count(), 1) * slurm_nodes()
    if n < 1:
        raise UserError(f"--nproc must be at least 1, got {n}")
    return n


def check_launch(name: str, nproc: int) -> Path:
    """Validate a launch request before any process starts; returns the preset file to use.

    Without a visible CUDA GPU a preset runs as its CPU variant (`ddp` -> `ddp-cpu`, `zero3` ->
    `zero3-cpu`: gloo processes in float32), which proves the distributed control flow, not speed.
    """
    path = preset_path(name)
    if nproc < 1:
        raise UserError(f"--nproc must be at least 1, got {nproc}")
    if importlib.util.find_spec("accelerate") is None:
        raise UserError("--launch needs accelerate (pip install accelerate)")
    if name.removesuffix("-cpu") in DEEPSPEED_PRESETS and importlib.util.find_spec("deepspeed") is None:
        raise UserError(f"--launch {name} needs DeepSpeed: pip install 'rlt[deepspeed]'")
    import torch

    if name.endswith("-cpu") or torch.cuda.is_available():
        return path
    log.info("no CUDA GPU visible: --launch %s runs %d CPU processes (gloo backend, float32; "
             "a check of the distributed run, not of its speed)", name, nproc)
    return preset_path(f"{name}-cpu")


def materialize(preset: Path, tmp: Path) -> Path:
    """The preset file accelerate reads: `preset` itself, or a copy in `tmp` whose DeepSpeed config file
    (named relative to the preset, as the CPU presets do) is an absolute path, whatever the working directory."""
    conf = yaml.safe_load(preset.read_text())
    ds = conf.get("deepspeed_config") or {}
    name = ds.get("deepspeed_config_file")
    if not name or Path(name).is_absolute():
        return preset
    ds["deepspeed_config_file"] = str(preset.parent / name)
    out = tmp / preset.name
    out.write_text(yaml.safe_dump(conf, sort_keys=False))
    return out


def build_cpu_ops() -> None:
    """Compile DeepSpeed's CPU communication op in the launching process, before any rank starts.

    DeepSpeed on CPU compiles it at first use (about 2 minutes, cached in torch's extension folder,
    `~/.cache/torch_extensions`), under a lock file of torch's. A build killed midway leaves that file
    behind, and every later start then waits for it forever. rlt builds under an advisory lock of its
    own (released by the kernel whatever ends the process), so a torch lock found while holding it is
    such a leftover and is removed. Ranks then load the compiled op without building.
    """
    import fcntl

    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder
    from torch.utils.cpp_extension import _get_build_directory

    builder = ShareMemCommBuilder()
    if not builder.is_compatible():
        return  # DeepSpeed falls back to plain gloo
    folder = Path(_get_build_directory(builder.NAME, verbose=False))
    with open(folder / "rlt-build.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        if (folder / "lock").exists():
            log.warning("removing %s, left by a DeepSpeed op build that was killed", folder / "lock")
            (folder / "lock").unlink()
        log.info("DeepSpeed on CPU: compiling its communication op if needed (about 2 minutes, once)")
        with contextlib.redirect_stdout(sys.stderr):  # DeepSpeed prints; stdout is the command's result
            builder.load(verbose=False)


def free_port() -> int:
    """A free TCP port on the loopback interface (the rendezvous of a one-machine launch)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accelerate_argv(preset: str | Path, nproc: int, stage_argv: list[str], extra: list[str] | None = None) -> list[str]:
    """The `accelerate launch` command line (argv list) running `python -m <stage_argv>`.

    A one-machine launch gets a free `--main_process_port` unless `extra` sets one, so two
    runs on one machine do not collide on accelerate's default port.
    """
    extra = list(extra or [])
    if "--main_process_port" not in extra and "--num_machines" not in extra:
        extra += ["--main_process_port", str(free_port())]
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(preset),
            "--num_processes", str(nproc), *extra, "-m", *stage_argv]


def launch_env(preset: Path) -> dict[str, str]:
    """Environment of the launched processes: CPU presets hide GPUs and default to one thread each."""
    env = dict(os.environ)
    if preset.stem.endswith("-cpu"):
        env["CUDA_VISIBLE_DEVICES"] = ""
        env.setdefault("OMP_NUM_THREADS", "1")
        env["DS_ACCELERATOR"] = "cpu"
    return env


def slurm_nodes() -> int:
    """Nodes of the Slurm step this process runs in (`srun`), 1 outside one (a batch script itself is no step)."""
    try:
        return max(int(os.environ.get("SLURM_STEP_NUM_NODES") or 1), 1)
    except ValueError:
        return 1


def first_host(nodelist: str) -> str:
    """The first host of a Slurm host list: `gpu[01-04,07],cpu3` -> `gpu01`, `r[1-2]-n[3-4]` -> `r1-n3`."""
    depth, head = 0, ""
    for ch in nodelist.strip():
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            break
        head += ch
    return re.sub(r"\[([^\]]*)\]", lambda m: re.split(r"[-,]", m.group(1))[0], head)


def slurm_machine_args(extra: list[str] | None = None) -> list[str]:
    """accelerate's multi-node arguments from the Slurm step this process runs in ([] on one node, or when
    `extra` sets --num_machines): every node computes the same main host and port without talking."""
    extra = list(extra or [])
    nodes = slurm_nodes()
    if nodes <= 1 or "--num_machines" in extra:
        return []
    hosts = os.environ.get("SLURM_STEP_NODELIST") or os.environ.get("SLURM_JOB_NODELIST") or ""
    if not hosts or "SLURM_NODEID" not in os.environ:
        raise UserError("a multi-node Slurm step without SLURM_STEP_NODELIST / SLURM_NODEID: "
                        "give launch_args (--num_machines, --machine_rank, --main_process_ip) yourself")
    port = 20000 + int(os.environ.get("SLURM_JOB_ID", "0") or 0) % 20000
    args = ["--num_machines", str(nodes), "--machine_rank", os.environ["SLURM_NODEID"],
            "--main_process_ip", first_host(hosts)]
    return args + ([] if "--main_process_port" in extra else ["--main_process_port", str(port)])


def die_with_parent(parent: int | None = None) -> None:
    """Get SIGKILL when the process that started this one dies (Linux `PR_SET_PDEATHSIG`), however it dies:
    a `kill -9` or the OOM killer leaves no handler to run. If it died before this was set (this process
    now has another parent than `parent`, or init's when `parent` is None), exit now. A no-op where prctl
    is unavailable."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        log.debug("prctl unavailable: launched processes will not follow their launcher's death")
        return
    if os.getppid() != parent if parent is not None else os.getppid() == 1:
        os._exit(1)


def _launcher_signals(parent: int) -> None:
    """In the launcher (between fork and exec): die with the rlt command `parent`; ignore the warning
    signal and Ctrl-C; the ranks stop at their step boundary through the stop file (a Ctrl-C reaches the
    launching process, which relays it)."""
    die_with_parent(parent)
    signal.signal(interrupt.WARNING, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_launcher(argv: list[str], env: dict[str, str]) -> int:
    """Run the accelerate launcher to its end; its exit code (the one seam tests replace)."""
    parent = os.getpid()
    # The ranks' output (DeepSpeed and accelerate print to stdout) goes to stderr: stdout is the
    # launching command's own result (`--json`).
    return subprocess.run(argv, check=False, env=env, stdout=2,
                          preexec_fn=lambda: _launcher_signals(parent)).returncode


def relaunch(command: str, cfg_dict: dict, preset: str, nproc: int, extra: list[str] | None = None) -> int:
    """Write the resolved config to a temp YAML and run `rlt <command> --config it` under accelerate.

    A stop asked meanwhile (SIGTERM, the warning signal) reaches the ranks through a stop file; they save
    and exit, and then this raises interrupt.GracefulStop.
    """
    path = check_launch(preset, nproc)
    extra = list(extra or []) + slurm_machine_args(extra)
    if path.stem in {f"{name}-cpu" for name in DEEPSPEED_PRESETS}:  # DeepSpeed on CPU processes
        build_cpu_ops()
    with tempfile.TemporaryDirectory(prefix="rlt-launch-") as tmp:
        cfg_file, stop_file = Path(tmp) / "config.yaml", Path(tmp) / "stop"
        cfg_file.write_text(yaml.safe_dump(cfg_dict, sort_keys=False, allow_unicode=True))
        stage_argv = ["rltcli", *command.split(), "--config", str(cfg_file)]
        argv = accelerate_argv(materialize(path, Path(tmp)), nproc, stage_argv, extra)
        log.debug("launching: %s", " ".join(argv))  # temporary paths: for --verbose only
        diverged = Path(tmp) / "diverged"  # a run that diverged leaves its one line here (stopping.py)
        env = {**launch_env(path), interrupt.STOP_FILE_ENV: str(stop_file), DIVERGED_FILE_ENV: str(diverged),
               "PET_SIGNALS_TO_HANDLE": "SIGTERM,SIGHUP,SIGQUIT"}  # torchrun: leave SIGINT ignored
        # The launcher ignores the warning signal and Ctrl-C (preexec_fn: set between fork and exec): a first
        # Ctrl-C is relayed through the stop file; on a second one subprocess.run kills the launcher, and the
        # ranks die with it: the rerun resumes from the last checkpoint.
        with interrupt.relay(stop_file):
            code = run_launcher(argv, env)
        if diverged.is_file():
            raise Diverged(diverged.read_text())
    interrupt.check("every rank saved its checkpoint")
    if code == 2:  # rank 0 of the launched run printed the one line saying why
        raise Reported("the launched run refused its input (see its message above)")
    if code != 0:
        raise RuntimeError(f"launched run exited with code {code} (see its log above)")
    out = cfg_dict.get("out")
    if out and os.environ.get("SLURM_NODEID", "0") == "0" and Path(out).is_dir() and read_manifest(Path(out)) is None:
        raise interrupt.GracefulStop("the launched run stopped before finishing (its ranks were asked to stop); "
                                     "rerun the same command to resume")
    return code


def die_with_launcher() -> None:
    """In a launched process: get SIGKILL when the launcher dies (torchrun starts workers in new sessions,
    so killing the launching command's process group would otherwise leave them training). The launcher
    itself dies with the rlt command that started it (`run_launcher`): a `kill -9` of that command alone
    ends the launcher, then every rank. Linux only."""
    if in_launched_process():
        die_with_parent()


def run_rank(main: Callable[[], object]) -> NoReturn:
    """Run a launched rank's command (`python -m rltcli ...` under accelerate), then end the process at once
    with its exit code, logs and output flushed, without the interpreter's teardown: that teardown destroys
    torch's, Gloo's and DeepSpeed's C++ objects while their worker threads may still run, and now and then
    aborts a rank whose work is done and written (SIGABRT, "terminate called without an active exception");
    the launcher then reports a failed run and prints a traceback over the command's one line."""
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
        if not isinstance(e.code, (int, type(None))):
            sys.stderr.write(f"{e.code}\n")
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001 - printed as Python would, then the same exit code
        traceback.print_exc()
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
