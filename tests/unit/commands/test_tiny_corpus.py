"""`rlt model tiny --corpus DATA` trains the tiny model's tokenizer on the user's own text, so their data is not
read at about one token per character; any text still encodes and decodes exactly, and the tags stay one token."""

import json
import random

import pytest

from stages.method.views import TAGS
from tests.conftest import rlt

ELEMENTS = ["hydrogen", "helium", "lithium", "carbon", "nitrogen", "oxygen", "sodium", "chlorine"]


def chemistry(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.sample(ELEMENTS, 2)
        k = rng.randint(2, 9)
        rows.append({"question": f"How many moles of {a} react with {k} moles of {b}?",
                     "reasoning_trace": f"The stoichiometric ratio of {a} to {b} is 2:1, so {k} times two.",
                     "solution": f"Balancing the equation, {k} moles of {b} need \\boxed{{{2 * k}}} moles of {a}."})
    return rows


@pytest.fixture(scope="module")
def corpus_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    data = d / "mine.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in chemistry(100, seed=0)))
    rlt("model", "tiny", "--out", d / "tiny", "--corpus", data, check=True, env={"OMP_NUM_THREADS": "1"})
    return d / "tiny"


def tokens_per_char(tok, rows: list[dict]) -> float:
    text = [r[c] for r in rows for c in ("question", "reasoning_trace", "solution")]
    return sum(len(tok(t)["input_ids"]) for t in text) / sum(map(len, text))


def test_the_tokenizer_fits_the_users_text(corpus_model, tiny_teacher):
    from transformers import AutoConfig, AutoTokenizer

    mine, builtin = AutoTokenizer.from_pretrained(corpus_model), AutoTokenizer.from_pretrained(tiny_teacher)
    held_out = chemistry(30, seed=1)  # rows the tokenizer never saw
    ours, theirs = tokens_per_char(mine, held_out), tokens_per_char(builtin, held_out)
    assert ours < 0.5 * theirs, (ours, theirs)
    assert len(mine(" chlorine")["input_ids"]) <= 2 < len(builtin(" chlorine")["input_ids"])
    assert AutoConfig.from_pretrained(corpus_model).vocab_size == len(mine)
    for text in ("What is 476 + 540?", "naïve café: ∫x² dx ≠ 🙂", held_out[0]["solution"]):
        assert mine.decode(mine(text)["input_ids"]) == text  # byte-level: any text round-trips
    assert all(len(mine(t, add_special_tokens=False)["input_ids"]) == 1 for t in TAGS)
    manifest = json.loads((corpus_model / ".rlt" / "manifest.json").read_text())
    assert manifest["tokenizer_from"] == "corpus" and "corpus" in manifest["inputs"]


@pytest.mark.parametrize("content, args, line", [
    ('{"a": 1}\n', [], ("no text to train a tokenizer on: it needs a column of question, reasoning_trace, "
                        "solution, explanation (has: a)")),
    ('{"question": "q"}\n', ["--tokenizer", "x"], "--corpus trains a tokenizer and --tokenizer reuses one"),
    (None, [], "input not found"),
])
def test_a_corpus_it_cannot_use_is_refused_in_one_line(tmp_path, content, args, line):
    data = tmp_path / "c.jsonl"
    if content is not None:
        data.write_text(content)
    proc = rlt("model", "tiny", "--out", tmp_path / "tiny", "--corpus", data, *args)
    assert proc.returncode == 2 and line in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "tiny").exists()
