"""The plan's memory estimate against the peak RSS a CPU run measures (float32, one process), within 25 %."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stages.pipelines import estimate as E
from stages.pipelines.plan import Step

MEASURE = ("import atexit, resource, runpy, sys; out = sys.argv.pop(1); "
           "atexit.register(lambda: open(out, 'w').write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)));"
           "sys.argv[0] = 'rlt'; runpy.run_module('rltcli', run_name='__main__')")


def peak_rss_gib(args: list[str], tmp: Path) -> float:
    """Peak RSS of `rlt ARGS` in a fresh process (Linux reports KiB)."""
    out = tmp / "rss.txt"
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(out), *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(out.read_text()) / 2 ** 20


@pytest.mark.parametrize("command, options", [
    ("distill", {"model": "MODEL", "data": "DATA", "preset": "tiny", "max_steps": 3}),
    ("teach", {"teacher": "MODEL", "student": "MODEL", "data": "DATA", "preset": "tiny", "max_steps": 1}),
])
def test_memory_estimate_matches_the_measured_peak(tiny_teacher, synth_train, tmp_path, command, options):
    options = {k: {"MODEL": str(tiny_teacher), "DATA": str(synth_train)}.get(v, v) for k, v in options.items()}
    step = Step(command, command, options, tmp_path / "out")
    est = E.step_estimate(step, E.Resolver([step], E.load_table()), "H100", device="cpu")
    flags = [f"{k}={v}" for k, v in options.items()] + [f"out={tmp_path / 'out'}", "device=cpu"]
    measured = peak_rss_gib([command, *flags], tmp_path)
    assert abs(est["memory"]["per_device_gib"] - measured) / measured <= 0.25, (est["memory"], measured)
