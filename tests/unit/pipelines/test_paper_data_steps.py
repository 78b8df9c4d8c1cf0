"""The shipped `paper` pipeline's data steps, run for real on small files in the published layouts:
import Bespoke-Stratos, MATH-500, AIME 2024 and GPQA-Diamond, then decontaminate before the warm-up."""

from __future__ import annotations

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq

from stages.artifacts.layout import read_manifest
from stages.artifacts.read import read_rows
from stages.pipelines import run as pipeline
from tests.conftest import ROOT

MATH_Q = "Let $f(x) = 2x^2 - 3x + 7$ for every real number $x$. Find the smallest value that $f$ takes."
GPQA_Q = "A spin-half particle is placed in a uniform magnetic field along the z axis and then measured."


def _stratos(question: str, answer: str) -> dict:
    return {"system": "...", "conversations": [
        {"from": "user", "value": question},
        {"from": "assistant", "value": f"<|begin_of_thought|>\n\nThink.\n\n<|end_of_thought|>\n\n"
                                       f"<|begin_of_solution|>\n\n\\boxed{{{answer}}}\n\n<|end_of_solution|>"}]}


def _write_sources(src):
    (src / "Bespoke-Stratos-17k").mkdir(parents=True)
    train = [_stratos(f"Train question {i}: how many apples are left after eating {i} of them?", str(i))
             for i in range(6)]
    train += [_stratos(MATH_Q.upper(), "55/8"), _stratos(f"Warm-up. {GPQA_Q} What is its energy?", "E")]
    pq.write_table(pa.Table.from_pylist(train), src / "Bespoke-Stratos-17k" / "train-00000-of-00001.parquet")
    (src / "MATH-500").mkdir()
    (src / "MATH-500" / "test.jsonl").write_text(json.dumps(
        {"problem": MATH_Q, "solution": "$\\boxed{\\frac{47}{8}}$", "answer": "\\frac{47}{8}", "subject": "Algebra",
         "level": 3, "unique_id": "test/algebra/1.json"}) + "\n" + json.dumps(
        {"problem": "What is the cost?", "solution": "$\\boxed{\\$18.90}$", "answer": "\\$18.90",
         "subject": "Prealgebra", "level": 1, "unique_id": "test/prealgebra/2.json"}) + "\n")
    (src / "aime_2024").mkdir()
    pq.write_table(pa.Table.from_pylist([{"id": 60, "problem": "Find the remainder.", "solution": "\\boxed{070}",
                                          "answer": "070", "url": "u"}]), src / "aime_2024" / "train.parquet")
    with open(src / "gpqa_diamond.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2",
                                          "Incorrect Answer 3", "Explanation", "Record ID"])
        w.writeheader()
        w.writerow({"Question": GPQA_Q, "Correct Answer": "1/2", "Incorrect Answer 1": "1",
                    "Incorrect Answer 2": "3/2", "Incorrect Answer 3": "0", "Explanation": "Spin\nhalf.",
                    "Record ID": "rec1"})


def test_paper_data_steps_import_and_decontaminate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_sources(tmp_path / "data" / "src")
    runs = tmp_path / "runs"
    records = pipeline.run(pipeline.RunConfig(name="paper", file=str(ROOT / "pipelines.yaml"), runs=str(runs),
                                              until="stratos-clean"))
    assert [r["action"] for r in records] == ["run"] * 5
    tasks = {name: {r["task"] for r in read_rows(runs / "paper" / name, "dataset")}
             for name in ("stratos", "math500", "aime24", "gpqa")}
    assert tasks == {"stratos": {"math"}, "math500": {"math"}, "aime24": {"integer"}, "gpqa": {"choice"}}
    clean = runs / "paper" / "stratos-clean"
    assert len(read_rows(clean, "dataset")) == 6
    report = read_manifest(clean)["decontamination"]["benchmarks"]
    assert {k.rsplit("/", 1)[-1]: v["dropped"] for k, v in report.items()} == {"math500": 1, "aime24": 0, "gpqa": 1}
