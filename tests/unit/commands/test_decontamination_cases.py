"""Decontamination recall and precision by kind (issue 26, items 6 and 7; stages/commands/decontaminate.py).

Recall: a short benchmark question (fewer than n words) inside a training question as a contiguous run
of words is a copy (Bespoke-Stratos prefixes every question with `Return your final response within
\\boxed{}.`), wherever it sits; long questions by a shared n-gram, also with prefixes, suffixes and
around other text. Precision: phrases two or more questions of one benchmark share (template phrases,
Asymptote label runs) are set aside and counted; near-misses (reordered, interleaved, other numbers)
are kept. Each row's verdict was decided by hand from the rules.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from stages.artifacts.layout import read_manifest
from stages.artifacts.read import read_rows
from stages.commands.decontaminate import DecontaminateConfig, Index, ngrams, normalize, run
from tests.conftest import rlt

STRATOS = "Return your final response within \\boxed{}. "

SHORT = ["Compute $\\dbinom{31}{28}$.", "Evaluate $\\lceil 3.6 \\rceil$.", "What is $\\sqrt{53}$ rounded?",
         "Simplify $\\sqrt{242}$."]
LONG = [("A regular hexagon can be divided into six equilateral triangles. If the perimeter of one of the "
        "triangles is 21 inches, what is the perimeter, in inches, of the regular hexagon?"),
        "The sum of two numbers is 25 and their difference is 11. What is the larger of the two numbers?"]
TEMPLATES = [  # two questions per phrase: the phrases are frequent in the benchmark
    "Let $z$ be a complex number such that $|z| = 13.$ Find $z \\times \\overline{z}.$",
    "Let $z$ be a complex number such that $z^5 = 1$ and $z \\neq 1.$ Compute $z + 1/z$ plus $z^2$.",
    "Find the sum of all possible values of $x$ if $x^2 = 49$ holds today.",
    "Find the sum of all possible values of $b$ for which the parabola touches the line $y = 3$.",
    ("[asy] draw((0,0)--(4,0)--(4,3)--cycle); label(\"$A$\",(0,0),SW); label(\"$B$\",(4,0),SE); "
    "label(\"$C$\",(4,3),NE); [/asy] What is the length of segment $AC$ in the right triangle?"),
    ("[asy] draw((0,0)--(4,0)--(2,5)--cycle); label(\"$A$\",(0,0),SW); label(\"$B$\",(4,0),SE); "
    "label(\"$C$\",(2,5),N); [/asy] Triangle $ABC$ is isosceles; what is the measure of angle $C$?"),
]
BENCH = SHORT + LONG + TEMPLATES

# (training question, dropped?)
CASES = [
    # short questions inside training questions: recall
    (STRATOS + "Compute $\\dbinom{31}{28}$.", True),                       # the Stratos wrapper (the issue)
    ("Compute $\\dbinom{31}{28}$. Express your answer as an integer.", True),  # a suffix
    ("Warm-up: compute $\\dbinom{31}{28}$, then rest.", True),              # embedded, other case
    (STRATOS + "Evaluate $\\lceil 3.6 \\rceil$.", True),
    ("evaluate \\lceil 3.6\\rceil please", True),
    (STRATOS + "What is $\\sqrt{53}$ rounded? Give the nearest integer.", True),
    ("Simplify $\\sqrt{242}$.", True),                                      # equal
    ("First simplify $\\sqrt{242}$ and then square it.", True),
    # short near-misses: precision
    ("Compute the value of $\\dbinom{31}{28}$.", False),                    # not a contiguous run
    ("Compute $\\dbinom{31}{29}$.", False),                                 # another number
    ("Compute $\\dbinom{28}{31}$.", False),                                 # reordered
    ("Simplify $\\sqrt{2420}$.", False),                                    # a word boundary: 2420 is not 242
    ("Evaluate $\\lceil 3.7 \\rceil$.", False),
    # long questions with prefixes, suffixes and around other text
    (STRATOS + LONG[0], True),
    (LONG[0] + " Explain each step.", True),
    ("Part (a). " + LONG[1] + " Part (b). What is the smaller one?", True),
    ("If the perimeter of one of the triangles is 21 inches, find the area.", True),  # one 8-gram
    ("The sum of two numbers is 30 and their product is 150.", False),      # 6 shared words only
    # template phrases two benchmark questions share: precision
    ("Let $z$ be a complex number such that $z^3 = 8$. Find the real part of $z$.", False),
    ("Find the sum of all possible values of $k$ for which $k^2 - 5k + 6 = 0$.", False),
    (("[asy] draw((0,0)--(6,0)--(6,6)--cycle); label(\"$A$\",(0,0),SW); label(\"$B$\",(4,0),SE); "
     "label(\"$C$\",(6,6),NE); [/asy] Find the area of the triangle."), False),  # only the shared label run
    # ...but a template question itself, copied, is still a copy
    (TEMPLATES[0], True),                                                   # equal
    (STRATOS + TEMPLATES[0], True),                                         # its own 8-grams (`13 find z ...`)
    (STRATOS + TEMPLATES[2] + " Show all work.", True),
    (TEMPLATES[4], True),
]


def _jsonl(path, questions):
    path.write_text("".join(json.dumps({"id": f"r{i}", "question": q, "solution": "s"}) + "\n"
                            for i, q in enumerate(questions)))
    return path


@pytest.fixture()
def result(tmp_path):
    train = _jsonl(tmp_path / "train.jsonl", [q for q, _ in CASES])
    bench = _jsonl(tmp_path / "math500.jsonl", BENCH)
    out = run(DecontaminateConfig(src=str(train), against=[str(bench)], out=str(tmp_path / "clean")))
    return {r["id"] for r in read_rows(out, "dataset")}, read_manifest(out)["decontamination"], str(bench)


@pytest.mark.parametrize("i", range(len(CASES)), ids=[f"{i}-{'drop' if d else 'keep'}" for i, (_, d) in
                                                      enumerate(CASES)])
def test_case(result, i):
    kept, _, _ = result
    question, dropped = CASES[i]
    assert (f"r{i}" not in kept) is dropped, question


def test_set_aside_ngrams_are_counted_as_an_independent_count_says(result):
    _, report, bench = result
    counts = Counter(g for w in {tuple(normalize(q)) for q in BENCH} for g in ngrams(list(w), 8))
    want = sum(c >= 2 for c in counts.values())
    assert want >= 5  # the template phrases and the label run
    assert report["set_aside"]["ngrams"] == want == report["set_aside"]["benchmarks"][bench]["ngrams"]
    assert report["set_aside"]["frequent"] == 2
    examples = " | ".join(report["set_aside"]["benchmarks"][bench]["examples"])
    assert "sw label b 40 se label" in examples  # the Asymptote label run (`(4,0)` reads `40`)
    assert "let z be a complex number such that (2 questions)" in examples
    assert report["benchmarks"][bench]["dropped"] == sum(d for _, d in CASES)


def test_frequent_zero_keeps_every_ngram(tmp_path):
    train = _jsonl(tmp_path / "t.jsonl", ["Let $z$ be a complex number such that $z^3 = 8$. Find it.", "Other."])
    bench = _jsonl(tmp_path / "b.jsonl", TEMPLATES)
    out = run(DecontaminateConfig(src=str(train), against=[str(bench)], out=str(tmp_path / "o"), frequent=0))
    assert [r["id"] for r in read_rows(out, "dataset")] == ["r1"]
    assert read_manifest(out)["decontamination"]["set_aside"]["ngrams"] == 0


def test_a_higher_threshold_counts_a_phrase_two_questions_share(tmp_path):
    train = _jsonl(tmp_path / "t.jsonl", ["Find the sum of all possible values of $k$ with $k^2 = 4$.", "Other."])
    bench = _jsonl(tmp_path / "b.jsonl", TEMPLATES)
    out = run(DecontaminateConfig(src=str(train), against=[str(bench)], out=str(tmp_path / "o"), frequent=3))
    assert [r["id"] for r in read_rows(out, "dataset")] == ["r1"]


def test_a_phrase_in_one_benchmark_question_only_is_evidence(tmp_path):
    train = _jsonl(tmp_path / "t.jsonl", ["Let $z$ be a complex number such that $z^3 = 8$.", "Other."])
    bench = _jsonl(tmp_path / "b.jsonl", TEMPLATES[:1] + LONG)  # the phrase opens one question only
    out = run(DecontaminateConfig(src=str(train), against=[str(bench)], out=str(tmp_path / "o")))
    assert [r["id"] for r in read_rows(out, "dataset")] == ["r1"]


def test_frequency_is_counted_per_benchmark(tmp_path):
    """GPQA main and diamond hold the same question with options in another order: the stem shared by
    the two files is still evidence (it is frequent in neither)."""
    stem = "A spin-half particle is placed in a uniform magnetic field along the z axis and then measured."
    main = _jsonl(tmp_path / "main.jsonl", [stem + "\nA. 1\nB. 2\nC. 3\nD. 4", LONG[0]])
    diamond = _jsonl(tmp_path / "diamond.jsonl", [stem + "\nA. 3\nB. 1\nC. 4\nD. 2"])
    train = _jsonl(tmp_path / "t.jsonl", [STRATOS + stem, "Other."])
    out = run(DecontaminateConfig(src=str(train), against=[str(main), str(diamond)], out=str(tmp_path / "o")))
    assert [r["id"] for r in read_rows(out, "dataset")] == ["r1"]
    report = read_manifest(out)["decontamination"]
    assert report["benchmarks"][str(main)]["ids"] == report["benchmarks"][str(diamond)]["ids"] == ["r0"]


def test_the_same_question_twice_in_a_benchmark_is_one_question(tmp_path):
    train = _jsonl(tmp_path / "t.jsonl", [STRATOS + LONG[1], "Other."])
    bench = _jsonl(tmp_path / "b.jsonl", [LONG[1], LONG[1], LONG[1] + " "])
    out = run(DecontaminateConfig(src=str(train), against=[str(bench)], out=str(tmp_path / "o")))
    assert [r["id"] for r in read_rows(out, "dataset")] == ["r1"]


def test_a_short_question_inside_other_benchmark_questions_is_set_aside_as_a_run(tmp_path):
    """`Simplify.` is a whole MATH-style question and a word of many: inside a training question it is
    no copy (equal, it still is)."""
    bench = _jsonl(tmp_path / "b.jsonl", ["Simplify.", "Simplify $\\frac{3}{6}$ fully.", "Simplify $2x + 3x$ now."])
    train = _jsonl(tmp_path / "t.jsonl", ["Simplify $\\frac{10}{4}$.", "Simplify.", "Other."])
    out = run(DecontaminateConfig(src=str(train), against=[str(bench)], out=str(tmp_path / "o")))
    assert [r["id"] for r in read_rows(out, "dataset")] == ["r0", "r2"]
    assert read_manifest(out)["decontamination"]["set_aside"]["short_questions"] == 1


@pytest.mark.parametrize("n", [4, 6, 8, 10])
def test_short_runs_by_ngram_size(n):
    """A benchmark question counts as a run exactly when it is shorter than n words."""
    index = Index(n)
    index.add_benchmark(["Compute $\\dbinom{31}{28}$ by hand."], "b")  # 6 words
    hit = bool(index.hits(STRATOS + "Compute $\\dbinom{31}{28}$ by hand."))
    assert hit  # as a run (n > 6) or by its n-grams (n <= 6): found either way
    assert bool(index.hits("Now compute $\\dbinom{31}{28}$ by hand, twice")) is True
    assert bool(index.hits("compute dbinom 31")) is (n <= 3)  # a fragment of it is no copy


def test_cli_reports_what_was_set_aside(tmp_path):
    train = _jsonl(tmp_path / "train.jsonl", [q for q, _ in CASES])
    bench = _jsonl(tmp_path / "math500.jsonl", BENCH)
    proc = rlt("data", "decontaminate", train, "--against", bench, "--out", tmp_path / "c", timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "set aside" in proc.stderr and "n-grams" in proc.stderr
    assert len(read_rows(tmp_path / "c", "dataset")) == sum(not d for _, d in CASES)
