"""`rlt eval` on tiny models: the eval artifact, resume, shards, bad inputs, and that training helps."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from stages.artifacts.layout import read_manifest, summary_path
from stages.artifacts.read import parts_of, read_rows
from stages.artifacts.schemas import SCHEMAS
from stages.commands import evaluate
from stages.commands.evaluate import EvalConfig
from tests.conftest import rlt

# ----------------------------------------------------------------------------- e2e on the tiny model


def test_cli_eval_writes_artifact_and_summary(tiny_teacher, synth_test, tmp_path):
    out = tmp_path / "eval"
    proc = rlt("eval", "--model", tiny_teacher, "--data", synth_test, "--out", out,
               "--max-new-tokens", "12", check=True)
    assert "accuracy" in proc.stdout and "synth-test" in proc.stdout
    names = {p.name for p in out.iterdir()}
    assert names == {".rlt", *(p.name for p in parts_of(out))} and len(parts_of(out)) == 1
    assert {p.name for p in (out / ".rlt").iterdir()} == {"manifest.json", "summary.json"}
    rows = read_rows(out, "eval")
    assert len(rows) == 16 and {r["sample"] for r in rows} == {0}
    assert set(SCHEMAS["eval"].names) <= set(rows[0]) and "source" in rows[0]
    assert {r["task"] for r in rows} == {"addition"} and {r["model"] for r in rows} == {str(tiny_teacher)}
    test_rows = {r["id"]: r for r in read_rows(synth_test, "dataset")}
    assert {r["id"] for r in rows} == set(test_rows)
    assert all(r["answer"] == test_rows[r["id"]]["answer"] for r in rows)
    assert all(0 < r["response_tokens"] <= 12 for r in rows)
    summary = json.loads(summary_path(out).read_text())["models"][str(tiny_teacher)]
    mean = sum(r["correct"] for r in rows) / len(rows)
    assert summary["overall"]["accuracy"] == pytest.approx(mean)
    assert summary["benchmarks"]["synth-test"]["n"] == 16
    assert summary["overall"]["truncation_rate"] == pytest.approx(sum(r["truncated"] for r in rows) / 16)
    assert read_manifest(out)["kind"] == "eval" and read_manifest(out)["rows"] == 16
    # same command again: nothing regenerated
    before = sorted(p.name for p in parts_of(out))
    again = rlt("eval", "--model", tiny_teacher, "--data", synth_test, "--out", out, "--max-new-tokens", "12",
                check=True)
    assert "already complete" in again.stderr and sorted(p.name for p in parts_of(out)) == before


def test_cli_bad_inputs_exit_2_without_output(tiny_teacher, synth_test, tmp_path):
    out = tmp_path / "eval"
    proc = rlt("eval", "--model", tmp_path / "nope", "--data", synth_test, "--out", out)
    assert proc.returncode == 2 and "model not found" in proc.stderr and "Traceback" not in proc.stderr
    proc = rlt("eval", "--model", tiny_teacher, "--data", synth_test, "--out", out, "--num-generations", "2")
    assert proc.returncode == 2 and "temperature" in proc.stderr
    proc = rlt("eval", "--model", tiny_teacher, "--data", synth_test, "--out", out, "engine.name=tpu")
    assert proc.returncode == 2 and "unknown --engine" in proc.stderr
    assert not out.exists()


class _Killed(Exception):
    pass


def test_resume_after_kill_regenerates_nothing_done(tiny_teacher, synth_test, tmp_path, monkeypatch):
    from stages.engines import hf

    calls: list[list[str]] = []
    real = hf.HFEngine.generate

    def generate(self, prompts, **kw):
        calls.append(list(prompts))
        if fail_on is not None and len(calls) == fail_on:
            raise _Killed()
        return real(self, prompts, **kw)

    monkeypatch.setattr(hf.HFEngine, "generate", generate)
    cfg = EvalConfig(models=[str(tiny_teacher)], data=str(synth_test), out=str(tmp_path / "e"), max_new_tokens=8)
    cfg.engine.batch_size = 6
    fail_on = 2
    with pytest.raises(_Killed):
        evaluate.run(cfg)
    out = Path(cfg.out)
    assert read_manifest(out) is None and len(parts_of(out)) == 1
    first = {r["id"] for r in pq.read_table(parts_of(out)[0]).to_pylist()}
    assert len(first) == 6
    calls.clear()
    fail_on = None
    evaluate.run(cfg)
    assert sum(len(c) for c in calls) == 10  # only the 10 unfinished questions
    rows = read_rows(out, "eval")
    assert len(rows) == 16 and len({r["id"] for r in rows}) == 16


def test_shards_partition_the_rows(tiny_teacher, synth_test, tmp_path):
    ids = []
    for i in range(2):
        cfg = EvalConfig(models=[str(tiny_teacher)], data=str(synth_test), out=str(tmp_path / f"s{i}"),
                         max_new_tokens=4, shard=f"{i}/2")
        ids.append({r["id"] for r in read_rows(evaluate.run(cfg), "eval")})
    assert ids[0] and ids[1] and not ids[0] & ids[1]
    assert ids[0] | ids[1] == {r["id"] for r in read_rows(synth_test, "dataset")}


def test_a_model_retrained_in_place_is_a_changed_input(tiny_teacher, synth_test, tmp_path):
    """An eval of a checkpoint path is not 'complete' once another model was written at that path."""
    from stages.artifacts.state import output_state
    from stages.commands.tinymodel import TinyModelConfig
    from stages.commands.tinymodel import run as make_model
    from stages.errors import UserError

    model = make_model(TinyModelConfig(out=str(tmp_path / "m"), seed=0, tokenizer=str(tiny_teacher)))
    cfg = EvalConfig(models=[str(model)], data=str(synth_test), out=str(tmp_path / "ev"), max_new_tokens=4, limit=3)
    evaluate.run(cfg)
    assert output_state(cfg.out).complete  # the recorded inputs still match
    make_model(TinyModelConfig(out=str(model), seed=1, tokenizer=str(tiny_teacher), force=True))
    state = output_state(cfg.out)  # as `rlt run` asks: recorded inputs against their current hashes
    assert not state.complete and any(f"input models[0] ({model}) changed" in d for d in state.differs)
    with pytest.raises(UserError, match=r"models\[0\]"):
        evaluate.run(cfg)
    evaluate.run(dataclasses.replace(cfg, force=True))
    assert output_state(cfg.out).complete


def test_two_models_and_samples(tiny_teacher, tiny_student, synth_test, tmp_path):
    cfg = EvalConfig(models=[str(tiny_teacher), str(tiny_student)], data=str(synth_test),
                     out=str(tmp_path / "cmp"), max_new_tokens=6, num_generations=3, temperature=1.0, limit=5)
    out = evaluate.run(cfg)
    rows = read_rows(out, "eval")
    assert len(rows) == 2 * 5 * 3
    summary = evaluate.read_summary(out)["models"]
    assert set(summary) == {str(tiny_teacher), str(tiny_student)}
    for model, s in summary.items():
        mine = [r for r in rows if r["model"] == model]
        assert sorted({r["sample"] for r in mine}) == [0, 1, 2]
        assert s["overall"]["pass@1"] == pytest.approx(sum(r["correct"] for r in mine) / len(mine))
        assert {"pass@2", "pass@3"} <= set(s["overall"]) and s["overall"]["num_generations"] == 3
        assert s["overall"]["pass@3"] >= s["overall"]["pass@2"] >= s["overall"]["pass@1"]
    # samples differ: sampling, not greedy
    by_q = {}
    for r in rows:
        by_q.setdefault((r["model"], r["id"]), set()).add(r["response"])
    assert any(len(v) > 1 for v in by_q.values())


# ----------------------------------------------------------------------------- training helps

SYSTEM = "Add the numbers."


def _sft(base: Path, rows: list[dict], out: Path, steps: int) -> Path:
    """Brief completion-only SFT of `base` on solution-only student examples (TRL SFTTrainer)."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from stages.method import views as formats
    from stages.models.loading import load_model, load_tokenizer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # far faster than 2 contended threads for a 0.5M-parameter model
    try:
        tok, model = load_tokenizer(str(base)), load_model(str(base), device="cpu")
        ex = [formats.student_example(tok, SYSTEM, r["question"], r["solution"], None) for r in rows]
        args = SFTConfig(output_dir=str(out), max_steps=steps, per_device_train_batch_size=16, learning_rate=3e-3,
                         lr_scheduler_type="constant", bf16=False, use_cpu=True, gradient_checkpointing=False,
                         completion_only_loss=True, report_to=[], save_strategy="no", seed=0,
                         dataloader_num_workers=0, disable_tqdm=True)
        trainer = SFTTrainer(model=model, args=args, processing_class=tok,
                             train_dataset=Dataset.from_list([{"prompt": p, "completion": c} for p, c in ex]))
        trainer.train()
        trainer.save_model(str(out))
        tok.save_pretrained(str(out))
    finally:
        torch.set_num_threads(threads)
    return out


def test_trained_model_scores_higher_than_untrained(tiny_student, tmp_path):
    """Brief SFT on 32 short addition problems: eval of those problems must rank trained above untrained."""
    from stages.artifacts.writer import ArtifactWriter
    from stages.method import tasks

    rows = tasks.synth_rows(32, seed=0, split="train", min_digits=1, max_digits=2)
    data = tmp_path / "data"
    with ArtifactWriter(data, "dataset", EvalConfig(), key=("id",)) as w:
        w.write(rows)
        w.finish()
    trained = _sft(tiny_student, rows, tmp_path / "trained", steps=100)
    cfg = EvalConfig(models=[str(tiny_student), str(trained)], data=str(data), out=str(tmp_path / "eval"),
                     max_new_tokens=32)
    cfg.prompts.student_system = SYSTEM
    cfg.engine.batch_size = 32
    summary = evaluate.read_summary(evaluate.run(cfg))["models"]
    untrained_acc = summary[str(tiny_student)]["overall"]["accuracy"]
    trained_acc = summary[str(trained)]["overall"]["accuracy"]
    assert trained_acc > untrained_acc
    assert trained_acc >= 0.25, f"trained accuracy {trained_acc:.2f} is barely above chance"
