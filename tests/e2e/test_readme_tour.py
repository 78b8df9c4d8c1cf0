"""The README's tour, run as written, in order, at small sizes: it fails when the README drifts from the CLI.

The commands are read from the README's ```sh block under "## A tour" and run by bash in a fresh directory
with `rlt` on PATH; only the sizes are made small (each size below must be in the tour).
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.conftest import ROOT, rlt_on_path

# (what the tour says, what the test runs instead): data sizes, training steps, token limits
SMALL = [(r"--n 4000\b", "--n 40"), (r"--n 400\b", "--n 8"), (r"--max-steps \d+", "--max-steps 2"),
         (r"--max-new-tokens 160\b", "--max-new-tokens 24")]


def tour() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text[text.index("## A tour"):], re.DOTALL).group(1)
    for pattern, small in SMALL:
        block, n = re.subn(pattern, small, block, flags=re.MULTILINE)
        assert n, f"the tour no longer says {pattern!r}: update SMALL"
    return block


@pytest.mark.slow
def test_the_readme_tour_runs(tmp_path):
    env = rlt_on_path(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(["bash", "-e", "-x", "-c", tour()], cwd=work, env=env, capture_output=True, text=True,
                          timeout=1200, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads((work / "runs/eval/.rlt/summary.json").read_text())
    assert set(summary["models"]) == {"runs/student", "runs/student-solution"}
    assert (work / "runs/scored/.rlt/manifest.json").is_file()
    report = (work / "runs/report/report.md").read_text()
    assert "| student - student-solution |" in report  # RL minus baseline, as the README says
    assert "student-solution - student" not in report and "student - student-solution" in proc.stdout
    assert "runs/eval: complete eval artifact" in " ".join(proc.stdout.split())
    assert not (work / "runs/teach/checkpoints").exists()  # a finished teach keeps the model, not its checkpoints
