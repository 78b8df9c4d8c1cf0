"""Benchmarks as published, end to end through the CLI with the `openai` engine (issue 26).

A loopback stub (127.0.0.1, started and stopped here) serves fixed responses per question, so import,
golds, prompts, the engine, grading, the artifact, the summary and `rlt report` run with verdicts known
in advance:
- MATH-500 with `subject` and `level` (a row without a solution among them): answers stated without a
  box, a box over a statement, a tuple, a cut-off response; accuracy per level and subject;
- GPQA pre-formatted with `domain`: letters as people write them; accuracy per domain;
- an integer set read straight from a file: tuples are not thousands;
- a public MATH file with the mangled gold `4:30p..`: refused by default (exit 2, one line), evaluated
  without it under --skip-unreadable-golds, which counts it and lists its id.
"""

from __future__ import annotations

import json

import pytest

from stages.artifacts.layout import read_manifest
from stages.artifacts.read import read_rows
from stages.commands.evaluate import read_summary
from tests.conftest import rlt
from tests.stub_openai import OpenAIStub, completion

# (key, subject, level, gold, response, finish_reason, correct, extracted)
MATH = [
    ("m1", "Algebra", 1, "16\\pi", "Final Answer: The final answer is $16\\pi$. I hope it is correct.", "stop",
     True, "16\\pi"),
    ("m2", "Algebra", 1, "45", "Thus, the number on the card that was removed is \\(45\\).", "stop", True, "45"),
    ("m3", "Algebra", 2, "2", "The answer is: 2", "stop", True, "2"),
    ("m4", "Geometry", 2, "4", "The answer is 3. Checking again, $\\boxed{4}$.", "stop", True, "4"),
    ("m5", "Geometry", 3, "12", "So the answer is $\\boxed{1,2}$.", "stop", False, "1,2"),
    ("m6", "Geometry", 3, "4", "Adding up, the answer is 4 and then", "length", False, ""),  # cut off: no answer
    ("m7", "Number Theory", 3, "\\frac{1}{2}", "Final answer: $\\frac{1}{2}$", "stop", True, "\\frac{1}{2}"),
    ("m8", "Number Theory", 5, "7", "I am not sure.", "stop", False, ""),
]
# (key, domain, gold, response, correct, extracted)
GPQA = [
    ("g1", "Physics", "B", "ANSWER: b", True, "B"),
    ("g2", "Physics", "D", "d", True, "D"),
    ("g3", "Chemistry", "B", "b. 4", True, "B"),
    ("g4", "Chemistry", "B", "I would pick B — a safe choice.", True, "B"),
    ("g5", "Physics", "B", "选项 (B) $3.3\\mathrm{MeV}$。", True, "B"),
    ("g6", "Biology", "A", "This needs a bit more thought.", False, ""),
    ("g7", "Biology", "C", "The correct answer is (A).", False, "A"),
]
# (key, level, gold, response, correct, extracted)
INTEGER = [
    ("i1", "I", "12", "\\boxed{1,2}", False, "1,2"),
    ("i2", "I", "357", "\\boxed{3,5,7}", False, "3,5,7"),
    ("i3", "II", "1234", "\\boxed{1,234}", True, "1,234"),
    ("i4", "II", "70", "The answer is 070.", True, "070"),
]
# a public MATH file: one mangled gold among readable ones
MANGLED = [("x1", "4", "\\boxed{4}", True), ("x2", "4:30p..", "\\boxed{4:30}", False), ("x3", "9", "\\boxed{8}", False)]


@pytest.fixture()
def stub():
    """Serves the fixed response of the question whose prompt holds "[key]"."""
    responses = {**{c[0]: (c[4], c[5]) for c in MATH}, **{c[0]: (c[3], "stop") for c in GPQA},
                 **{c[0]: (c[3], "stop") for c in INTEGER}, **{c[0]: (c[2], "stop") for c in MANGLED}}

    def reply(body):
        prompt = body["prompt"] if isinstance(body["prompt"], str) else body["prompt"][0]
        text, reason = next(v for k, v in responses.items() if f"[{k}]" in prompt)
        return completion(body, [text], finish_reason=reason, completion_tokens=20, logprobs=None)

    with OpenAIStub(reply) as server:
        yield server


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _eval(model, data, out, url, *extra, check=True):
    return rlt("eval", "--model", model, "--data", data, "--out", out, "--engine", "openai", "--base-url", url,
               "engine.api_model=stub", "engine.retries=0", *extra, check=check, timeout=300)


def _by_key(out) -> dict:
    return {r["question"].split("]")[0].split("[")[-1]: r for r in read_rows(out, "eval")}


