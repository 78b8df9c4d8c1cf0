"""End-to-end `rlt distill` on the tiny model (CPU): files, reload, loss masking, resume, bad inputs."""

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stages.artifacts.layout import manifest_path, metrics_path
from stages.commands import distill
from stages.config import resolve
from stages.errors import UserError
from stages.method.views import BEGIN_SOLUTION, BEGIN_THOUGHT, END_EXPLANATION, END_SOLUTION
from tests.conftest import rlt

OUTPUT_FILES = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                "tokenizer_config.json", "chat_template.jinja", ".rlt"}  # .rlt/: manifest.json, metrics.jsonl


def _cfg(model, data, out, **kw):
    base = {"model": str(model), "data": str(data), "out": str(out), "device": "cpu", "batch_size": 4,
            "max_steps": 3, "save_steps": 2, "logging_steps": 1, "lr": 3e-3}
    return resolve(distill.DistillConfig, options={**base, **kw})


def test_student_checkpoint_files_reload_and_rerun(tiny_teacher, synth_train, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "student"
    args = ["distill", "--model", tiny_teacher, "--data", synth_train, "--out", out, "--preset", "tiny",
            "--max-steps", 3, "--batch-size", 4, "--eval-split", 0.1, "save_steps=2", "logging_steps=1"]
    rlt(*args, check=True)
    assert {p.name for p in out.iterdir()} == OUTPUT_FILES  # intermediate checkpoints removed at the end
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["kind"] == "checkpoint" and manifest["global_step"] == 3 and manifest["role"] == "student"
    assert manifest["config"]["lr"] == 3e-3 and manifest["rows_too_long"] == 0
    assert manifest["train_rows"] + manifest["eval_rows"] == 64 and 0 < manifest["eval_rows"] < 16
    records = [json.loads(line) for line in metrics_path(out).read_text().splitlines()]
    metrics = [m for m in records if "loss" in m]
    assert [m["step"] for m in metrics] == [1, 2, 3]
    assert all(m["loss"] > 0 and m["lr"] is not None and m["tokens_per_s"] > 0 for m in metrics)
    assert 2 in [m["step"] for m in records if "eval_loss" in m]  # eval every save_steps

    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_teacher)
    assert model.generation_config.eos_token_id == tok.eos_token_id
    assert model.generation_config.pad_token_id == tok.pad_token_id != tok.eos_token_id
    assert tok.chat_template and tok.chat_template == AutoTokenizer.from_pretrained(tiny_teacher).chat_template
    assert not torch.equal(model.model.embed_tokens.weight, base.model.embed_tokens.weight)  # it trained
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 12 + 34?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    gen = model.generate(**ids, max_new_tokens=8, do_sample=False)
    assert gen.shape[1] > ids["input_ids"].shape[1]

    again = rlt(*args)  # complete output: reported and left alone
    assert again.returncode == 0 and "already complete" in again.stderr
    assert json.loads(manifest_path(out).read_text())["created"] == manifest["created"]


def _labels_of(cfg):
    prep = distill.prepare(cfg)
    trainer = distill.make_trainer(prep)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    return prep, batch


@pytest.mark.parametrize("role,no_expl,model", [("student", False, "tiny_teacher"), ("teacher", False, "tiny_teacher"),
                                                 ("student", True, "tiny_teacher"), ("teacher", False, "tiny_plain")])
def test_loss_only_on_the_completion(role, no_expl, model, synth_train, tmp_path, request):
    cfg = _cfg(request.getfixturevalue(model), synth_train, tmp_path / "o", role=role, no_explanation=no_expl)
    prep, batch = _labels_of(cfg)
    tok = prep.tok
    for i in range(4):
        ex = prep.train[i]
        n_prompt = len(tok(ex["prompt"], add_special_tokens=False).input_ids)
        n_all = len(tok(ex["prompt"] + ex["completion"], add_special_tokens=False).input_ids)
        ids, labels = batch["input_ids"][i], batch["labels"][i]
        assert (labels[:n_prompt] == -100).all()  # system, question (and the prefilled solution) carry no loss
        assert (labels[n_prompt:n_all] == ids[n_prompt:n_all]).all()  # every completion token does
        assert (labels[n_all:] == -100).all()  # padding
        learned = tok.decode(ids[n_prompt:n_all])
        assert learned == ex["completion"] and learned.endswith(tok.eos_token)
        if role == "teacher":
            assert BEGIN_SOLUTION not in learned and learned.endswith(END_EXPLANATION + tok.eos_token)
            assert ex["prompt"].endswith(END_SOLUTION + "\n\n<|begin_of_explanation|>\n\n")
        elif no_expl:
            assert learned.startswith(BEGIN_SOLUTION) and BEGIN_THOUGHT not in learned
        else:
            assert learned.startswith(BEGIN_THOUGHT) and END_SOLUTION in learned


