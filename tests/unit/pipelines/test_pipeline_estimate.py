"""Estimates of `rlt run --plan`: parameters against a built model, the paper's reported compute, and the
shipped pipelines' numbers with their units."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from stages.pipelines import estimate as E
from stages.pipelines import plan as PL

ROOT = Path(__file__).resolve().parents[3]


def _paper(**teach_options):
    spec = PL.read_file(PL.SHIPPED)["paper"]
    steps = PL.parse("paper", spec, Path("runs"))
    for s in steps:
        if s.name == "teach":
            s.options.update(teach_options)
    return {r["step"]: r for r in E.estimate_steps(steps, E.load_table(), "H100")}


def test_parameters_from_config_match_a_built_model(tiny_teacher):
    from transformers import AutoConfig, AutoModelForCausalLM

    shape = E.shape_of_config(json.loads((tiny_teacher / "config.json").read_text()), "tiny", "here")
    model = AutoModelForCausalLM.from_pretrained(tiny_teacher)
    assert shape.params == sum(p.numel() for p in model.parameters())
    # an untied Llama-style shape with no attention bias, built from its config (random weights, no download)
    cfg = AutoConfig.for_model("llama", hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                               num_key_value_heads=2, intermediate_size=96, vocab_size=300, tie_word_embeddings=False)
    built = AutoModelForCausalLM.from_config(cfg)
    assert E.shape_of_config(cfg.to_dict(), "llama", "here").params == sum(p.numel() for p in built.parameters())


def test_the_7b_shape_has_the_published_parameter_count():
    shape = E.Resolver([], E.load_table()).shape("Qwen/Qwen2.5-7B-Instruct")
    assert abs(shape.params - 7.61e9) / 7.61e9 < 0.01  # Qwen2.5 report: 7.61B
    assert shape.kv_bytes() == 2 * 28 * 4 * 128 * 2


def test_calibration_against_the_papers_reported_compute():
    """The paper: about 280 H100-hours for the teacher's RL (generation by vLLM on one of 8 GPUs, the reference
    code's layout) and about 6.7 for the 17K explanations; within a factor of 2."""
    paper_layout = _paper(use_vllm=True, vllm_mode="server")
    assert 280 / 2 <= paper_layout["teach"]["gpu_hours"] <= 280 * 2
    assert 6.7 / 2 <= paper_layout["traces"]["gpu_hours"] <= 6.7 * 2
    shipped = _paper()  # transformers' generate under ZeRO-3: batches run to their longest completion
    assert shipped["teach"]["sampling"] == "hf" and shipped["teach"]["memory"]["per_device_gib"] > 80
    assert paper_layout["teach"]["tokens"]["generated"] == 125 * 16 * 64 * 6000  # the table's 6000-token traces


def test_estimates_follow_models_and_data_through_the_steps():
    est = _paper()
    assert est["warmup"]["params"] == est["student"]["params"] == est["teach"]["params"]  # the warm-up's base
    assert est["traces"]["gpus"] == 8 and est["teach"]["gpus"] == 8  # 8 shards; 8 launched processes
    assert est["warmup"]["optimizer_steps"] == -(-16710 * 3 // 16)  # 3 epochs of 16 rows per step
    mem = est["warmup"]["memory"]["parts_gib"]
    assert mem["weights, gradients and optimizer states"] == pytest.approx(16 * 7.6156e9 / 8 / 2 ** 30, rel=1e-3)


def test_the_paper_pipeline_shrinks_with_its_variables():
    spec = PL.read_file(PL.SHIPPED)["paper"]
    steps = {s.name: s for s in PL.parse("paper", spec, Path("runs"), overrides={"rows": 200, "rl_steps": 5,
                                                                                 "gpus": 2})}
    assert steps["stratos"].options["limit"] == 200 and steps["teach"].options["max_steps"] == 5
    cfg = PL.build_config(steps["teach"])
    assert cfg.gpus == 2 and cfg.max_new_tokens == 16384
    assert dataclasses.asdict(PL.build_config(steps["warmup"]))["max_steps"] is None  # the preset's epochs


def test_a_users_table_adds_a_gpu(tmp_path):
    mine = tmp_path / "t.yaml"
    mine.write_text("gpus:\n  B200: {memory_gib: 180, bf16_tflops: 2250, memory_tb_s: 8, source: datasheet}\n")
    table = E.load_table(str(mine))
    assert {"H100", "B200"} <= set(table["gpus"])
    spec = PL.read_file(PL.SHIPPED)["paper"]
    steps = PL.parse("paper", spec, Path("runs"))
    fast = {r["step"]: r for r in E.estimate_steps(steps, table, "B200")}
    slow = {r["step"]: r for r in E.estimate_steps(steps, table, "H100")}
    assert fast["warmup"]["gpu_hours"] < slow["warmup"]["gpu_hours"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("cards: {}\n")
    with pytest.raises(Exception, match="a throughput table has the keys"):
        E.load_table(str(bad))
