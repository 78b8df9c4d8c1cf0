"""`rlt data decontaminate` on planted overlaps, against an independent all-pairs check."""

from __future__ import annotations

import json
import random

import pytest
import yaml

from stages.artifacts.layout import read_manifest
from stages.artifacts.read import read_rows
from stages.commands.decontaminate import DecontaminateConfig, normalize, run
from stages.errors import UserError
from tests.conftest import ROOT, rlt

MATH = ["Let $f(x) = 2x^2 - 3x + 7$ for every real number $x$. Find the smallest value that $f$ takes.",
        "How many positive divisors does the number $10{,}000$ have when we count one and itself?",
        "Compute $\\dbinom{8}{4}$."]  # shorter than 8 words
GPQA = ["A spin-half particle is placed in a uniform magnetic field along the z axis and then measured."]
FILLER = [f"Filler question {i}: a train leaves station {i} at noon and travels {i + 3} miles per hour."
          for i in range(20)]
PLANTED = {
    "copy": "let F(x)=2x^2-3x+7 for EVERY real number x. find the smallest value that f takes!",  # case/punctuation
    "spaced": "How many positive divisors does the number 10\\,000 have when we count one and itself",  # LaTeX space
    "inside": "Warm-up. A spin-half particle is placed in a uniform magnetic field; what is its energy?",  # 8-gram
    "short": "compute \\dbinom{8}{4}.",
    "longer": "Compute $\\dbinom{8}{4}$ and then compute $\\dbinom{9}{4}$ as well.",  # holds a short one as a run
}
KEPT = {
    "seven": "a spin-half particle is placed in orbit around a planet",  # 7 shared words only
}


def _jsonl(path, questions: dict[str, str]):
    path.write_text("".join(json.dumps({"id": k, "question": q, "solution": "s"}) + "\n"
                            for k, q in questions.items()))
    return path


@pytest.fixture()
def files(tmp_path):
    train = {**{f"f{i}": q for i, q in enumerate(FILLER)}, **PLANTED, **KEPT}
    return (_jsonl(tmp_path / "train.jsonl", train),
            _jsonl(tmp_path / "math500.jsonl", {f"m{i}": q for i, q in enumerate(MATH)}),
            _jsonl(tmp_path / "gpqa.jsonl", {f"g{i}": q for i, q in enumerate(GPQA)}))


def test_planted_overlaps_are_dropped_and_counted(files, tmp_path):
    train, math, gpqa = map(str, files)
    out = run(DecontaminateConfig(src=train, against=[math, gpqa], out=str(tmp_path / "clean")))
    kept = {r["id"] for r in read_rows(out, "dataset")}
    assert kept == {f"f{i}" for i in range(20)} | set(KEPT)
    report = read_manifest(out)["decontamination"]
    assert report["benchmarks"][math] == {"dropped": 4, "ids": ["copy", "longer", "short", "spaced"]}
    assert report["benchmarks"][gpqa] == {"dropped": 1, "ids": ["inside"]}
    assert (report["rows_in"], report["rows_kept"], report["rows_dropped"]) == (26, 21, 5)


def _slow_overlap(train_q: str, bench_qs: list[str], n: int, frequent: int = 2) -> bool:
    """Independent check of the rules: joined word strings searched in each other; a run counts when
    fewer than `frequent` distinct benchmark questions hold it; an equal question always counts."""
    def holds(words, run):
        return f" {' '.join(run)} " in f" {' '.join(words)} "

    bench = [list(b) for b in {tuple(normalize(q)) for q in bench_qs} - {()}]
    t = normalize(train_q)
    for b in bench:
        if t == b:
            return True
        runs = [b] if len(b) < n else [b[i:i + n] for i in range(len(b) - n + 1)]
        if any(holds(t, r) and sum(holds(o, r) for o in bench) < frequent for r in runs):
            return True
    return False


@pytest.mark.parametrize("n", [3, 5, 8])
def test_matches_an_all_pairs_check_on_random_text(tmp_path, n):
    rng = random.Random(n)
    vocab = [f"w{i}" for i in range(12)] + ["$x$", "\\,", "Y,", "z."]

    def sentence():
        return " ".join(rng.choice(vocab) for _ in range(rng.randint(2, 14)))

    def with_slice(text: str) -> str:  # a run of a benchmark question around n words long, planted
        words = text.split()
        k = rng.randint(max(1, n - 2), n + 2)
        start = rng.randint(0, max(0, len(words) - k))
        return f"{sentence()} {' '.join(words[start:start + k])} {sentence()}"

    bench = {f"b{i}": sentence() + " " + sentence() for i in range(20)}
    train = {f"t{i}": with_slice(rng.choice(list(bench.values()))) if i % 3 == 0 else sentence()
             for i in range(150)}
    out = run(DecontaminateConfig(src=str(_jsonl(tmp_path / "t.jsonl", train)),
                                  against=[str(_jsonl(tmp_path / "b.jsonl", bench))], out=str(tmp_path / "o"),
                                  ngram=n))
    want = {k for k, q in train.items() if not _slow_overlap(q, list(bench.values()), n)}
    assert {r["id"] for r in read_rows(out, "dataset")} == want
    assert 0 < len(want) < len(train)  # the random text does overlap sometimes


def test_normalization():
    assert normalize("Find $10{,}000\\,\\text{m}$ -- NOW!") == ["find", "10000", "text", "m", "now"]
    assert normalize("a~b\\quad c") == ["a", "b", "c"]
    assert normalize("10\\,000") == normalize("10,000") == normalize("10000")


def test_cli_and_bad_input(files, tmp_path):
    train, math, gpqa = files
    ok = rlt("data", "decontaminate", train, "--against", math, "--against", gpqa, "--out", tmp_path / "c",
             "--ngram", 8, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert len(read_rows(tmp_path / "c", "dataset")) == 21
    bad = rlt("data", "decontaminate", train, "--out", tmp_path / "d", timeout=300)
    assert bad.returncode == 2 and "--against" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "d").exists()


def test_nothing_left_is_refused(tmp_path):
    same = _jsonl(tmp_path / "s.jsonl", {"a": MATH[0]})
    with pytest.raises(UserError, match="every row overlaps"):
        run(DecontaminateConfig(src=str(same), against=[str(same)], out=str(tmp_path / "o")))
    assert not (tmp_path / "o").exists()


def test_paper_pipeline_decontaminates_before_the_warmup():
    steps = yaml.safe_load((ROOT / "pipelines.yaml").read_text())["paper"]["steps"]
    names = list(steps)
    clean = next(n for n, s in steps.items() if s["command"] == "data decontaminate")
    assert names.index(clean) < names.index("warmup")
    against = steps[clean]["options"]["against"]
    assert {a.strip("${}") for a in against} == {n for n, s in steps.items() if s["command"] == "data import"
                                                  and s["options"]["format"] in ("math500", "aime", "gpqa")}
    for step in ("warmup", "teach", "traces"):
        assert steps[step]["options"]["data"] == f"${{{clean}}}"