def test_resume_after_interruption_reaches_the_same_step(tiny_teacher, synth_train, tmp_path):
    from transformers import TrainerCallback

    class Interrupt(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 3:
                raise KeyboardInterrupt

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        distill.run(_cfg(tiny_teacher, synth_train, out, max_steps=5), callbacks=(Interrupt(),))
    assert not manifest_path(out).exists() and (out / "checkpoints" / "checkpoint-2").is_dir()
    distill.run(_cfg(tiny_teacher, synth_train, out, max_steps=5))
    manifest = json.loads(manifest_path(out).read_text())
    assert manifest["global_step"] == 5 and manifest["resumed_from"] == "checkpoint-2"
    steps = [json.loads(line)["step"] for line in metrics_path(out).read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]  # the step logged after checkpoint-2 was replaced, not duplicated


def test_long_rows_are_counted_not_cut(tiny_teacher, synth_train, tmp_path):
    cfg = _cfg(tiny_teacher, synth_train, tmp_path / "o")
    tok = distill.load_tokenizer(str(tiny_teacher))
    examples, lengths = distill.build_examples(cfg, tok, distill.load_rows(cfg))
    cfg.max_length = sorted(lengths)[len(lengths) // 2]
    kept, too_long = distill.drop_long(cfg, examples, lengths)
    assert too_long == sum(n > cfg.max_length for n in lengths) > 0 and len(kept) == len(examples) - too_long
    cfg.long_rows = "error"
    with pytest.raises(UserError, match="exceed max_length"):
        distill.drop_long(cfg, examples, lengths)



def _bad(tmp_path, tiny_teacher, synth_train):
    no_trace = tmp_path / "no_trace.parquet"
    pq.write_table(pa.table({"question": ["1 + 2?"], "solution": ["3"]}), no_trace)
    no_tok = tmp_path / "no_tok"
    shutil.copytree(tiny_teacher, no_tok)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        (no_tok / f).unlink()
    return {
        "missing column": (["--model", tiny_teacher, "--data", no_trace], "reasoning_trace"),
        "no tokenizer": (["--model", no_tok, "--data", synth_train], "no tokenizer"),
        "unknown trl option": (["--model", tiny_teacher, "--data", synth_train, "trl.not_an_option=1"],
                               "not_an_option"),
    }


@pytest.mark.parametrize("case", ["missing column", "no tokenizer", "unknown trl option"])
def test_bad_inputs_exit_2_with_one_line(case, tmp_path, tiny_teacher, synth_train):
    args, needle = _bad(tmp_path, tiny_teacher, synth_train)[case]
    out = tmp_path / "out"
    proc = rlt("distill", *args, "--out", out, "--max-steps", 1)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("rlt: error:")]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in proc.stderr
    assert not out.exists()  # no half-written artifact


def test_padding_free_matches_padded_loss_and_saves_plain_sdpa(tiny_teacher, synth_train, tmp_path):
    grads = {}
    for pf in (False, True):
        prep = distill.prepare(_cfg(tiny_teacher, synth_train, tmp_path / f"o{pf}", padding_free=pf))
        trainer = distill.make_trainer(prep)
        batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
        assert ("attention_mask" in batch) != pf and batch["input_ids"].shape[0] == (1 if pf else 4)
        trainer.model.eval()  # no dropout: the two layouts must agree exactly
        loss = trainer.compute_loss(trainer.model, dict(batch))
        loss.backward()
        grads[pf] = (loss.item(), trainer.model.model.embed_tokens.weight.grad.clone())
    assert abs(grads[True][0] - grads[False][0]) < 1e-5
    assert (grads[True][1] - grads[False][1]).abs().max() < 1e-5
    out = distill.run(_cfg(tiny_teacher, synth_train, tmp_path / "pf", padding_free=True, max_steps=1))
    assert "rlt_" not in (out / "config.json").read_text()
    assert (prep.attn_before, prep.model.config._attn_implementation) == ("sdpa", "rlt_sdpa_per_sequence")  # on CPU
