"""The Slurm executor (`rlt run NAME --executor slurm`): each step that is not complete becomes a Slurm job.

Jobs are submitted with submitit (its sbatch scripts, arrays, dependencies and log files); each
runs `rlt run --job SPEC.json` - the step's resolved config, the same skip and resume rules as a
local run - under a small wrapper (`job_main`). What each step asks for:

    resources key    sbatch                       notes
    nodes            --nodes, --ntasks-per-node=1 one launcher per node (distill/teach with launch)
    gpus_per_node    --gpus-per-node
    cpus_per_task    --cpus-per-task
    mem              --mem                        with its unit (64G, 500M; 0: the node's memory)
    time             --time                       minutes, HH:MM:SS or D-HH:MM:SS (none: no --time, the
                                                  partition's limit applies, never submitit's 5 minutes)
    partition, account, qos, constraint           --partition, --account, --qos, --constraint

and always `--requeue`, `--signal=USR2@90` (the warning before the time limit),
`--kill-on-invalid-dep=yes` and `--dependency=afterok:<the jobs of the steps it reads>`. A step
with `shards: N` is one job array of N tasks (split into several arrays above the cluster's
MaxArraySize) and a merge job after them; dependants wait for the merge.

Preemption and time limits: the stage in the job stops gracefully on SIGTERM (scancel, `scontrol
requeue`, a preemption) and on the warning signal (stages/interrupt.py); on the warning the
wrapper requeues the job itself (`scontrol requeue`), and the rerun resumes from what was saved.
submitit's own handlers are replaced: it ignores SIGTERM (the job would be killed after KillWait
with nothing saved) and checkpoints from inside a signal handler (not at a step boundary).

Records: `<runs>/<pipeline>/.pipeline/slurm.json` (step -> its jobs, ids, logs); logs in
`.pipeline/logs/<step>/<jobid>_0_log.err|out`, job specs in `.pipeline/jobs/`. Job states come from
squeue (no accounting database is needed) and from the outputs themselves. Re-running `rlt run
--executor slurm` while a step's jobs are queued or running does not submit them again.

No secret is written: job specs hold resolved configs (which name environment variables, never
their values), submitit pickles only `job_main` and two paths; jobs read tokens from the environment
they inherit, as a local run does (Slurm's `--export=ALL`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from stages import interrupt
from stages.errors import UserError
from stages.pipelines.executors.base import Executor, record
from stages.pipelines.jobs import MERGE, Job, complete, jobs_of
from stages.pipelines.plan import Step, build_config, describe_resources, minutes, why_run
from stages.pipelines.preflight import Findings, Partition, check_cluster_resources

log = logging.getLogger("stages.pipelines.run")
BOOK = "slurm.json"
SIGNAL_DELAY = 90  # seconds between the warning signal and the time limit
MAX_REQUEUES = 20  # a job that meets its time limit this often is left to fail: give the step more time
LIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING",
        "SUSPENDED", "SIGNALING", "STAGE_OUT", "STOPPED"}
DEFAULT_MAX_ARRAY = 1001


def _which(cmd: str) -> str | None:
    return shutil.which(cmd)


def _run(argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)


def max_array_size() -> int:
    """The cluster's MaxArraySize (indices 0..MaxArraySize-1): the most tasks one array job may have."""
    try:
        out = _run(["scontrol", "show", "config"]).stdout
    except (OSError, subprocess.TimeoutExpired):
        return DEFAULT_MAX_ARRAY
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "MaxArraySize" and value.strip().isdigit():
            return int(value.strip())
    return DEFAULT_MAX_ARRAY


def chunks(items: list, size: int) -> list[list]:
    """`items` in consecutive chunks of at most `size` (one array job each)."""
    size = max(int(size), 1)
    return [items[i:i + size] for i in range(0, len(items), size)]


