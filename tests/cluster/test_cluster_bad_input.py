"""Bad input to a cluster run: one line, exit 2, before anything is submitted (nothing queued, nothing written)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.cluster.conftest import rlt

STEPS = """
{name}:
  steps:
    data: {{command: data synth, options: {{n: 8}}}}
    step: {{command: {command}, options: {options}{extra}}}
"""
TRAIN = "{model: MODEL, data: '${data}', preset: tiny, max_steps: 2}"
GENERATE = "{teacher: MODEL, data: '${data}', max_new_tokens: 4}"
CASES = [  # (name, step command, its options, step keys, extra CLI arguments, what the one line says)
    ("bad-resource", "distill", TRAIN, ", resources: {gpus: 8}", [], "resources: unknown key 'gpus'"),
    ("bad-slurm-key", "distill", TRAIN, "", ["slurm.gpu=1"], "unknown key 'slurm.gpu'"),
    ("bad-time", "distill", TRAIN, ", resources: {time: soon}", [], "time must be minutes or a Slurm time"),
    ("no-sbatch", "distill", TRAIN, "", ["NO_SBATCH"], "needs Slurm's sbatch on PATH"),
    ("shards-distill", "distill", TRAIN, ", shards: 2", [], "'shards' needs a command that shards"),
    ("nodes-generate", "generate", GENERATE, ", resources: {nodes: 2}", [],
     "resources.nodes 2 needs a command that launches one process per node"),
    ("nodes-no-launch", "distill", TRAIN, ", resources: {nodes: 2}", [], "needs the 'launch' option"),
]


def queued(name: str) -> list[str]:
    if shutil.which("squeue") is None:
        return []
    out = subprocess.run(["squeue", "-h", "--states=all", "-o", "%j"], check=False, capture_output=True,
                         text=True).stdout
    return [line for line in out.split() if line.startswith(f"rlt-{name}-")]


@pytest.mark.parametrize("name, command, options, extra, args, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_cluster_input_is_one_line_and_submits_nothing(tiny_teacher, tmp_path, name, command, options, extra,
                                                           args, fragment):
    f, runs = tmp_path / "p.yaml", tmp_path / "runs"
    f.write_text(STEPS.format(name=name, command=command, options=options.replace("MODEL", str(tiny_teacher)),
                              extra=extra))
    env = {}
    if "NO_SBATCH" in args:
        (tmp_path / "bin").mkdir()
        env, args = {"PATH": str(tmp_path / "bin")}, []  # rlt itself runs by its absolute interpreter path
    proc = rlt("run", name, "--file", f, "--runs", runs, "--executor", "slurm", *args, env=env)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("rlt: error: "), proc.stderr
    assert fragment in lines[0], lines[0]
    if name not in ("bad-slurm-key", "no-sbatch"):
        assert f"pipeline '{name}', step 'step'" in lines[0]  # the error names the pipeline and the step
    assert not runs.exists()  # nothing written, no job spec, no record
    assert not queued(name)  # nothing submitted
