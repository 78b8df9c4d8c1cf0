"""The share of eval responses in the tag format, beside accuracy: the summary, `rlt report` and the eval table.

A model that never adopted the format and one that answers wrong in it both score 0 % accuracy; the
format rate tells them apart.
"""

import json
from dataclasses import dataclass

import pytest

from stages.artifacts.layout import summary_path
from stages.artifacts.writer import ArtifactWriter
from stages.commands import report
from stages.commands.evaluate import in_tag_format, summarize
from stages.config import opt

IN_FORMAT = "<|begin_of_thought|>\n\nones: 1 + 2 = 3.<|end_of_thought|>\n\n<|begin_of_solution|>\\boxed{4}<|end_of_solution|>"
RESPONSES = {
    "in format": (IN_FORMAT, True),
    "plain answer": ("1 + 2 = 3, so the answer is \\boxed{3}.", False),
    "thought never closed": ("<|begin_of_thought|>\n\nones: 1 + 2 = 3.", False),
    "solution never closed": ("<|begin_of_thought|>\n\nx<|end_of_thought|>\n\n<|begin_of_solution|>\\boxed{3}", False),
    "tags out of order": ("<|begin_of_solution|>3<|end_of_solution|><|begin_of_thought|>x<|end_of_thought|>", False),
}


@pytest.mark.parametrize("name", RESPONSES)
def test_in_tag_format(name):
    response, expected = RESPONSES[name]
    assert in_tag_format(response) is expected


def _rows(model, responses, correct):
    return [{"id": f"q{i}", "sample": 0, "question": "q", "answer": "3", "task": "addition", "model": model,
             "response": r, "extracted": "3", "correct": c, "response_tokens": 10, "truncated": "<|end_of_solution|>" not in r,
             "source": "synth-test"} for i, (r, c) in enumerate(zip(responses, correct))]


# A student that never wrote the tags and one that wrote them and answered wrong: both 0 % accurate.
UNTAGGED = _rows("runs/untagged", ["\\boxed{3}"] * 3 + ["the answer is 4"], [False] * 4)
TAGGED_WRONG = _rows("runs/tagged", [IN_FORMAT] * 3 + ["\\boxed{4}"], [False] * 4)


def test_summary_format_rate_beside_accuracy():
    models = summarize(UNTAGGED + TAGGED_WRONG)["models"]
    for model, rows in (("runs/untagged", UNTAGGED), ("runs/tagged", TAGGED_WRONG)):
        overall = models[model]["overall"]
        assert overall["accuracy"] == 0.0
        assert overall["format_rate"] == sum(in_tag_format(r["response"]) for r in rows) / len(rows)
        assert overall["truncation_rate"] == sum(r["truncated"] for r in rows) / len(rows)
    assert (models["runs/untagged"]["overall"]["format_rate"], models["runs/tagged"]["overall"]["format_rate"]) == (0, 0.75)


@dataclass
class Cfg:
    out: str = opt("", "out", hash=False)


def test_report_and_eval_table_show_the_format_rate(tmp_path, capsys):
    from rltcli import show

    rows = UNTAGGED + TAGGED_WRONG
    with ArtifactWriter(tmp_path / "run" / "eval", "eval", Cfg(), key=("model", "id", "sample")) as w:
        w.write(rows)
        summary_path(w.out).write_text(json.dumps(summarize(rows)))
        w.finish()
    report.run(report.ReportConfig(runs=[str(tmp_path / "run")], out=str(tmp_path / "rep")))
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "| tag format % |" in text
    assert "| eval | untagged | synth-test | 4 | 0.0 | 0.0-49.0 | 0.0 | 10 | 100.0 |" in text
    assert "| eval | tagged | synth-test | 4 | 0.0 | 0.0-49.0 | 75.0 | 10 | 25.0 |" in text
    show.eval_table(summarize(rows))
    table = capsys.readouterr().out
    assert "tag format" in table and "75.0 %" in table


def test_report_of_an_eval_without_format_rate_reads_a_dash():
    row = {"step": "eval", "model": "m", "benchmark": "b", "n": 4, "accuracy": 0.5, "ci95": [0.1, 0.9],
           "mean_response_tokens": 9, "truncation_rate": 0.0}  # a summary written before the format rate
    assert "| eval | m | b | 4 | 50.0 | 10.0-90.0 | - | 9 | 0.0 |" in report.accuracy_markdown([row])
