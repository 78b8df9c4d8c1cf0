"""LoRA on a tied-embedding model (`rlt model tiny` is tied, as are Qwen2.5 0.5B-3B): what merges is what trained.

The trained policy is the base with the adapter applied unmerged (PEFT's forward: an embedding
adapter changes the input lookup only). Merged outputs and adapter directories loaded as models must
give its logits; a plain `merge_and_unload` on the tied base does not (the head moves too), which
shows the comparison can fail. A moved adapter finds a base moved with it; a missing base is an
error naming the file that named it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from stages.artifacts.layout import manifest_path
from stages.errors import UserError
from tests.conftest import ONE_THREAD, rlt

TARGETS = "lora.target_modules=embed_tokens,q_proj"


def _distill(model, data, out, *extra):
    return rlt("distill", "--model", model, "--data", data, "--out", out, "--preset", "tiny", "--max-steps", 6,
               "--batch-size", 8, "--device", "cpu", "lora.r=4", "lora.alpha=16", "lr=0.02", *extra, env=ONE_THREAD)


@pytest.fixture(scope="module")
def runs(tiny_teacher, synth_train, tmp_path_factory):
    root = tmp_path_factory.mktemp("tied")
    adapter, merged = root / "adapter", root / "merged"
    for out, save in ((adapter, "adapter"), (merged, "merged")):
        proc = _distill(tiny_teacher, synth_train, out, TARGETS, f"lora.save={save}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "untied" in proc.stderr
    return adapter, merged


def _ids(tiny_teacher):
    import torch

    from stages.models.loading import load_tokenizer

    tok = load_tokenizer(str(tiny_teacher))
    text = "What is 17 + 25? ones: 7 + 5 = 12, write 2 carry 1. tens: 1 + 2 + 1 = 4. The sum is 42."
    return torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])


def _logits(model, ids):
    import torch

    with torch.no_grad():
        return model.eval()(input_ids=ids).logits.float()


def _trained(tiny_teacher, adapter):
    """The trained policy: the tied base with the adapter applied unmerged."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(tiny_teacher))
    assert base.get_input_embeddings().weight is base.get_output_embeddings().weight  # the base is tied
    return PeftModel.from_pretrained(base, str(adapter))


def test_merged_output_and_adapter_dir_compute_the_trained_policy(runs, tiny_teacher, one_thread):
    import torch
    from transformers import AutoModelForCausalLM

    from stages.models.loading import load_model

    adapter, merged = runs
    ids = _ids(tiny_teacher)
    want = _logits(_trained(tiny_teacher, adapter), ids)
    base = _logits(AutoModelForCausalLM.from_pretrained(str(tiny_teacher)), ids)
    assert (want - base).abs().max() > 1e-2  # the adapters trained something
    naive = _logits(_trained(tiny_teacher, adapter).merge_and_unload(), ids)
    assert (naive - want).abs().max() > 1e-3  # merging into the tied weight moves the head too
    for got in (_logits(load_model(str(adapter), device="cpu"), ids),
                _logits(AutoModelForCausalLM.from_pretrained(str(merged)), ids)):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    plain = AutoModelForCausalLM.from_pretrained(str(merged))
    assert plain.get_input_embeddings().weight is not plain.get_output_embeddings().weight
    assert torch.equal(plain.get_output_embeddings().weight,
                       AutoModelForCausalLM.from_pretrained(str(tiny_teacher)).get_input_embeddings().weight)


def test_an_adapter_that_leaves_the_embeddings_alone_stays_tied(tiny_teacher, synth_train, tmp_path):
    from stages.models.loading import load_model

    out = tmp_path / "adapter"
    proc = _distill(tiny_teacher, synth_train, out, "lora.target_modules=q_proj", "lora.save=adapter")
    assert proc.returncode == 0 and "untied" not in proc.stderr, proc.stderr[-2000:]
    model = load_model(str(out), device="cpu")
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight


@pytest.mark.parametrize("command", ["distill", "teach"])
def test_lm_head_targets_are_refused_in_one_line(command, tiny_teacher, tiny_student, synth_train, tmp_path):
    out = tmp_path / "out"
    if command == "distill":
        proc = _distill(tiny_teacher, synth_train, out, "lora.target_modules=lm_head,q_proj")
    else:
        proc = rlt("teach", "--teacher", tiny_teacher, "--student", tiny_student, "--data", synth_train, "--out", out,
                   "--max-steps", 1, "--device", "cpu", "lora.r=4", "lora.target_modules=lm_head", env=ONE_THREAD)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "lm_head is the output head" in lines[0], proc.stderr
    assert not out.exists()


def test_teach_unties_a_tied_teacher_it_adapts_the_embeddings_of(tiny_teacher, tiny_student, synth_train):
    from stages.commands import make_config, teach
    from stages.models.adapters import tied_embeddings

    cfg = make_config("teach", options={"teacher": str(tiny_teacher), "student": str(tiny_student),
                                        "data": str(synth_train), "out": "unused", "device": "cpu"},
                      overrides=["lora.r=4", TARGETS, "prompts_per_step=2", "num_generations=2"])
    _, teacher, _ = teach.load(cfg)
    assert not tied_embeddings(teacher) and teacher.config.tie_word_embeddings is False


def test_an_adapter_moved_with_its_base_finds_it(runs, tiny_teacher, tmp_path, one_thread):
    import torch

    from stages.models.loading import load_model

    adapter, _ = runs
    conf = json.loads((adapter / "adapter_config.json").read_text())
    entry = conf["base_model_name_or_path"]
    assert not entry.startswith("/") and (adapter / entry).resolve() == tiny_teacher.resolve()
    # move both, keeping their relative places
    moved_root, base = tmp_path / "elsewhere", (adapter / entry).resolve()
    common = Path(os.path.commonpath([adapter.resolve(), base]))
    rel_base, rel_adapter = base.relative_to(common), adapter.resolve().relative_to(common)
    shutil.copytree(tiny_teacher, moved_root / rel_base)
    shutil.copytree(adapter, moved_root / rel_adapter)
    moved = moved_root / rel_adapter
    manifest = json.loads(manifest_path(moved).read_text())
    manifest["lora"]["base_model"] = "/nowhere/recorded/in/the/manifest"  # adapter_config.json decides
    manifest_path(moved).write_text(json.dumps(manifest))
    ids = _ids(tiny_teacher)
    torch.testing.assert_close(_logits(load_model(str(moved), device="cpu"), ids),
                               _logits(load_model(str(adapter), device="cpu"), ids), atol=1e-6, rtol=0)

    shutil.rmtree(moved_root / rel_base)  # the base did not come along: the error names the file
    with pytest.raises(UserError) as e:
        load_model(str(moved), device="cpu")
    assert str(moved / "adapter_config.json") in str(e.value) and entry in str(e.value)
