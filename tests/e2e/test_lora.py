"""LoRA (PEFT) in `rlt distill`: merged and adapter outputs, merge arithmetic, adapter dirs as model inputs."""

import json

import pytest
from safetensors.torch import load_file

from stages.artifacts.layout import manifest_path
from stages.errors import UserError
from stages.models.loading import check_model_path, load_model
from stages.training import lora
from tests.conftest import ONE_THREAD, rlt

FULL_FILES = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
              "tokenizer_config.json", "chat_template.jinja", ".rlt"}  # .rlt/: manifest.json, metrics.jsonl
ADAPTER_FILES = {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "chat_template.jinja", ".rlt"}  # .rlt/: manifest.json, metrics.jsonl


def _distill(model, data, out, *extra):
    return rlt("distill", "--model", model, "--data", data, "--out", out, "--preset", "tiny", "--max-steps", 2,
               "--batch-size", 4, "--device", "cpu", "logging_steps=1", *extra, env=ONE_THREAD)


@pytest.fixture(scope="module")
def adapter_run(tiny_teacher, synth_train, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora") / "adapter"
    proc = _distill(tiny_teacher, synth_train, out, "lora.r=4", "lora.alpha=8", "lora.dropout=0",
                    "lora.target_modules=q_proj,v_proj,down_proj", "lora.save=adapter")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_adapter_output_records_its_base_and_merges_as_w_plus_scaled_ba(adapter_run, tiny_teacher):
    import torch
    from transformers import AutoModelForCausalLM

    assert {p.name for p in adapter_run.iterdir()} == ADAPTER_FILES
    manifest = json.loads(manifest_path(adapter_run).read_text())
    assert manifest["global_step"] == 2 and manifest["config"]["lora"]["r"] == 4
    assert manifest["lora"]["save"] == "adapter" and manifest["lora"]["base_model"] == str(tiny_teacher.resolve())
    conf = json.loads((adapter_run / "adapter_config.json").read_text())
    entry = conf["base_model_name_or_path"]  # relative to the adapter: the pair can move together
    assert entry.startswith(("./", "../")) and (adapter_run / entry).resolve() == tiny_teacher.resolve()
    assert conf["r"] == 4

    # independent merge: W' = W + (alpha / r) * B @ A for every adapted weight; the rest untouched
    ab = load_file(str(adapter_run / "adapter_model.safetensors"))
    base = AutoModelForCausalLM.from_pretrained(tiny_teacher).state_dict()
    merged = load_model(str(adapter_run), device="cpu").state_dict()
    adapted = {k.split("base_model.model.", 1)[1].replace(".lora_A.weight", ".weight")
               for k in ab if ".lora_A." in k}
    assert len(adapted) == 3 * AutoModelForCausalLM.from_pretrained(tiny_teacher).config.num_hidden_layers
    for name in adapted:
        prefix = "base_model.model." + name.removesuffix(".weight")
        delta = (8 / 4) * ab[f"{prefix}.lora_B.weight"] @ ab[f"{prefix}.lora_A.weight"]
        assert delta.abs().max() > 0  # B left its zero init: it trained
        torch.testing.assert_close(merged[name], base[name] + delta)
    for name in base.keys() - adapted:
        assert torch.equal(merged[name], base[name]), name


def test_adapter_dir_is_accepted_where_a_model_is(adapter_run, synth_test, tmp_path):
    check_model_path(str(adapter_run))
    out = tmp_path / "eval"
    proc = rlt("eval", "--model", adapter_run, "--data", synth_test, "--out", out, "--max-new-tokens", 8,
               "engine.device=cpu", env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(manifest_path(out).read_text())["rows"] == 16


def test_adapter_without_its_base_is_one_clear_error(adapter_run, tmp_path):
    import shutil

    moved = tmp_path / "adapter"
    shutil.copytree(adapter_run, moved)
    conf = json.loads((moved / "adapter_config.json").read_text())
    conf["base_model_name_or_path"] = str(tmp_path / "gone")
    (moved / "adapter_config.json").write_text(json.dumps(conf))
    manifest = json.loads(manifest_path(moved).read_text())
    manifest["lora"]["base_model"] = str(tmp_path / "gone")
    manifest_path(moved).write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="base model of adapter .*model not found"):
        check_model_path(str(moved))


def test_merged_output_loads_as_a_plain_model_with_only_adapted_weights_changed(tiny_teacher, synth_train,
                                                                                 tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path / "merged"
    proc = _distill(tiny_teacher, synth_train, out, "lora.r=4", "lora.target_modules=q_proj")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert {p.name for p in out.iterdir()} == FULL_FILES
    assert json.loads(manifest_path(out).read_text())["lora"]["save"] == "merged"
    model = AutoModelForCausalLM.from_pretrained(out).state_dict()
    base = AutoModelForCausalLM.from_pretrained(tiny_teacher).state_dict()
    assert model.keys() == base.keys()
    changed = {k for k in base if not torch.equal(model[k], base[k])}
    assert changed and all(k.endswith("self_attn.q_proj.weight") for k in changed)


@pytest.mark.parametrize("override,message", [
    ("lora.target_modules=no_such_proj", "match no module of the model"),
    ("lora.dropout=1.5", "lora.dropout must be in"),
    ("lora.save=both", "lora.save must be one of merged, adapter"),
])
def test_bad_lora_options_are_refused_before_the_output(override, message, tiny_teacher, synth_train, tmp_path):
    from stages.commands import distill
    from stages.config import resolve

    cfg = resolve(distill.DistillConfig, options={"model": str(tiny_teacher), "data": str(synth_train),
                                                  "out": str(tmp_path / "out"), "device": "cpu"},
                  overrides=["lora.r=4", override])
    with pytest.raises(UserError, match=message):
        distill.run(cfg)
    assert not (tmp_path / "out").exists()


def test_qlora_without_cuda_exits_2_with_one_line(tiny_teacher, synth_train, tmp_path):
    proc = _distill(tiny_teacher, synth_train, tmp_path / "out", "lora.r=4", "lora.qlora=true")
    assert proc.returncode == 2 and "lora.qlora needs a CUDA GPU" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and not (tmp_path / "out").exists()


def test_lora_options_without_a_rank_are_refused():
    with pytest.raises(UserError, match="set lora.r > 0"):
        lora.validate(lora.LoraConfig(r=0, save="adapter"), on_cuda=False)
    lora.validate(lora.LoraConfig(r=0), on_cuda=False)  # the default: full fine-tuning


def test_qlora_needs_bitsandbytes_on_cuda(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    with pytest.raises(UserError, match="pip install bitsandbytes"):
        lora.validate(lora.LoraConfig(r=4, qlora=True), on_cuda=True)


# ----------------------------------------------------------------------------- rlt teach

TEACH_FAST = ["prompts_per_step=2", "num_generations=2", "max_new_tokens=12", "reward_batch_size=8"]


def test_teach_reward_uses_the_adapted_policy_and_grpo_the_base(tiny_teacher, tiny_student, synth_train, tmp_path,
                                                                caplog, one_thread):
    import copy
    import logging

    import torch

    from stages.artifacts.read import read_rows
    from stages.commands import teach
    from stages.config import resolve
    from stages.method.views import END_EXPLANATION

    cfg = teach.finalize_config(resolve(  # finalized as teach.run finalizes it: the reward's teacher temperature
        teach.TeachConfig, options={"teacher": str(tiny_teacher), "student": str(tiny_student),
                                    "data": str(synth_train), "out": str(tmp_path / "t"), "device": "cpu",
                                    "max_steps": 1},
        overrides=[*TEACH_FAST, "lora.r=4", "sync_ref_model=true"]))
    batch = teach.validate(cfg)
    tok, teacher, scorer = teach.load(cfg)
    rows = read_rows(str(synth_train), "dataset")[:2]
    with caplog.at_level(logging.INFO, logger="stages.commands.teach"):
        trainer, reward_fn = teach.make_trainer(cfg, tok, teacher, scorer, rows, batch)
    assert "reference syncing (sync_ref_model) is off" in caplog.text and not trainer.args.sync_ref_model
    policy = trainer.accelerator.unwrap_model(trainer.model)
    assert trainer.ref_model is None and list(policy.peft_config) == ["default"]  # no second copy of weights
    torch.manual_seed(0)
    for name, p in policy.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.5)  # adapters away from their zero init

    ids = [tok(r["reasoning_trace"] + END_EXPLANATION, add_special_tokens=False)["input_ids"] for r in rows]
    got = reward_fn(prompts=None, completions=None, completion_ids=ids, question=[r["question"] for r in rows],
                    solution=[r["solution"] for r in rows])
    scored_rows = [{"question": r["question"], "solution": r["solution"], "completion": reward_fn.completion_text(i)}
                   for r, i in zip(rows, ids)]
    merged = copy.deepcopy(policy).merge_and_unload()
    with torch.no_grad():
        adapted = [r["reward"] for r in scorer.score(scored_rows, teacher=merged)]
        with policy.disable_adapter():  # what TRL's reference pass sees
            base = [r["reward"] for r in scorer.score(scored_rows, teacher=policy)]
    fresh = [r["reward"] for r in scorer.score(scored_rows, teacher=teach.load(cfg)[1])]
    assert got == pytest.approx(adapted, abs=1e-5)
    assert base == pytest.approx(fresh, abs=1e-5) and max(abs(a - b) for a, b in zip(got, base)) > 1e-3


def test_teach_with_lora_writes_a_merged_teacher(tiny_teacher, tiny_student, synth_train, tmp_path):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "teach"
    proc = rlt("teach", "--teacher", tiny_teacher, "--student", tiny_student, "--data", synth_train, "--out", out,
               "--max-steps", 2, "--device", "cpu", "--preset", "tiny", *TEACH_FAST, "lora.r=4", env=ONE_THREAD)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "reference syncing (sync_ref_model) is off" in " ".join(proc.stderr.split())  # tiny syncs without LoRA
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    assert not (out / "adapter_config.json").exists()
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["training"]["global_step"] == 2 and manifest["lora"]["save"] == "merged"
    assert manifest["lora"]["base_model"] == str(tiny_teacher.resolve())
    assert AutoModelForCausalLM.from_pretrained(out).num_parameters() == \
        AutoModelForCausalLM.from_pretrained(tiny_teacher).num_parameters()
