"""`rlt inspect`: the artifact's state first (complete, interrupted, inputs changed), then schema and rows."""

import json

import pytest

from stages.commands import inspect as I
from stages.errors import UserError
from tests.unit.test_layout import legacy, make


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # rich would wrap long paths


def show(path, capsys) -> tuple[dict, str]:
    info = I.run(I.InspectConfig(path=str(path), rows=2, width=200))
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
    assert info["state"] == "file" and "plain file, 1 rows" in text
    with pytest.raises(UserError, match="not an rlt artifact"):
        I.summary(I.InspectConfig(path=str(tmp_path)))
