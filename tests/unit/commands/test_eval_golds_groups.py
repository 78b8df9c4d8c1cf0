"""Eval data as benchmarks publish it (issue 26, items 4 and 5; stages/commands/evaluate.py, report.py):
a gold no checker reads is refused by default and skipped on request (counted, ids in the summary
and the manifest, kept through a re-grade); accuracy per group (level, subject, domain) with 95 %
Wilson intervals in eval's summary and in `rlt report`."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from stages.artifacts.layout import read_manifest, summary_path
from stages.artifacts.read import read_rows
from stages.artifacts.writer import ArtifactWriter
from stages.commands import evaluate, report
from stages.commands.evaluate import EvalConfig, read_golds, read_items, summarize
from stages.config import opt, resolve
from stages.errors import UserError
from stages.verify.stats import wilson


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _row(i, answer, task="math", **kw):
    return {"id": f"q{i}", "question": f"Question {i}?", "solution": "s", "answer": answer, "task": task, **kw}


# (row, reason fragment): kinds of golds no checker reads
UNREADABLE = [
    (_row(0, "4:30p.."), "cannot be parsed by math-verify"),             # a public MATH file's mangled gold
    (_row(1, "\\frac{1}{"), "cannot be parsed"),
    (_row(2, "x^{"), "cannot be parsed"),
    ({"id": "q3", "question": "Q?", "solution": "no box here"}, "has no answer"),
    (_row(4, "seventy", task="integer"), "not an integer"),
    (_row(5, "1,2", task="integer"), "not an integer"),                 # a tuple is no integer gold
    (_row(6, "E", task="choice"), "choice checker"),
    (_row(7, "AB", task="choice"), "choice checker"),
]
READABLE = [_row(10, "\\$18.90"), _row(11, "70", task="integer"), _row(12, "B", task="choice"),
            _row(13, "\\frac{3}{4}"), _row(14, "1,234", task="integer")]


@pytest.mark.parametrize("row,reason", UNREADABLE, ids=[r["id"] for r, _ in UNREADABLE])
def test_an_unreadable_gold_is_refused_by_default_naming_row_id_gold_and_option(row, reason):
    rows = READABLE + [row]
    with pytest.raises(UserError) as e:
        read_golds(rows, "data.jsonl", skip=False)
    line = str(e.value)
    assert "\n" not in line and f"(id {row['id']})" in line and reason in line
    assert "--skip-unreadable-golds" in line
    if row.get("answer"):
        assert row["answer"] in line


@pytest.mark.parametrize("row,reason", UNREADABLE, ids=[r["id"] for r, _ in UNREADABLE])
def test_an_unreadable_gold_is_skipped_on_request_and_listed(row, reason):
    kept, skipped = read_golds(READABLE + [row], "data.jsonl", skip=True)
    assert [r["id"] for r in kept] == [r["id"] for r in READABLE]
    assert skipped["count"] == 1 and skipped["ids"] == [row["id"]]
    assert reason in skipped["examples"][0]["reason"]


def test_the_refusal_counts_every_unreadable_gold(tmp_path):
    with pytest.raises(UserError, match=f"{len(UNREADABLE)} of {len(UNREADABLE) + len(READABLE)} rows"):
        read_golds(READABLE + [r for r, _ in UNREADABLE], "d", skip=False)
    kept, skipped = read_golds(READABLE + [r for r, _ in UNREADABLE], "d", skip=True)
    assert skipped["count"] == len(UNREADABLE) and len(kept) == len(READABLE)


def test_nothing_readable_is_refused_even_when_skipping():
    with pytest.raises(UserError, match="no row has a gold"):
        read_golds([r for r, _ in UNREADABLE], "d", skip=True)


def test_an_unknown_task_is_never_skipped():
    with pytest.raises(UserError, match="unknown task 'chess'"):
        read_golds(READABLE + [_row(9, "1", task="chess")], "d", skip=True)


def test_the_option_is_a_flag_and_a_key_and_changes_no_hash():
    from stages.config import config_hash

    on = resolve(EvalConfig, options={"models": ["m"], "data": "d", "out": "o", "skip_bad_golds": True})
    off = resolve(EvalConfig, options={"models": ["m"], "data": "d", "out": "o"})
    assert on.skip_bad_golds and not off.skip_bad_golds
    assert config_hash(on) == config_hash(off)  # the evaluated rows are the same whenever the default can run


def test_read_items_skips_and_keeps_grouping_columns(tmp_path):
    data = _jsonl(tmp_path / "d.jsonl", [
        {**_row(0, "4"), "level": 1, "subject": "Algebra"}, {**_row(1, "4:30p.."), "level": 2},
        {**_row(2, "5"), "level": 3}])
    items, skipped = read_items(EvalConfig(models=["m"], data=data, out="o", skip_bad_golds=True))
    assert [(it["id"], it["level"], it["subject"]) for it in items] == [("q0", "1", "Algebra"), ("q2", "3", None)]
    assert "domain" not in items[0]  # only the grouping columns the data has
    assert skipped["ids"] == ["q1"]


# ----------------------------------------------------------------------------- groups


def _eval_row(qid, correct, sample=0, model="m", source="math500", **groups):
    return {"id": qid, "sample": sample, "question": "q", "answer": "1", "task": "math", "model": model,
            "response": "r", "extracted": "1", "correct": correct, "response_tokens": 10, "truncated": False,
            "source": source, **groups}


ROWS = ([_eval_row(f"a{i}", i < 3, level="1", subject="Algebra") for i in range(4)]
        + [_eval_row(f"b{i}", i < 1, level="5", subject="Geometry") for i in range(5)]
        + [_eval_row(f"c{i}", True, level="10", subject="Algebra") for i in range(2)]
        + [_eval_row(f"g{i}", i % 2 == 0, source="gpqa", domain=d) for i, d in
           enumerate(["Physics", "Physics", "Chemistry", "Biology"])])


def test_summary_accuracy_per_group_with_wilson_intervals():
    groups = summarize(ROWS)["models"]["m"]["groups"]
    level = groups["math500"]["level"]
    assert list(level) == ["1", "5", "10"]  # by value, not as text
    assert (level["1"]["n"], level["1"]["correct"], level["5"]["correct"], level["10"]["accuracy"]) == (4, 3, 1, 1.0)
    assert level["5"]["ci95"] == pytest.approx(list(wilson(1 / 5, 5)), abs=1e-9)
    subject = groups["math500"]["subject"]
    assert subject["Algebra"]["n"] == 6 and subject["Algebra"]["accuracy"] == pytest.approx(5 / 6)
    assert set(groups["gpqa"]) == {"domain"}
    assert groups["gpqa"]["domain"]["Physics"]["accuracy"] == 0.5 and groups["gpqa"]["domain"]["Biology"]["n"] == 1


def test_groups_count_questions_over_samples():
    rows = [_eval_row("q0", True, s, level="2") for s in range(3)] + [_eval_row("q1", s == 0, s, level="2")
                                                                     for s in range(3)]
    lv = summarize(rows)["models"]["m"]["groups"]["math500"]["level"]["2"]
    assert (lv["n"], lv["rows"], lv["accuracy"]) == (2, 6, pytest.approx(4 / 6))
    assert lv["pass@3"] == 1.0


def test_no_groups_without_grouping_columns():
    summary = summarize([_eval_row("q0", True), _eval_row("q1", False, level=None)])
    assert "groups" not in summary["models"]["m"] and "skipped_golds" not in summary


@dataclass
class Cfg:
    out: str = opt("", "out", hash=False)


def test_report_gives_accuracy_per_group_and_the_skipped_golds(tmp_path):
    run = tmp_path / "runs" / "demo"
    skipped = {"count": 1, "rows": 1, "ids": ["q7"], "examples": []}
    with ArtifactWriter(run / "eval", "eval", Cfg(), key=("model", "id", "sample")) as w:
        w.write(ROWS)
        summary_path(run / "eval").write_text(json.dumps(summarize(ROWS, skipped)))
        w.finish({"skipped_golds": skipped})
    result = report.run(report.ReportConfig(runs=[str(run)], out=str(tmp_path / "rep")))
    got = {(r["benchmark"], r["group"], r["value"]): r for r in result["groups"]}
    assert got[("math500", "level", "5")]["accuracy"] == pytest.approx(0.2)
    assert got[("gpqa", "domain", "Chemistry")]["n"] == 1
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "## Accuracy per group" in text and "| level 5 | 5 | 20.0 |" in text and "domain Physics" in text
    assert result["skipped_golds"] == [{"step": "eval", "count": 1, "ids": ["q7"]}] and "q7" in text


# ----------------------------------------------------------------------------- skipped rows through a re-grade


def test_regrade_keeps_the_skipped_record_and_the_groups(tmp_path):
    data = _jsonl(tmp_path / "d.jsonl", [{**_row(0, "4"), "level": 1}, {**_row(1, "4:30p.."), "level": 2}])
    cfg = resolve(EvalConfig, options={"models": ["m"], "data": data, "out": str(tmp_path / "out"),
                                       "skip_bad_golds": True, "engine": {"name": "openai",
                                                                           "base_url": "http://127.0.0.1:9/v1"}})
    items, skipped = read_items(cfg)
    rows = [{**_eval_row(it["id"], False, level=it["level"]), "answer": it["answer"], "response": "so \\boxed{4}"}
            for it in items]
    with ArtifactWriter(cfg.out, "eval", cfg, inputs={"data": cfg.data}) as w:
        w.write(rows)
        evaluate._finish(w, rows, skipped)
    assert read_manifest(cfg.out)["skipped_golds"]["ids"] == ["q1"]
    out = evaluate.regrade(cfg.out)
    assert [r["correct"] for r in read_rows(out, "eval")] == [True]
    summary = evaluate.read_summary(out)
    assert summary["skipped_golds"]["ids"] == ["q1"] and read_manifest(out)["skipped_golds"]["count"] == 1
    assert summary["models"]["m"]["groups"]["math500"]["level"]["1"]["accuracy"] == 1.0