def test_math500_groups_and_stated_answers(stub, tiny_student, tmp_path):
    rows = [{"problem": f"[{k}] Problem {k}?", "answer": g, "subject": s, "level": lv,
             "unique_id": f"test/{s.lower()}/{k}.json", **({"solution": f"So $\\boxed{{{g}}}$."} if k != "m8" else {})}
            for k, s, lv, g, *_ in MATH]
    data = tmp_path / "math500"
    imported = rlt("data", "import", _jsonl(tmp_path / "test.jsonl", rows), "--format", "math500", "--out", data,
                   check=True, timeout=300)
    assert "1 of 8 rows have no solution" in imported.stderr
    assert [r["solution"] for r in read_rows(data, "dataset", required=("id", "question"))][-1] is None

    out = tmp_path / "eval"
    proc = _eval(tiny_student, data, out, stub.url)
    got = _by_key(out)
    for k, s, lv, gold, _, reason, correct, extracted in MATH:
        r = got[k]
        assert (r["correct"], r["extracted"], r["truncated"]) == (correct, extracted, reason == "length"), k
        assert (r["subject"], r["level"]) == (s, str(lv))
    groups = read_summary(out)["models"][str(tiny_student)]["groups"]["math500"]
    assert list(groups["level"]) == ["1", "2", "3", "5"]
    assert [groups["level"][v]["correct"] for v in ("1", "2", "3", "5")] == [2, 2, 1, 0]
    lo, hi = groups["level"]["3"]["ci95"]
    assert 0 < lo < 1 / 3 < hi < 1
    assert groups["subject"]["Geometry"]["n"] == 3 and groups["subject"]["Geometry"]["correct"] == 1
    assert "level 3" in proc.stdout and "subject Geometry" in proc.stdout

    rep = tmp_path / "report"
    rlt("report", out, "--out", rep, check=True, timeout=300)
    text = (rep / "report.md").read_text()
    assert "## Accuracy per group" in text and "| level 1 | 2 | 100.0 |" in text and "subject Number Theory" in text


def test_gpqa_domains_and_letters(stub, tiny_student, tmp_path):
    rows = [{"question": f"[{k}] Which option is right?", "options": ["w", "x", "y", "z"], "answer": g,
             "domain": d} for k, d, g, *_ in GPQA]
    data = tmp_path / "gpqa"
    rlt("data", "import", _jsonl(tmp_path / "gpqa.jsonl", rows), "--format", "gpqa", "--out", data, check=True,
        timeout=300)
    out = tmp_path / "eval"
    _eval(tiny_student, data, out, stub.url)
    got = _by_key(out)
    for k, d, _, _, correct, extracted in GPQA:
        assert (got[k]["correct"], got[k]["extracted"], got[k]["domain"]) == (correct, extracted, d), k
    domain = read_summary(out)["models"][str(tiny_student)]["groups"]["gpqa"]["domain"]
    assert {v: (s["n"], s["correct"]) for v, s in domain.items()} == {"Physics": (3, 3), "Chemistry": (2, 2),
                                                                      "Biology": (2, 0)}


def test_integer_tuples_from_a_raw_file_with_a_grouping_column(stub, tiny_student, tmp_path):
    data = _jsonl(tmp_path / "aime.jsonl", [{"id": k, "question": f"[{k}] Find N.", "answer": int(g), "task": "integer",
                                            "source": "aime", "level": lv} for k, lv, g, *_ in INTEGER])
    out = tmp_path / "eval"
    _eval(tiny_student, data, out, stub.url)
    got = _by_key(out)
    for k, _, _, _, correct, extracted in INTEGER:
        assert (got[k]["correct"], got[k]["extracted"]) == (correct, extracted), k
    level = read_summary(out)["models"][str(tiny_student)]["groups"]["aime"]["level"]
    assert {v: s["correct"] for v, s in level.items()} == {"I": 0, "II": 2}


def test_a_mangled_gold_is_refused_then_skipped_on_request(stub, tiny_student, tmp_path):
    data = _jsonl(tmp_path / "math.jsonl", [{"id": k, "question": f"[{k}] What time?", "solution": "s", "answer": g}
                                            for k, g, *_ in MANGLED])
    out = tmp_path / "eval"
    refused = _eval(tiny_student, data, out, stub.url, check=False)
    assert refused.returncode == 2, refused.stderr
    line = refused.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "(id x2)" in line and "4:30p.." in line and "--skip-unreadable-golds" in line
    assert not out.exists() and not stub.requests  # refused before anything was generated

    proc = _eval(tiny_student, data, out, stub.url, "--skip-unreadable-golds")
    assert len(stub.requests) == 2  # x1 and x3 only
    assert {r["id"]: r["correct"] for r in read_rows(out, "eval")} == {"x1": True, "x3": False}
    for record in (read_summary(out)["skipped_golds"], read_manifest(out)["skipped_golds"]):
        assert record["count"] == 1 and record["ids"] == ["x2"]
        assert "4:30p.." in record["examples"][0]["gold"]
    assert "skipped 1 question" in proc.stdout and "x2" in proc.stdout
    assert "skipped 1 question" in proc.stderr

    again = rlt("eval", "--regrade", out, check=True, timeout=300)  # the record survives a re-grade
    assert "verdicts changed" in again.stderr and read_manifest(out)["skipped_golds"]["ids"] == ["x2"]
    assert len(stub.requests) == 2
