"""The README's "Bring your own data" commands, run as written, in order, on a small file of the user's own.

The commands are read from the ```sh block under "## Bring your own data" and run by bash in a fresh directory
holding `problems.jsonl` and `problems-test.jsonl` in their own column names (the README's `--map` renames them),
with `rlt` on PATH; only the sizes are made small (each size below must be in the section).
"""

from __future__ import annotations

import json
import random
import re
import subprocess

import pytest

from tests.conftest import ROOT, rlt_on_path

HEADING = "## Bring your own data"
# (what the section says, what the test runs instead): training steps, token limits
SMALL = [(r"--max-steps \d+", "--max-steps 2"), (r"--max-new-tokens 256\b", "--max-new-tokens 24")]


def commands() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text[text.index(HEADING):], re.DOTALL).group(1)
    for pattern, small in SMALL:
        block, n = re.subn(pattern, small, block)
        assert n, f"the section no longer says {pattern!r}: update SMALL"
    return block


def problem(rng: random.Random) -> tuple[str, str, str, int]:
    """(problem, worked solution, step-by-step explanation, final answer) of a word problem."""
    rows, per = rng.randint(2, 9), rng.randint(2, 9)
    return (f"A crate holds {rows} rows of {per} oranges. How many oranges are in the crate?",
            (f"{rows} rows of {per} oranges make {rows} x {per} = {rows * per} oranges. "
             f"The answer is \\boxed{{{rows * per}}}."),
            f"Each row has {per} oranges and there are {rows} rows, so multiply: {rows} x {per} = {rows * per}.",
            rows * per)


def write_files(work) -> None:
    rng = random.Random(0)
    train = []
    for i in range(40):
        text, worked, steps, _ = problem(rng)
        train.append({"id": f"p{i}", "problem": text, "worked": worked, "steps": steps})
    train[7]["id"] = "p3"  # two rows given one id: both kept, the later renamed p3#1
    del train[9]["id"]  # a row without an id gets the stable one
    test = [{"problem": p[0], "final": p[3]} for p in (problem(rng) for _ in range(12))]
    for name, rows in (("problems.jsonl", train), ("problems-test.jsonl", test)):
        (work / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.slow
def test_the_readme_own_data_commands_run(tmp_path):
    env = {**rlt_on_path(tmp_path), "COLUMNS": "200"}
    work = tmp_path / "work"
    work.mkdir()
    write_files(work)
    proc = subprocess.run(["bash", "-e", "-x", "-c", commands()], cwd=work, env=env, capture_output=True, text=True,
                          timeout=1200, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]

    def manifest(path: str) -> dict:
        return json.loads((work / path / ".rlt/manifest.json").read_text())

    data = manifest("data/mine")
    assert data["rows"] == 40 and data["repeated_ids"] == 1 and data["rows_without_answer"] == 0
    assert manifest("data/mine-test")["rows"] == 12
    assert manifest("models/mine")["tokenizer_from"] == "corpus"
    summary = json.loads((work / "runs/mine/eval/.rlt/summary.json").read_text())
    assert set(summary["models"]) == {"runs/mine/student", "runs/mine/reward-student"}
    out = " ".join(proc.stdout.split())
    assert "data/mine: complete dataset artifact, 40 rows" in out
    assert re.search(r"\d+ of 24 rows with correct=false", out)
    assert (work / "runs/mine/report/report.md").is_file()
