"""`rlt inspect`: the artifact's state first (complete, interrupted, being written, inputs changed), then what it
holds, schema and rows; a folder lists the artifacts inside. The facts come from the stage, the display from
rltcli/show.py."""

import json
import os
import subprocess
import sys

import pytest

from rltcli.show import inspect as display
from stages.artifacts import layout as L
from stages.commands import inspect as I
from stages.errors import UserError
from tests.unit.artifacts.test_layout import legacy, make


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # rich would wrap long paths


def show(path, capsys) -> tuple[dict, str]:
    cfg = I.InspectConfig(path=str(path), rows=2, width=200)
    info = I.run(cfg)
    assert capsys.readouterr().out == ""  # the stage only gathers; rltcli/show.py displays
    display(info, cfg)
    return info, " ".join(capsys.readouterr().out.split())


def test_complete(tmp_path, capsys):
    info, text = show(make(tmp_path / "a", "traces"), capsys)
    assert info["state"] == "complete" and info["rows"] == 9 and len(info["head"]) == 2
    assert text.startswith(f"{tmp_path / 'a'}: complete traces artifact, 9 rows ")
    assert "schema version 2" in text and "explanation:string" in text


def test_interrupted_shows_rows_so_far(tmp_path, capsys):
    info, text = show(make(tmp_path / "a", "dataset", batches=(3, 4), finish=False), capsys)
    assert info["state"] == "interrupted" and info["rows"] == 7 and info["manifest"] is None
    assert text.startswith(f"{tmp_path / 'a'}: interrupted dataset artifact with 7 rows so far")
    assert info["head"][0]["question"] == "q0"


def test_inputs_changed_since_names_which(tmp_path, capsys):
    data = tmp_path / "in.jsonl"
    data.write_text('{"question": "q", "solution": "s"}\n')
    out = make(tmp_path / "a", "traces", inputs={"data": data, "teacher": "org/teacher"})
    data.write_text('{"question": "q", "solution": "other"}\n')
    info, text = show(out, capsys)
    assert info["state"] == "conflicting" and info["differs"] == [f"input data ({data}) changed"]
    assert text.startswith(f"{out}: complete traces artifact, but input data ({data}) changed")
    assert info["rows"] == 9


def test_old_layout_and_plain_files(tmp_path, capsys):
    info, text = show(legacy(tmp_path / "old"), capsys)
    assert info["state"] == "complete" and "schema version 1" in text
    f = tmp_path / "x.jsonl"
    f.write_text(json.dumps({"question": "q", "solution": "s"}) + "\n")
    info, text = show(f, capsys)
    assert info["state"] == "file" and "plain file, 1 row " in text
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not an rlt artifact"):
        I.summary(I.InspectConfig(path=str(tmp_path / "empty")))


def test_a_folder_lists_the_artifacts_inside(tmp_path, capsys):
    make(tmp_path / "runs" / "demo" / "a", "traces")
    make(tmp_path / "runs" / "demo" / "b", "dataset", finish=False)
    info, text = show(tmp_path / "runs", capsys)
    assert info["state"] == "folder" and [a["state"] for a in info["artifacts"]] == ["complete", "interrupted"]
    assert "folder of 2 artifacts" in text and "complete traces artifact, 9 rows" in text
    assert "interrupted dataset artifact with 9 rows so far" in text


def test_an_artifact_a_live_process_writes_is_being_written(tmp_path, capsys):
    out = make(tmp_path / "a", "dataset", finish=False)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        held = json.loads(L.meta_path(out, L.LOCK).read_text()) if L.meta_path(out, L.LOCK).exists() else {}
        import socket

        L.meta_path(out, L.LOCK).write_text(json.dumps({**held, "pid": live.pid, "host": socket.gethostname()}))
        info, text = show(out, capsys)
    finally:
        os.kill(live.pid, 9)
        live.wait()
    assert info["state"] == "running" and f"being written by process {live.pid} (9 rows so far)" in text
    assert "interrupted" not in text


def test_a_wide_artifact_is_shown_one_line_per_column(tmp_path, capsys):
    info, _ = show(make(tmp_path / "a", "traces"), capsys)
    assert len(info["schema"]) > 6
    display(info, I.InspectConfig(path=str(tmp_path / "a"), rows=2, width=30))
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.strip("│ ").startswith("explanation "))  # a column is a table row
    assert "string" in row and row.count("│") == 5  # name, type and the two rows' values, each in full width


def test_eval_accuracy_and_training_steps_are_shown(tmp_path, capsys):
    out = make(tmp_path / "e", "eval")
    summary = {"models": {"m": {"overall": {"n": 4, "accuracy": 0.5, "ci95": [0.15, 0.85], "mean_response_tokens": 9,
                                            "truncation_rate": 0.25},
                                "benchmarks": {"addition": {"n": 4, "accuracy": 0.5, "ci95": [0.15, 0.85],
                                                            "mean_response_tokens": 9, "truncation_rate": 0.25}}}}}
    L.summary_path(out).write_text(json.dumps(summary))
    info, text = show(out, capsys)
    assert info["summary"] == summary and "50.0 %" in text and "15.0-85.0 %" in text and "25.0 %" in text
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / L.META_DIR).mkdir()
    L.metrics_path(ck).write_text('{"step": 5, "loss": 2.5}\n{"step": 10, "loss": 1.25}\n')
    L.manifest_path(ck).write_text(json.dumps({"kind": "checkpoint", "rows": 8, "global_step": 10, "inputs": {}}))
    info, text = show(ck, capsys)
    assert info["training"]["steps"] == 10 and "training: 10 steps, final loss 1.25" in text