def partitions() -> dict[str, Partition]:
    """The cluster's partitions as sinfo reports them (time limit, GPUs, CPUs and memory of its largest node).

    Raises UserError (one line) when Slurm does not answer: no sinfo, a controller that is down or slow.
    """
    if _which("sinfo") is None:
        raise UserError("Slurm does not answer here: no sinfo on PATH (run on a cluster's login node)")
    try:
        proc = _run(["sinfo", "-h", "-o", "%P|%l|%G|%c|%m"], timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UserError(f"Slurm does not answer: sinfo failed ({type(e).__name__})") from None
    if proc.returncode != 0:
        text = " ".join((proc.stderr or proc.stdout).split())[-300:]
        raise UserError(f"Slurm does not answer: sinfo exited {proc.returncode}: {text}")
    found: dict[str, Partition] = {}
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 5:
            continue
        name, limit, gres, cpus, mem = parts
        default, name = name.endswith("*"), name.rstrip("*")
        p = found.setdefault(name, Partition(name, _limit_minutes(limit), default))
        p.gpus_per_node = max(p.gpus_per_node, _gres_gpus(gres))
        p.cpus_per_node = max(p.cpus_per_node, int(cpus.rstrip("+")) if cpus.rstrip("+").isdigit() else 0)
        p.mem_mib = max(p.mem_mib, float(mem.rstrip("+")) if mem.rstrip("+").isdigit() else 0)
    return found


def _limit_minutes(text: str) -> int | None:
    """sinfo's %l (`infinite`, `2-00:00:00`, `4:00:00`, `30:00`) in minutes; None for no limit."""
    text = text.strip()
    if text.lower() in ("infinite", "unlimited", "n/a", ""):
        return None
    try:
        return minutes(text)
    except UserError:
        return None


def _gres_gpus(gres: str) -> int:
    """GPUs per node in sinfo's %G: `gpu:8`, `gpu:h100:8(S:0-1)`, `gpu:a100:4,shard:8`; 0 for `(null)`."""
    total = 0
    for item in gres.split(","):
        fields = item.split("(")[0].split(":")
        if fields[0] == "gpu" and fields[-1].isdigit():
            total += int(fields[-1])
    return total


def queue_states(ids: list[str]) -> dict[str, tuple[str, str]]:
    """job id -> (state, reason) for the jobs squeue still knows (finished ones for MinJobAge); arrays by task.

    Raises UserError when squeue does not answer (a busy controller's "Socket timed out", a timeout): read
    as "no job left", every recorded job would count as ended and a rerun would submit steps whose jobs
    still run. squeue's refusal of ids it no longer knows ("Invalid job id specified") is an answer: none left.
    """
    base = sorted({i.split("_")[0] for i in ids if i})
    if not base or _which("squeue") is None:
        return {}
    try:
        proc = _run(["squeue", "-h", "-r", "--states=all", "-o", "%i|%T|%r", "-j", ",".join(base)])
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UserError(f"squeue did not answer ({type(e).__name__}): cannot tell which submitted jobs still "
                        "run; try again") from None
    if proc.returncode != 0 and "Invalid job id" not in proc.stderr:
        said = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise UserError(f"squeue failed ({said}): cannot tell which submitted jobs still run; try again")
    states = {}
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            states[parts[0]] = (parts[1], parts[2])
    return states


# Lines the scheduler and submitit write into a job's stderr log beside rlt's own (srun's "error: ... CANCELLED").
SCHEDULER_LINE = re.compile(r"(srun|salloc|slurmstepd(-\S+)?|submitit)\b")
CANCELLED_LINE = re.compile(r"\*\*\* JOB \S+ ON \S+ CANCELLED AT")


def _log_lines(path: str | None) -> list[str]:
    """The last 16 KiB of a job's log as lines (a progress bar's carriage returns split it too)."""
    if not path or not Path(path).is_file():
        return []
    try:
        with open(path, "rb") as f:
            f.seek(max(0, Path(path).stat().st_size - 16384))
            return [line.strip() for line in f.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return []


def last_error_line(path: str | None) -> str | None:
    """The last line rlt wrote to a job's stderr log: its `rlt:` error, or its progress line where a stop cut it
    short; not the scheduler's or submitit's (`SCHEDULER_LINE`)."""
    for text in reversed(_log_lines(path)):
        if not SCHEDULER_LINE.match(text):
            return text[:300]
    return None


def cancelled_in_log(path: str | None) -> bool:
    """Does a job's stderr log say Slurm cancelled it (scancel: slurmstepd's `*** JOB N ON host CANCELLED AT`)?"""
    return any(CANCELLED_LINE.search(text) for text in _log_lines(path))


@contextmanager
def _locked(path: Path):
    """One submitting `rlt run` per pipeline folder at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class SlurmExecutor(Executor):
    name = "slurm"

    # -- records
    @property
    def book_path(self) -> Path:
        return self.ctx.meta / BOOK

    def book(self) -> dict:
        try:
            return json.loads(self.book_path.read_text())
        except (OSError, ValueError):
            return {}

    def save(self, book: dict) -> None:
        tmp = self.book_path.with_name(f".{BOOK}.tmp")
        tmp.write_text(json.dumps(book, indent=1))
        os.replace(tmp, self.book_path)

    # -- interface
    def check(self) -> None:
        if self.ctx.plan_only:
            return
        if _which("sbatch") is None:
            raise UserError("--executor slurm needs Slurm's sbatch on PATH and there is none here: run rlt on a "
                            "cluster's login node, or use --executor local")
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise UserError("--executor slurm needs submitit: pip install 'submitit>=1.5,<2'") from None

    def check_resources(self, steps: list[Step], found: Findings) -> None:
        """The scheduler answers, and each step's resources fit its options and its partition."""
        try:
            known = partitions()
        except UserError as e:
            found.problems.append(str(e))
            known = None
        for step in steps:
            check_cluster_resources(step, build_config(step), known, found)

    def job_states(self) -> dict[str, dict]:
        book = self.book()
        if not book:
            return {}
        states = queue_states([j["id"] for e in book.values() for j in e.get("jobs", [])])
        return {step: self._state(entry, states) for step, entry in book.items()}

    def _state(self, entry: dict, states: dict) -> dict:
        """What the recorded jobs of one step say: live (pending/running) or how the first one that failed ended."""
        jobs = entry.get("jobs", [])
        known = [(j, states.get(j["id"])) for j in jobs]
        live = [(j, s) for j, s in known if s and s[0] in LIVE]
        final = ",".join(entry.get("final", []))
        if live:
            running = [(j, s) for j, s in live if s[0] in ("RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING")]
            j, s = (running or live)[0]
            what = "running" if running else "pending"
            detail = f"job {j['id']}" + (f" ({s[1]})" if s[1] and s[1] != "None" else "")
            if len(jobs) > 1:
                done = sum(1 for _, st in known if st and st[0] == "COMPLETED")
                detail += f"; {done} of {len(jobs)} jobs done"
            return {"live": True, "state": what, "detail": detail, "job": final or j["id"], "log": j.get("log")}
        bad = [(j, s) for j, s in known if s and s[0] != "COMPLETED"] or [(j, s) for j, s in known if not s]
        j, s = bad[0] if bad else (jobs[-1] if jobs else {}, None)
        if s and s[1] == "DependencyNeverSatisfied":
            detail = f"job {j.get('id')} cancelled: a step it depends on failed"
        else:
            ended = f"{s[0].lower()}" if s else "cancelled" if cancelled_in_log(j.get("log")) else \
                "ended (no longer in squeue)"
            error = last_error_line(j.get("log"))
            detail = f"job {j.get('id')} {ended}; log {j.get('log')}" + (f": {error}" if error else "")
        return {"live": False, "state": "failed", "detail": detail, "job": j.get("id"), "log": j.get("log")}

    def execute(self) -> list[dict]:
        if self.ctx.plan_only:
            return self._plan()
        with _locked(self.ctx.meta / "submit.lock"):
            return self._submit_all()

    def _plan(self) -> list[dict]:
        try:
            states = self.job_states() if _which("squeue") else {}
        except UserError as e:  # the plan is still shown; a submission would refuse
            log.warning("%s; the plan below does not know which steps' jobs still run", e)
            states = {}
        inflight = {s: f"{i['state']}: {i['detail']}" for s, i in states.items() if i.get("live")}
        records = self.plan(inflight, resources=True)
        for r in records:
            if r["action"] in ("run", "resume"):  # the reason says whether its job resumes
                r["action"] = "submit"
        return records

    def _submit_all(self) -> list[dict]:
        book = self.book()
        original = json.loads(json.dumps(book))
        states = queue_states([j["id"] for e in book.values() for j in e.get("jobs", [])])
        inflight: dict[str, list[str]] = {}  # step -> job ids its dependants wait for
        submitted: list[str] = []
        records = []
        stamp = time.strftime("%Y%m%d-%H%M%S")
        try:
            for step in self.ctx.steps:
                entry = book.get(step.name)
                info = self._state(entry, states) if entry else {}
                if info.get("live"):
                    inflight[step.name] = entry.get("final", [])
                    records.append(record(step, info["state"], f"{info['detail']} (already submitted)",
                                          job=info.get("job"), log=info.get("log")))
                    continue
                cfg = build_config(step)
                verdict = why_run(step, cfg, set(inflight), self.ctx.forced, self.ctx.by_name)
                reason, replace = verdict.reason, verdict.replace
                if verdict.action == "skip":
                    records.append(record(step, "skip", "up to date"))
                    continue
                upstream = [n for n in step.needs if n in inflight]
                jobs = jobs_of(step, cfg, replace)
                if not replace and not upstream:  # shards already complete are not run again
                    jobs = [j for j in jobs if j.command == MERGE or not j.shard or not complete(j)]
                deps = [i for n in upstream for i in inflight[n]]
                entry = self._submit_step(step, jobs, deps, stamp)
                submitted += [j["id"] for j in entry["jobs"]]
                book[step.name] = entry
                self.save(book)
                inflight[step.name] = entry["final"]
                first = entry["jobs"][-1]
                records.append(record(step, "submitted", reason, job=",".join(entry["final"]), log=first["log"],
                                      resources=describe_resources(step.resources, step.shards)))
                log.info("%s: submitted (job %s, %s): %s", step.name, ",".join(entry["final"]), reason,
                         describe_resources(step.resources, step.shards))
        except BaseException:
            if submitted:  # nothing half-submitted is left behind
                _run(["scancel", *sorted({i.split("_")[0] for i in submitted})])
                self.save(original)
                log.warning("cancelled the jobs this run had submitted: %s", ", ".join(submitted))
            raise
        return records

    # -- submission
    def _params(self, step: Step, deps: list[str], merge: bool = False) -> dict:
        res = dict(step.resources)
        if merge:  # reading and writing Parquet: one CPU, no GPU, the step's time and queue
            res = {k: v for k, v in res.items() if k in ("time", "partition", "account", "qos")}
        extra = {"requeue": True, "kill-on-invalid-dep": "yes"}
        if deps:
            extra["dependency"] = "afterok:" + ":".join(sorted({d.split("_")[0] for d in deps}))
        params = {"job_name": f"rlt-{self.ctx.name}-{step.name}" + ("-merge" if merge else ""),
                  "nodes": res.get("nodes", 1), "ntasks_per_node": 1, "signal_delay_s": SIGNAL_DELAY,
                  "additional_parameters": extra,
                  "time": minutes(res["time"]) if res.get("time") is not None else None,
                  "gpus_per_node": res.get("gpus_per_node") or None, "cpus_per_task": res.get("cpus_per_task"),
                  "mem": res.get("mem"), "partition": res.get("partition"), "account": res.get("account"),
                  "qos": res.get("qos"), "constraint": res.get("constraint")}
        # `time` stays even when None: submitit would otherwise ask for its own default of 5 minutes, and
        # without --time Slurm applies the partition's limit (what the plan says).
        return {k: v for k, v in params.items() if v is not None or k == "time"}

    def _spec(self, job: Job, stamp: str) -> str:
        path = self.ctx.meta / "jobs" / stamp / f"{job.key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(job.to_json())
        return str(path.resolve())

    def _submit_step(self, step: Step, jobs: list[Job], deps: list[str], stamp: str) -> dict:
        import submitit

        folder = self.ctx.meta / "logs" / step.name
        cwd = str(Path.cwd())
        entry = {"submitted": time.strftime("%Y-%m-%dT%H:%M:%S"), "jobs": [], "final": []}

        def executor(params: dict):
            ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=0)
            ex.update_parameters(**params)
            return ex

        def note(job: Job, sub) -> None:
            entry["jobs"].append({"key": job.key, "id": str(sub.job_id), "log": str(sub.paths.stderr)})

        try:
            shards = [j for j in jobs if j.shard]
            if shards:
                array_ids = []
                for chunk in chunks(shards, max_array_size()):
                    ex = executor({**self._params(step, deps), "array_parallelism": len(chunk)})
                    with ex.batch():
                        subs = [ex.submit(job_main, self._spec(j, stamp), cwd) for j in chunk]
                    for j, sub in zip(chunk, subs):
                        note(j, sub)
                    array_ids.append(str(subs[0].job_id).split("_")[0])
                merge = next(j for j in jobs if j.command == MERGE)
                sub = executor(self._params(step, array_ids or deps, merge=True)).submit(
                    job_main, self._spec(merge, stamp), cwd)
                note(merge, sub)
                entry["final"] = [str(sub.job_id)]
            else:
                (job,) = [j for j in jobs if j.command != MERGE] or jobs
                sub = executor(self._params(step, deps)).submit(job_main, self._spec(job, stamp), cwd)
                note(job, sub)
                entry["final"] = [str(sub.job_id)]
        except Exception as e:  # sbatch refused it (an unknown partition, account, ...)
            if type(e).__name__ not in ("FailedJobError", "FailedSubmissionError", "CalledProcessError"):
                raise
            text = " ".join(str(e).split())
            raise UserError(f"step '{step.name}': sbatch refused the job: {text[-400:]}") from None
        finally:
            for f in folder.glob("*.pkl"):  # submitit's pickles of jobs sbatch never took
                if not f.name.split("_")[0].isdigit():
                    f.unlink(missing_ok=True)
        return entry


# ----------------------------------------------------------------------------- in the job


def job_main(spec: str, cwd: str) -> str:
    """What each Slurm job runs (pickled by submitit by reference): `rlt run --job SPEC` in a child process.

    Slurm signals every process of the job, so the child gets SIGTERM and the warning signal itself and
    stops gracefully; this wrapper notes which came and, for the warning (a time limit ahead), requeues
    the job so that it resumes (SIGTERM needs nothing: Slurm requeues a preempted or `scontrol requeue`d job
    itself, and a cancelled one is meant to end). Any other failure ends the job with the child's exit code, its last line
    of error the last line of the log.
    """
    asked: list[int] = []
    for s in interrupt.SIGNALS:
        signal.signal(s, lambda signum, frame: asked.append(signum))
    argv = [sys.executable, "-m", "rltcli", "run", "--job", spec]
    with subprocess.Popen(argv, cwd=cwd) as proc:
        code = proc.wait()
    if code == 0:
        return "done"
    job_id = os.environ.get("SLURM_JOB_ID", "")
    restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
    # The warning (a time limit ahead) requeues the job whatever the child's exit: a helper process that
    # died of the signal (vLLM's engine core) may have ended the batch in flight; what was written before is kept.
    warned = interrupt.WARNING in asked and signal.SIGTERM not in asked
    if warned and os.environ.get("SLURM_PROCID", "0") == "0" and job_id:
        if restarts >= MAX_REQUEUES:
            sys.stderr.write(f"rlt: job {job_id} met its time limit {restarts + 1} times: not requeued again; "
                             "give the step more time (resources.time)\n")
        else:
            sys.stderr.write(f"rlt: time limit ahead: job {job_id} requeued (restart {restarts + 1}); "
                             "it resumes where it stopped\n")
            sys.stderr.flush()
            subprocess.run(["scontrol", "requeue", job_id], check=False)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if 0 < code < 256 else 1)
