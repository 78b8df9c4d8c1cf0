"""`rlt run paper --smoke` on this machine's CPU: the paper's whole topology (imports, decontamination, a
ZeRO-3 warm-up, RL, sharded explanations and evals with their merges) at toy sizes, every step complete."""

from __future__ import annotations

import json

import pytest

from stages.artifacts.layout import manifest_path
from stages.pipelines import plan as PL
from tests.conftest import rlt


@pytest.mark.slow
def test_the_paper_pipeline_runs_end_to_end_at_toy_sizes(tmp_path):
    runs = tmp_path / "runs"
    proc = rlt("run", "paper", "--smoke", "--runs", runs, "--json", timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = json.loads(proc.stdout.strip().splitlines()[-1])["steps"]  # the run's JSON is its last line
    paper = [s.name for s in PL.parse("paper", PL.read_file(PL.SHIPPED)["paper"], runs)]
    assert [r["step"] for r in records] == ["smoke-model", *paper]  # the same steps, in order
    assert all(r["action"] == "run" for r in records)
    out = runs / "smoke" / "paper"
    for name in paper:
        assert manifest_path(out / name).is_file(), name
    teach = json.loads(manifest_path(out / "teach").read_text())
    assert teach["training"]["processes"] == 2  # launched, as the paper's step is
    traces = json.loads(manifest_path(out / "traces").read_text())
    assert len(traces["shards"]) == 2 and traces["rows"] == 16  # two shards merged, every row once
    again = rlt("run", "paper", "--smoke", "--runs", runs, "--plan", "--json")
    assert again.returncode == 0 and {r["action"] for r in json.loads(again.stdout)["steps"]} == {"skip"}
    assert not (runs / "paper").exists()  # the real run's folder is untouched
