"""Degenerate explanations are said, not passed on: generate, score and distill count empty, truncated and
untagged explanations, warn in one line above the documented share (stages/method/degenerate.py), and
distill leaves out the kinds named by `drop=`."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stages.artifacts.layout import manifest_path
from stages.artifacts.read import read_rows
from stages.method import degenerate
from stages.method.views import END_EXPLANATION
from tests.conftest import ONE_THREAD, rlt
from tests.stub_openai import OpenAIStub, completion


@pytest.fixture
def empty_server():
    """An OpenAI-compatible stub whose teacher ends every explanation at once (120 of 120 empty, as reported)."""
    with OpenAIStub(lambda body: completion(body, [END_EXPLANATION] * body.get("n", 1), completion_tokens=1)) as stub:
        yield stub.url


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "degenerate explanations" in line]


def test_generate_and_score_say_empty_explanations(empty_server, tiny_teacher, tiny_student, synth_train, tmp_path):
    traces = tmp_path / "traces"
    proc = rlt("generate", "--teacher", tiny_teacher, "--data", synth_train, "--out", traces, "--limit", 8,
               "--max-new-tokens", 8, "--engine", "openai", f"engine.base_url={empty_server}", env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (line,) = _warnings(proc.stderr)
    assert "8 of 8 empty (100 %)" in line and "above 10 %" in line and "drop=" in line
    record = json.loads(manifest_path(traces).read_text())["degenerate"]
    assert (record["rows"], record["empty"], record["truncated"], record["untagged"]) == (8, 8, 0, 0)
    assert record["shares"]["empty"] == 1.0 and record["warn_share"] == degenerate.WARN_SHARE

    scored = tmp_path / "scored"
    proc = rlt("score", "--teacher", tiny_teacher, "--student", tiny_student, "--data", traces, "--out", scored,
               "--device", "cpu", env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(_warnings(proc.stderr)) == 1 and "8 of 8 empty" in _warnings(proc.stderr)[0]
    assert json.loads(manifest_path(scored).read_text())["degenerate"]["empty"] == 8


def test_generate_says_truncated_and_untagged_explanations(tiny_teacher, synth_train, tmp_path):
    out = tmp_path / "traces"
    proc = rlt("generate", "--teacher", tiny_teacher, "--data", synth_train, "--out", out, "--limit", 4,
               "--max-new-tokens", 2, "engine.device=cpu", env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (line,) = _warnings(proc.stderr)
    assert "4 of 4 truncated (100 %)" in line and "4 of 4 untagged (100 %)" in line
    rows = read_rows(str(out), "traces")
    assert all(r["truncated"] and not r["format_ok"] for r in rows)


def _traces(path, synth_train, kinds: list[str]):
    """A traces file: one row per entry of `kinds` (ok, empty, truncated, untagged)."""
    data = read_rows(str(synth_train), "dataset")
    rows = []
    for i, kind in enumerate(kinds):
        r = data[i % len(data)]
        rows.append({"id": f"{r['id']}-{i}", "sample": 0, "question": r["question"], "solution": r["solution"],
                     "explanation": "  \n" if kind == "empty" else r["reasoning_trace"],
                     "truncated": kind == "truncated", "format_ok": kind not in ("truncated", "untagged")})
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _distill(data, model, out, *extra):
    return rlt("distill", "--model", model, "--data", data, "--out", out, "--max-steps", 1, "--batch-size", 2,
               "--device", "cpu", *extra, env=ONE_THREAD)


def test_distill_says_and_drops_degenerate_explanations(tiny_teacher, synth_train, tmp_path):
    kinds = ["ok"] * 6 + ["empty"] * 2 + ["truncated"] * 3 + ["untagged"]
    data = _traces(tmp_path / "mixed.parquet", synth_train, kinds)
    kept = tmp_path / "kept"
    proc = _distill(data, tiny_teacher, kept)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (line,) = _warnings(proc.stderr)
    assert "2 of 12 empty (17 %)" in line and "4 of 12 untagged (33 %)" in line and "3 of 12 truncated" in line
    m = json.loads(manifest_path(kept).read_text())
    assert m["train_rows"] == 12 and m["degenerate"]["dropped"] == 0

    dropped = tmp_path / "dropped"
    proc = _distill(data, tiny_teacher, dropped, "drop=truncated,empty,untagged")
    assert proc.returncode == 0 and not _warnings(proc.stderr), proc.stderr[-2000:]
    m = json.loads(manifest_path(dropped).read_text())
    assert m["train_rows"] == 6 and m["degenerate"]["dropped"] == 6
    assert (m["degenerate"]["empty"], m["degenerate"]["truncated"], m["degenerate"]["untagged"]) == (2, 3, 4)

    only = tmp_path / "only-truncated"
    proc = _distill(data, tiny_teacher, only, "drop=truncated")
    m = json.loads(manifest_path(only).read_text())
    assert proc.returncode == 0 and m["train_rows"] == 9
    (line,) = _warnings(proc.stderr)  # the kinds it kept are still said
    assert "empty" in line and "truncated" not in line.split(":", 2)[-1].split(";")[0]


def test_below_the_threshold_nothing_is_warned(tiny_teacher, synth_train, tmp_path):
    data = _traces(tmp_path / "fine.parquet", synth_train, ["ok"] * 10 + ["truncated"])  # 9 %
    proc = _distill(data, tiny_teacher, tmp_path / "out")
    assert proc.returncode == 0 and not _warnings(proc.stderr), proc.stderr[-2000:]


@pytest.mark.parametrize("extra,message", [
    (["drop=empty,short"], "drop: unknown kind(s) short (valid: empty, truncated, untagged)"),
    (["drop=empty"], "nothing is left to train on"),
])
def test_bad_or_emptying_drop_is_one_line(extra, message, tiny_teacher, synth_train, tmp_path):
    data = _traces(tmp_path / "empty.parquet", synth_train, ["empty"] * 4)
    out = tmp_path / "out"
    proc = _distill(data, tiny_teacher, out, *extra)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr
    assert not out.exists()
