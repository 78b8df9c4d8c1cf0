"""`rlt inspect` from another directory finds inputs recorded by relative paths (by their absolute path, or
under a folder above the artifact for older records), and says a missing input is missing, not changed."""

from __future__ import annotations

import json
import os

import pytest

from stages.artifacts import layout as L
from stages.artifacts.state import output_state
from tests.unit.artifacts.test_layout import make


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An artifact written from `tmp_path/proj` whose inputs were given as relative paths, and a local model."""
    proj = tmp_path / "proj"
    (proj / "data").mkdir(parents=True)
    (proj / "data" / "train.jsonl").write_text('{"question": "q", "solution": "s"}\n')
    (proj / "models" / "tiny").mkdir(parents=True)
    (proj / "models" / "tiny" / "config.json").write_text("{}")
    monkeypatch.chdir(proj)
    out = make(proj / "runs" / "demo" / "gen", "traces",
               inputs={"data": "data/train.jsonl", "teacher": "models/tiny", "student": "org/student"})
    return proj, out


def test_inputs_resolve_from_anywhere(project, tmp_path, monkeypatch):
    proj, out = project
    assert output_state(out).status == "complete"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    state = output_state(out)
    assert state.status == "complete", state.differs
    monkeypatch.chdir(proj / "runs")
    assert output_state(os.path.relpath(out)).status == "complete"


def test_records_without_absolute_paths_resolve_above_the_artifact(project, tmp_path, monkeypatch):
    _, out = project
    manifest = json.loads(L.manifest_path(out).read_text())
    for rec in manifest["inputs"].values():
        rec.pop("absolute", None)  # as artifacts written before absolute paths were recorded
    L.manifest_path(out).write_text(json.dumps(manifest))
    monkeypatch.chdir(tmp_path)
    state = output_state(out)
    assert state.status == "complete", state.differs


def test_a_missing_input_is_missing_and_a_changed_one_changed(project, tmp_path, monkeypatch):
    proj, out = project
    (proj / "data" / "train.jsonl").unlink()
    (proj / "models" / "tiny" / "config.json").write_text('{"changed": 1}')
    os.utime(proj / "models" / "tiny" / "config.json", (1, 1))
    monkeypatch.chdir(tmp_path)
    state = output_state(out)
    assert state.status == "conflicting"
    assert list(state.differs) == ["input data (data/train.jsonl) is missing",
                                   "input teacher (models/tiny) changed"]
