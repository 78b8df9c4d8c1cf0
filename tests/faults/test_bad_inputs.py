"""Bad input across every command: exit 2, one line on stderr naming the problem, nothing written.

One table of cases. Each runs the real CLI against a shared tmp "world" of bad files and finished
artifacts; every file under it (and the shared models and data it reads) must be byte-identical
afterwards, and no new path may appear.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import rlt
from tests.faults.conftest import ONE_THREAD, snapshot

ROWS = {"id": ["a", "b"], "question": ["What is 1 + 2?", "What is 3 + 4?"], "solution": ["3", "7"]}


def _parquet(path: Path, columns: dict) -> None:
    pq.write_table(pa.table(columns), path)


def _build_world(w: Path, teacher: Path, test: Path) -> None:
    """The bad inputs the cases point at, plus finished artifacts that must survive untouched."""
    w.mkdir()
    _parquet(w / "no_solution.parquet", {k: v for k, v in ROWS.items() if k != "solution"})
    _parquet(w / "int_question.parquet", {**ROWS, "question": [1, 2]})
    _parquet(w / "str_reward.parquet", {**ROWS, "explanation": ["x", "y"], "reward": ["high", "low"]})
    _parquet(w / "no_explanation.parquet", ROWS)
    _parquet(w / "traces.parquet", {**ROWS, "explanation": ["1 + 2 = 3", "3 + 4 = 7"]})
    _parquet(w / "null_solution.parquet", {**ROWS, "solution": ["3", None]})
    pq.write_table(pa.table({k: pa.array([], pa.string()) for k in ROWS}), w / "empty.parquet")
    _parquet(w / "bad_gold.parquet", {**ROWS, "answer": ["3", "\\frac{1}{"]})
    (w / "corrupt.parquet").write_bytes(b"PAR1 this is not parquet at all \x00\x01\x02")
    (w / "partial").mkdir()
    _parquet(w / "partial" / "part-00000-1-000000001.parquet", ROWS)
    (w / "not_mapping.yaml").write_text("- a\n- b\n")
    (w / "unknown_key.yaml").write_text("reward:\n  kl_coeff: 3\n")
    (w / "bad.yaml").write_text("lr: [1, 2\n")
    (w / "bad_pipelines.yaml").write_text(json.dumps({"p": {"steps": {"a": {"command": "fly"}}}}))
    (w / "bad_option.yaml").write_text(json.dumps({"p": {"steps": {"a": {"command": "data synth",
                                                                         "options": {"count": 3}}}}}))
    (w / "good_pipelines.yaml").write_text(json.dumps({"p": {"steps": {"a": {"command": "data synth"}}}}))
    (w / "a_file").write_text("not a directory\n")
    _gguf_files(w)
    (w / "no_tokenizer").mkdir()
    for f in ("config.json", "model.safetensors", "generation_config.json"):
        shutil.copy(teacher / f, w / "no_tokenizer" / f)
    shutil.copytree(test, w / "dataset")  # a finished dataset artifact
    from stages.commands.data import SynthConfig, synth

    synth(SynthConfig(out=str(w / "synth8"), n=8, seed=0))  # a finished artifact of another config
    _shards(w, teacher)


def _gguf_files(w: Path) -> None:
    """GGUF files rlt model import refuses: not GGUF, cut off after the header, an architecture transformers
    cannot read (a real GGUF written by the gguf package)."""
    import gguf
    import numpy as np

    (w / "not_gguf.gguf").write_text("llama.cpp? no\n")
    writer = gguf.GGUFWriter(w / "other_arch.gguf", "mamba9")
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    (w / "truncated.gguf").write_bytes((w / "other_arch.gguf").read_bytes()[:40])


def _shards(w: Path, teacher: Path) -> None:
    """Two traces shards that are not parts of one run: sampled at different temperatures."""
    from stages.artifacts.writer import ArtifactWriter
    from stages.commands.generate import GenerateConfig
    from tests.unit.artifacts.test_layout import kind_rows

    rows = kind_rows("traces", 4)
    for name, temperature, shard, part in (("shard0", 0.7, "0/2", rows[:2]), ("shard1-hot", 1.3, "1/2", rows[2:])):
        cfg = GenerateConfig(teacher=str(teacher), data=str(w / "dataset"), out=str(w / name),
                             temperature=temperature, shard=shard)
        with ArtifactWriter(w / name, "traces", cfg, inputs={"teacher": str(teacher)}) as writer:
            writer.write(part)
            writer.finish()


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_teacher, synth_test) -> Path:
    w = tmp_path_factory.mktemp("bad") / "w"
    _build_world(w, tiny_teacher, synth_test)
    return w


# (case id, argv with {w} = world, {T} teacher, {S} student, {P} plain-tag model, {D} data, {E} test data,
#  text the one stderr line must contain)
CASES = [
    ("synth-out-is-file", "data synth --out {w}/a_file --n 4", "is a file"),
    ("synth-other-config", "data synth --out {w}/synth8 --n 9", "another config"),
    ("synth-unknown-key", "data synth --out {w}/new --n 4 digits=3", "unknown key 'digits'"),
    ("synth-malformed-override", "data synth --out {w}/new n", "malformed override 'n'"),
    ("synth-mistyped-override", "data synth --out {w}/new n=many", "'n' expects an integer"),
    ("synth-yaml-not-mapping", "data synth --out {w}/new --config {w}/not_mapping.yaml", "must be a mapping"),
    ("synth-yaml-invalid", "data synth --out {w}/new --config {w}/bad.yaml", "not valid YAML"),
    ("import-missing-file", "data import {w}/nope.parquet --out {w}/new", "nope.parquet"),
    ("import-missing-column", "data import {w}/no_solution.parquet --out {w}/new", "missing column(s) solution"),
    ("import-corrupt", "data import {w}/corrupt.parquet --out {w}/new", "corrupt.parquet"),
    ("import-empty", "data import {w}/empty.parquet --out {w}/new", "0 rows read"),
    ("import-unknown-format", "data import {w}/no_explanation.parquet --out {w}/new --format csvish", "csvish"),
    ("import-unknown-task", "data import {w}/no_explanation.parquet --out {w}/new --task mcq", "unknown task 'mcq'"),
    ("decontaminate-no-against", "data decontaminate {D} --out {w}/new", "--against"),
    ("decontaminate-bad-ngram", "data decontaminate {D} --against {E} --out {w}/new --ngram 0", "--ngram"),
    ("decontaminate-missing-benchmark", "data decontaminate {D} --against {w}/nope.jsonl --out {w}/new",
     "nope.jsonl"),
    ("merge-partial", "data merge {w}/partial {w}/dataset --out {w}/new", "incomplete"),
    ("merge-out-other-kind", "data merge {w}/synth8 --out {w}/dataset", "another config"),
    ("model-out-is-file", "model tiny --out {w}/a_file", "is a file"),
    ("model-unknown-key", "model tiny --out {w}/new hidden_size=64", "unknown key 'hidden_size'"),
    ("model-import-missing", "model import {w}/nope.gguf --out {w}/new", "GGUF file not found"),
    ("model-import-directory", "model import {w}/partial --out {w}/new", "reads one .gguf file"),
    ("model-import-not-gguf", "model import {w}/not_gguf.gguf --out {w}/new", "is not a GGUF file"),
    ("model-import-truncated", "model import {w}/truncated.gguf --out {w}/new", "truncated or corrupt"),
    ("model-import-architecture", "model import {w}/other_arch.gguf --out {w}/new", "architecture mamba9"),
    ("model-import-no-out", "model import {w}/other_arch.gguf", "missing required option --out"),
    ("eval-gguf-model", "eval --model {w}/other_arch.gguf --data {E} --out {w}/new",
     "import it first: rlt model import"),
    ("distill-gguf-model", "distill --model {w}/other_arch.gguf --data {D} --out {w}/new", "is a GGUF file"),
    ("inspect-missing", "inspect {w}/nope", "not found"),
    ("inspect-corrupt", "inspect {w}/corrupt.parquet", "corrupt.parquet"),
    ("inspect-not-artifact", "inspect {w}/no_tokenizer", "not an rlt artifact"),
    ("compact-partial", "data compact {w}/partial", "incomplete"),
    ("compact-not-artifact", "data compact {w}/no_tokenizer", "not an rlt artifact"),
    ("compact-bad-size", "data compact {w}/dataset --max-file-mb 0", "must be positive"),
    ("distill-missing-model", "distill --model {w}/nope --data {D} --out {w}/new --max-steps 1", "model not found"),
    ("distill-no-tokenizer", "distill --model {w}/no_tokenizer --data {D} --out {w}/new --max-steps 1", "no tokenizer"),
    ("distill-missing-column", "distill --model {T} --data {w}/no_solution.parquet --out {w}/new", "solution"),
    ("distill-bad-role", "distill --model {T} --data {D} --out {w}/new --role critic", "--role"),
    ("distill-out-other-kind", "distill --model {T} --data {D} --out {w}/dataset --max-steps 1", "dataset"),
    ("teach-vocab-differs", "teach --teacher {T} --student {P} --data {D} --out {w}/new --max-steps 1", "tokenizers differ"),
    ("teach-unknown-key", "teach --teacher {T} --student {S} --data {D} --out {w}/new --config {w}/unknown_key.yaml",
     "unknown key 'reward.kl_coeff'"),
    ("teach-null-solution", "teach --teacher {T} --student {S} --data {w}/null_solution.parquet --out {w}/new",
     "row 1 has no value in column 'solution'"),
    ("generate-empty", "generate --teacher {T} --data {w}/empty.parquet --out {w}/new", "no rows"),
    ("generate-shard", "generate --teacher {T} --data {D} --out {w}/new --shard 3/2", "--shard 3/2"),
    ("generate-mistyped-column", "generate --teacher {T} --data {w}/int_question.parquet --out {w}/new",
     "column 'question' must be string"),
    ("generate-vocab-differs", "generate --teacher {T} --student {P} --data {D} --out {w}/new --limit 2",
     "tokenizers differ"),
    ("generate-out-other-kind", "generate --teacher {T} --data {D} --out {w}/dataset --limit 2", "dataset artifact"),
    ("score-vocab-differs", "score --teacher {P} --student {T} --data {w}/traces.parquet --out {w}/new",
     "tokenizers differ"),
    ("score-no-explanation", "score --teacher {T} --student {S} --data {w}/no_explanation.parquet --out {w}/new",
     "explanation"),
    ("score-extra-column-mistyped", "score --teacher {T} --student {S} --data {w}/str_reward.parquet --out {w}/new",
     "column 'reward' must be double"),
    ("score-shard", "score --teacher {T} --student {S} --data {w}/traces.parquet --out {w}/new --shard 3/2", "--shard 3/2"),
    ("eval-partial", "eval --model {T} --data {w}/partial --out {w}/new", "incomplete"),
    ("eval-corrupt", "eval --model {T} --data {w}/corrupt.parquet --out {w}/new", "corrupt.parquet"),
    ("eval-missing-model", "eval --model {w}/nope --data {E} --out {w}/new", "model not found"),
    ("eval-out-is-file", "eval --model {T} --data {E} --out {w}/a_file", "is a file"),
    ("eval-out-other-kind", "eval --model {T} --data {E} --out {w}/dataset --limit 2", "dataset artifact"),
    ("eval-shard", "eval --model {T} --data {E} --out {w}/new --shard 3/2", "--shard 3/2"),
    ("eval-unreadable-gold", "eval --model {T} --data {w}/bad_gold.parquet --out {w}/new", "(id b)"),
    ("eval-regrade-not-eval", "eval --regrade {w}/dataset", "not a finished eval artifact"),
    ("eval-unknown-nested-key", "eval --model {T} --data {E} --out {w}/new engine.bogus=1", "engine.bogus"),
    ("run-unknown-command", "run p --file {w}/bad_pipelines.yaml --runs {w}/runs", "command"),
    ("run-unknown-option", "run p --file {w}/bad_option.yaml --runs {w}/runs", "unknown key 'count'"),
    ("run-not-mapping", "run p --file {w}/not_mapping.yaml --runs {w}/runs", "must be a mapping"),
    ("run-unknown-pipeline", "run nope --file {w}/good_pipelines.yaml --runs {w}/runs", "nope"),
    ("run-var-not-yaml", "run p --file {w}/good_pipelines.yaml --runs {w}/runs --var n=[", "is not a YAML value"),
    ("distill-dict-value-not-yaml", "distill --model {T} --data {D} --out {w}/new trl.adam_beta2=[",
     "'trl.adam_beta2' is not a YAML value"),
    ("report-missing-run", "report {w}/nope --out {w}/new", "not found"),
    ("report-out-is-file", "report {w}/dataset --out {w}/a_file", "is a file"),
    # configs mean what they say: a mistyped key gets the nearest one and its file, a bool says so in words
    ("synth-yaml-unknown-key-named-by-file", "data synth --out {w}/new --config {w}/unknown_key.yaml",
     "unknown_key.yaml: unknown key 'reward'"),
    ("teach-unknown-key-suggests", "teach --teacher {T} --student {S} --data {D} --out {w}/new reward.kl_coeff=3",
     "did you mean 'reward.kl_coef'?"),
    ("generate-bool-in-words", "generate --teacher {T} --data {D} --out {w}/new reward.full_kl=maybe",
     "'reward.full_kl' expects true/false (or null: unset), got 'maybe'"),
    ("generate-greedy-copies", "generate --teacher {T} --data {D} --out {w}/new --temperature 0 --num-generations 4",
     "identical copies"),
    ("eval-greedy-copies", "eval --model {T} --data {E} --out {w}/new --temperature 0 --num-generations 4",
     "identical copies"),
    ("distill-trl-managed", "distill --model {T} --data {D} --out {w}/new trl.learning_rate=0.1",
     "'trl.learning_rate' is set by the top-level key 'lr'"),
    ("teach-trl-managed", "teach --teacher {T} --student {S} --data {D} --out {w}/new trl.learning_rate=0.1",
     "'trl.learning_rate' is set by the top-level key 'lr'"),
    ("distill-trl-not-a-number", "distill --model {T} --data {D} --out {w}/new trl.adam_epsilon=tiny",
     "'trl.adam_epsilon' expects a number"),
    ("distill-trl-sub-key-of-a-plain-field", "distill --model {T} --data {D} --out {w}/new trl.optim.x=1",
     "'trl.optim' has no sub-keys (got {'x': 1})"),
    ("teach-trl-sub-key-unknown-field", "teach --teacher {T} --student {S} --data {D} --out {w}/new trl.no_such.x=1",
     "unknown GRPOConfig option 'trl.no_such'"),
    # values checked when the config resolves
    ("distill-negative-lr", "distill --model {T} --data {D} --out {w}/new --lr -1", "--lr must be above 0"),
    ("model-zero-hidden", "model tiny --out {w}/new --hidden 0", "--hidden must be at least 1"),
    ("distill-device-banana", "distill --model {T} --data {D} --out {w}/new --device banana", "--device must be"),
    ("teach-device-gpu", "teach --teacher {T} --student {S} --data {D} --out {w}/new --device gpu",
     "--device must be auto, cpu, cuda, cuda:N or mps, got 'gpu'"),
    ("generate-device-gpu", "generate --teacher {T} --data {D} --out {w}/new --device gpu", "--device must be"),
    ("eval-device-gpu", "eval --model {T} --data {E} --out {w}/new device=gpu", "--device must be"),
    ("score-device-gpu", "score --teacher {T} --student {S} --data {w}/traces.parquet --out {w}/new --device gpu",
     "--device must be"),
    # paths: a mistyped local path is said at once (tests/ exists: not a hub organisation)
    ("distill-mistyped-local-model", "distill --model tests/studnet --data {D} --out {w}/new",
     "model not found: tests/studnet"),
    ("eval-mistyped-local-model", "eval --model tests/studnet --data {E} --out {w}/new", "model not found"),
    ("import-mistyped-local-file", "data import tests/nope.jsonl --out {w}/new", "input not found: tests/nope.jsonl"),
    # outputs are required, never the current directory
    ("synth-no-out", "data synth --n 4", "missing required option --out"),
    ("import-no-out", "data import {w}/no_explanation.parquet", "missing required option --out"),
    ("merge-no-out", "data merge {w}/dataset", "missing required option --out"),
    ("generate-missing-options", "generate --data {D}", "missing required options --teacher, --out"),
    ("report-no-runs", "report", "missing argument RUNS"),
    # merge joins the parts of one run only
    ("merge-other-run", "data merge {w}/shard0 {w}/shard1-hot --out {w}/new", "their configs differ in temperature"),
    # fails after the models load, inside the writer: the output it had created is gone again
    ("teach-invalid-trl-value", ("teach --teacher {T} --student {S} --data {D} --out {w}/new --max-steps 1 "
                                 "trl.optim=no_such_optimizer"), "no_such_optimizer"),
]


def _argv(template: str, paths: dict) -> list[str]:
    return [part.format(**paths) for part in template.split()]


@pytest.mark.parametrize("template,expect", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(template, expect, world, tiny_teacher, tiny_student,
                                                            tiny_plain, synth_train, synth_test):
    paths = {"w": world, "T": tiny_teacher, "S": tiny_student, "P": tiny_plain, "D": synth_train, "E": synth_test}
    watched = [world, tiny_teacher, tiny_student, tiny_plain, synth_train, synth_test]
    before = [snapshot(p) for p in watched]
    tree = sorted(str(p) for p in world.rglob("*"))
    proc = rlt(*_argv(template, paths), env=ONE_THREAD)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, f"exit {proc.returncode}:\n{proc.stderr[-3000:]}"
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert lines[0].startswith("rlt: error: ") and expect in lines[0], lines[0]
    assert sorted(str(p) for p in world.rglob("*")) == tree, "a new file or directory appeared"
    assert [snapshot(p) for p in watched] == before, "an existing file changed"


def test_the_table_covers_every_command():
    import stages.pipelines  # noqa: F401  (rlt run joins the table)
    from stages.commands import COMMANDS

    covered = {" ".join(c[1].split()[:2]) for c in CASES} | {c[1].split()[0] for c in CASES}
    assert set(COMMANDS) <= covered and len(CASES) >= 30
