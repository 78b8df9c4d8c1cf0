"""`rlt teach` end to end on tiny models: files, metrics, resume, batch arithmetic, the end tag."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from stages.artifacts.layout import manifest_path, meta_path, metrics_path
from tests.conftest import ONE_THREAD, rlt

FAST = ["prompts_per_step=2", "num_generations=2", "max_new_tokens=12", "reward_batch_size=8"]
COMPONENTS = ("reward", "reward_std", "sol_logp_mean", "sol_logp_min", "kl_mean", "kl_max", "format_ok",
              "aligned", "completion_length", "kl_ref", "lr", "seconds_per_step")


def _teach_args(teacher, student, data, out, steps, *extra):
    return ["teach", "--teacher", teacher, "--student", student, "--data", data, "--out", out,
            "--max-steps", steps, "--device", "cpu", *FAST, *extra]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_teach_writes_checkpoint_metrics_and_samples(tiny_teacher, tiny_student, synth_train, tmp_path):
    out = tmp_path / "teach"
    rlt(*_teach_args(tiny_teacher, tiny_student, synth_train, out, 2, "save_steps=1", "samples_per_log=3"),
        check=True, env=ONE_THREAD)
    assert sorted(p.name for p in out.iterdir()) == sorted([  # the model; no resumable checkpoints once finished
        ".rlt", "chat_template.jinja", "config.json", "generation_config.json",
        "model.safetensors", "tokenizer.json", "tokenizer_config.json"])
    assert sorted(p.name for p in (out / ".rlt").iterdir()) == ["manifest.json", "metrics.jsonl", "samples.jsonl"]
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["kind"] == "checkpoint" and manifest["training"]["global_step"] == 2
    assert set(manifest["inputs"]) == {"teacher", "student", "data"}
    assert manifest["temperatures"] == {"sampling": 0.7, "reward_teacher": 0.7, "set_apart": False}

    metrics = _jsonl(metrics_path(out))
    assert [m["step"] for m in metrics] == [1, 2]
    for m in metrics:
        for key in COMPONENTS:
            assert isinstance(m[key], float) and math.isfinite(m[key]), (key, m)
        assert 0.0 <= m["format_ok"] <= 1.0 and m["aligned"] == 1.0
    samples = _jsonl(meta_path(out, "samples.jsonl"))
    assert [s["step"] for s in samples] == [1, 1, 1, 2, 2, 2]
    assert all(s["question"].startswith("What is") and isinstance(s["explanation"], str) for s in samples)

    from stages.models.loading import load_model

    assert load_model(str(out), device="cpu").num_parameters() > 0
    again = rlt(*_teach_args(tiny_teacher, tiny_student, synth_train, out, 2, "save_steps=1", "samples_per_log=3"),
                env=ONE_THREAD)
    assert again.returncode == 0 and "already complete" in again.stderr
    assert json.loads(manifest_path(out).read_text())["created"] == manifest["created"]


@pytest.mark.parametrize("extra, expected", [
    (["prompts_per_step=3", "num_generations=2", "grad_accum=4"], "3 x 2 = 6 completions per step"),
    (["trl.learning_rate=0.1"], "'trl.learning_rate' is set by the top-level key 'lr'"),
    (["trl.no_such_option=1"], "unknown GRPOConfig option 'trl.no_such_option'"),
])
def test_teach_refuses_bad_settings(tiny_teacher, tiny_student, synth_train, tmp_path, extra, expected):
    out = tmp_path / "teach"
    proc = rlt("teach", "--teacher", tiny_teacher, "--student", tiny_student, "--data", synth_train,
               "--out", out, *extra)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert not out.exists()


def _reward_fn(model_dir, student_dir):
    from stages.commands.teach import RLTRewardFunc
    from stages.method.reward import RLTReward
    from stages.method.settings import PromptsConfig, RewardConfig
    from stages.models.loading import load_model, load_tokenizer

    tok = load_tokenizer(str(model_dir))
    teacher, student = load_model(str(model_dir), device="cpu"), load_model(str(student_dir), device="cpu")
    scorer = RLTReward(student, tok, RewardConfig(teacher_temperature=0.7), PromptsConfig(), reward_batch_size=4)
    return tok, teacher, scorer, RLTRewardFunc(scorer, tok, samples_per_log=8).bind_model(teacher)


@pytest.mark.parametrize("which", ["tag_tokens", "plain_tags"])
def test_reward_adapter_keeps_the_end_tag(which, tiny_teacher, tiny_student, tiny_plain):
    from stages.method.views import END_EXPLANATION

    model, student = (tiny_teacher, tiny_student) if which == "tag_tokens" else (tiny_plain, tiny_plain)
    tok, teacher, scorer, fn = _reward_fn(model, student)
    assert (len(tok(END_EXPLANATION, add_special_tokens=False)["input_ids"]) == 1) == (which == "tag_tokens")
    q, s = "What is 12 + 30?", "12 + 30 = 42. The answer is \\boxed{42}."
    bodies = ["ones: 2 + 0 = 2, write 2.\n", "tens: 1 + 3 = 4, write 4.\n"]
    texts = [bodies[0] + END_EXPLANATION, bodies[1]]  # the first ends properly, the second does not
    ids = [tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in texts]
    logged = {}
    rewards = fn(prompts=["p", "p"], completions=bodies, completion_ids=ids, question=[q, q], solution=[s, s],
                 log_metric=lambda k, v: logged.__setitem__(k, v))
    samples = fn.take_samples()
    assert [x["format_ok"] for x in samples] == [True, False]
    assert [x["explanation"] for x in samples] == bodies
    assert logged["rlt/format_ok"] == 0.5 and logged["rlt/aligned"] == 1.0
    direct = scorer.score([{"question": q, "solution": s, "completion": t} for t in texts], teacher=teacher)
    assert rewards == pytest.approx([d["reward"] for d in direct])
    assert rewards[1] == pytest.approx(direct[1]["reward"]) and direct[1]["format_ok"] is False


@pytest.mark.parametrize("overrides,expected", [([], 1.1), (["reward.teacher_temperature=0.5"], 0.5)])
def test_the_reward_scores_at_the_sampling_temperature(overrides, expected, tiny_teacher, tiny_student, synth_train):
    from stages.commands import make_config, teach

    cfg = make_config("teach", overrides=["temperature=1.1", *overrides], options={  # resolved and finalized once
        "teacher": str(tiny_teacher), "student": str(tiny_student), "data": str(synth_train), "device": "cpu",
        "out": "unused"})
    _, _, scorer = teach.load(cfg)
    assert scorer.reward.teacher_temperature == expected
