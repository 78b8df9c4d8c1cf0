"""`rlt data synth|import|merge` and `rlt inspect` through the CLI: no model, small files."""

import json

import pyarrow.parquet as pq

from stages.artifacts.layout import manifest_path
from tests.conftest import rlt


def test_synth_splits_disjoint(tmp_path):
    rlt("data", "synth", "--out", tmp_path / "tr", "--n", 300, check=True)
    rlt("data", "synth", "--out", tmp_path / "te", "--n", 100, "--split", "test", check=True)
    tr = pq.read_table(next((tmp_path / "tr").glob("data-*"))).to_pylist()
    te = pq.read_table(next((tmp_path / "te").glob("data-*"))).to_pylist()
    assert len(tr) == 300 and len(te) == 100
    assert not {r["question"] for r in tr} & {r["question"] for r in te}
    r = tr[0]
    a, b = map(int, r["question"].removeprefix("What is ").removesuffix("?").split(" + "))
    assert r["answer"] == str(a + b) and f"\\boxed{{{a + b}}}" in r["solution"]
    assert r["reasoning_trace"].startswith("ones: ") and r["reasoning_trace"].rstrip().endswith(f"= {a + b}.")


STRATOS = [
    {"system": "Your role as an assistant ...", "conversations": [
        {"from": "user", "value": "Return your final response within \\boxed{}. What is 2+2?"},
        {"from": "assistant", "value": "<|begin_of_thought|>\n\nTwo and two make four.\n\n<|end_of_thought|>\n\n"
                                       "<|begin_of_solution|>\n\n\\boxed{4}\n\n<|end_of_solution|>"}]},
    {"system": "s", "conversations": [
        {"from": "user", "value": "Broken row"}, {"from": "assistant", "value": "no tags at all"}]},
    {"system": "s", "conversations": [
        {"from": "user", "value": "Ünïcode?"},
        {"from": "assistant", "value": "<|begin_of_thought|>\n\nθ\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\nπ\n\n<|end_of_solution|>"}]},
]


def test_import_stratos_counts_bad_rows(tmp_path):
    src = tmp_path / "stratos.jsonl"
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in STRATOS) + "\n")
    proc = rlt("data", "import", src, "--out", tmp_path / "d", "--format", "stratos", check=True)
    assert "1 of 3 rows did not parse" in proc.stderr.replace("\n", " ")
    rows = pq.read_table(next((tmp_path / "d").glob("data-*"))).to_pylist()
    assert [r["question"] for r in rows] == ["Return your final response within \\boxed{}. What is 2+2?", "Ünïcode?"]
    assert rows[0]["solution"] == "\\boxed{4}" and rows[0]["reasoning_trace"] == "Two and two make four."
    manifest = json.loads(manifest_path(tmp_path / "d").read_text())
    assert manifest["rows"] == 2 and manifest["skipped_rows"] == 1


def test_import_columns_with_map_and_inspect(tmp_path):
    src = tmp_path / "x.csv"
    src.write_text("prompt,target\nQ1,S1\nQ2,S2\n")
    rlt("data", "import", src, "--out", tmp_path / "d", "--map", "question=prompt,solution=target", check=True)
    proc = rlt("inspect", tmp_path / "d", check=True)
    text = " ".join(proc.stdout.split())
    assert "dataset artifact, 2 rows" in text and "Q1" in text


def test_merge_refuses_conflicts(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text('{"id": "1", "question": "q", "solution": "s"}\n')
    b.write_text('{"id": "1", "question": "q", "solution": "other"}\n')
    rlt("data", "import", a, "--out", tmp_path / "A", check=True)
    rlt("data", "import", b, "--out", tmp_path / "B", check=True)
    proc = rlt("data", "merge", tmp_path / "A", tmp_path / "B", "--out", tmp_path / "M")
    assert proc.returncode == 2 and "conflicting rows" in proc.stderr and not (tmp_path / "M").exists()
    rlt("data", "merge", tmp_path / "A", tmp_path / "A", "--out", tmp_path / "M", check=True)
