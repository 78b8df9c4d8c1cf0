"""rlt against the plain libraries on a real model (SmolLM2-135M-Instruct, imported from its GGUF file).

- `rlt distill` vs a plain TRL `SFTTrainer` script: the same traces (prompt and completion text in the
  student format), batch size, steps, learning rate and seed. Training tokens/s = the non-padding tokens
  trained over transformers' own `train_runtime`, the same measure on both sides; plus the whole
  command's seconds (start, load, train, save) and its peak memory.
- `rlt generate` vs a plain transformers `generate` loop: the same teacher-view prompts, batch size,
  greedy decoding, token limit and stop string (`<|end_of_explanation|>`). Generated tokens/s over the
  whole command (load, generate, write), and its peak memory.

Every side runs in a process of its own (peak memory = that process's maximum resident set, from
wait4), one after the other, sides alternated over --rounds so machine load hits both alike.
Printed as ratios rlt / plain: tokens/s above 1 and memory below 1 favour rlt.

    .venv/bin/python benchmarks/real_model.py                 # the GGUF file the tests cache
    .venv/bin/python benchmarks/real_model.py --gguf FILE.gguf --rounds 2
    .venv/bin/python benchmarks/real_model.py --model models/smollm2 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHED_GGUF = Path(os.environ.get("RLT_TEST_CACHE") or Path.home() / ".cache" / "rlt-test") / \
    "SmolLM2-135M-Instruct.Q4_1.gguf"
RLT = [sys.executable, "-m", "rltcli"]
# TRL's SFTConfig defaults on a CPU (bf16 autocast where the CPU has bf16, activation checkpointing), and the
# float32 without checkpointing that rlt distill trains in on a CPU: the second isolates rlt's own overhead.
PLAIN_PRECISIONS = {"TRL SFTTrainer (its defaults)": {},
                    "TRL SFTTrainer (float32)": {"bf16": False, "gradient_checkpointing": False}}


# ----------------------------------------------------------------------------- the plain sides (own processes)


def plain_sft(spec: dict) -> None:
    """What a TRL user writes: prompt/completion rows in the student format, SFTTrainer, save."""
    import pyarrow.parquet as pq
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(spec["model"])
    model = AutoModelForCausalLM.from_pretrained(spec["model"])
    rows = []
    for r in pq.read_table(spec["data"]).to_pylist():
        assistant = (f"<|begin_of_thought|>\n\n{r['explanation']}<|end_of_thought|>\n\n"
                     f"<|begin_of_solution|>{r['solution']}<|end_of_solution|>")
        rows.append({"prompt": [{"role": "system", "content": spec["system"]}, {"role": "user", "content": r["question"]}],
                     "completion": [{"role": "assistant", "content": assistant}]})
    args = SFTConfig(output_dir=spec["out"], per_device_train_batch_size=spec["batch_size"],
                     max_steps=spec["steps"], learning_rate=spec["lr"], seed=spec["seed"], use_cpu=True,
                     report_to="none", save_strategy="no", logging_steps=spec["steps"], disable_tqdm=True,
                     include_num_input_tokens_seen="non_padding", **spec.get("precision", {}))
    trainer = SFTTrainer(model=model, args=args, processing_class=tok, train_dataset=Dataset.from_list(rows))
    result = trainer.train()
    trainer.save_model(spec["out"])
    (Path(spec["out"]) / "result.json").write_text(json.dumps(
        {"train_runtime": result.metrics["train_runtime"], "tokens": trainer.state.num_input_tokens_seen}))


def plain_generate(spec: dict) -> None:
    """A plain generate loop: teacher views from the chat template, left-padded batches, greedy, stop string."""
    import pyarrow.parquet as pq
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(spec["model"], padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(spec["model"]).eval()
    prompts = [tok.apply_chat_template(
        [{"role": "system", "content": spec["system"]}, {"role": "user", "content": r["question"]},
         {"role": "assistant", "content": f"<|begin_of_solution|>{r['solution']}<|end_of_solution|>\n\n"
                                          "<|begin_of_explanation|>\n\n"}],
        tokenize=False, continue_final_message=True) for r in pq.read_table(spec["data"]).to_pylist()]
    tokens, texts, b = 0, [], spec["batch_size"]
    for i in range(0, len(prompts), b):
        enc = tok(prompts[i:i + b], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=spec["max_new_tokens"], do_sample=False,
                                 stop_strings=["<|end_of_explanation|>"], tokenizer=tok,
                                 pad_token_id=tok.pad_token_id)
        new = out[:, enc["input_ids"].shape[1]:]
        tokens += int((new != tok.pad_token_id).sum())  # pad is eos here: tokens before each row's end
        texts += tok.batch_decode(new, skip_special_tokens=True)
    Path(spec["out"]).mkdir(parents=True, exist_ok=True)
    (Path(spec["out"]) / "result.json").write_text(json.dumps({"tokens": tokens, "texts": texts}))


# ----------------------------------------------------------------------------- measuring a process


def measured(argv: list[str], env: dict) -> dict:
    """Run `argv` to the end: {"seconds", "peak_mb"} (the process's maximum resident set, from wait4)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(map(str, argv[:4]))} ... failed ({proc.returncode}):\n{err[-3000:]}")
    return {"seconds": time.perf_counter() - t0, "peak_mb": usage.ru_maxrss / 1024}


def _side(kind: str, spec: dict, env: dict) -> dict:
    return measured([sys.executable, __file__, "--side", kind, json.dumps(spec)], env)


def distill_pair(model: str, data: str, work: Path, a, env: dict, i: int) -> dict:
    out_rlt, out_plain = work / f"distill-rlt-{i}", work / f"distill-plain-{i}"
    rlt = measured([*RLT, "distill", "--model", model, "--data", data, "--out", str(out_rlt), "--device", "cpu",
                    "--batch-size", str(a.batch), "--max-steps", str(a.steps), "--lr", "1e-5", "--seed", "0",
                    f"logging_steps={a.steps}", f"prompts.student_system={a.system}"], env)
    last = [json.loads(x) for x in (out_rlt / ".rlt" / "metrics.jsonl").read_text().splitlines()][-1]
    manifest = json.loads((out_rlt / ".rlt" / "manifest.json").read_text())
    rlt.update(tokens=manifest["tokens_seen"], train_seconds=last["train_runtime"])
    runs = {"rlt distill": rlt}
    for name, precision in PLAIN_PRECISIONS.items():
        out = out_plain.with_name(f"{out_plain.name}-{len(runs)}")
        spec = {"model": model, "data": data, "out": str(out), "batch_size": a.batch, "steps": a.steps, "lr": 1e-5,
                "seed": 0, "system": a.system, "precision": precision}
        runs[name] = _side("sft", spec, env)
        result = json.loads((out / "result.json").read_text())
        runs[name].update(tokens=result["tokens"], train_seconds=result["train_runtime"])
    return runs


def generate_pair(model: str, data: str, work: Path, a, env: dict, i: int) -> dict:
    out_rlt, out_plain = work / f"gen-rlt-{i}", work / f"gen-plain-{i}"
    rlt = measured([*RLT, "generate", "--teacher", model, "--data", data, "--out", str(out_rlt), "--device", "cpu",
                    "--temperature", "0", "--max-new-tokens", str(a.max_new_tokens), "--batch-size", str(a.gen_batch),
                    f"prompts.teacher_system={a.system}"], env)
    rlt["tokens"] = json.loads((out_rlt / ".rlt" / "manifest.json").read_text())["generation"]["tokens"]
    plain = _side("generate", {"model": model, "data": data, "out": str(out_plain), "batch_size": a.gen_batch,
                               "max_new_tokens": a.max_new_tokens, "system": a.system}, env)
    plain["tokens"] = json.loads((out_plain / "result.json").read_text())["tokens"]
    return {"rlt generate": rlt, "transformers generate loop": plain}


# ----------------------------------------------------------------------------- data, model, report


def make_data(work: Path, rows: int) -> str:
    """Traces of 2-digit additions (explanation = the gold column work): both sides read this file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from stages.method import tasks

    data = tasks.synth_rows(rows, 0, "train", 2, 2)
    path = work / "traces.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": r["id"], "question": r["question"], "solution": r["solution"],
                                          "explanation": r["reasoning_trace"]} for r in data]), path)
    return str(path)


def model_dir(a, work: Path, env: dict) -> str:
    if a.model:
        return a.model
    gguf = Path(a.gguf or CACHED_GGUF)
    if not gguf.is_file():
        raise SystemExit(f"no model: pass --model DIR or --gguf FILE (or run the real-model test once to cache {gguf})")
    out = work / "smollm2"
    measured([*RLT, "model", "import", str(gguf), "--out", str(out)], env)
    return str(out)


def _sum(runs: list[dict], key: str) -> float:
    return sum(r[key] for r in runs)


def report(title: str, results: dict[str, list[dict]], rate_seconds: str) -> None:
    """One line per side, then rlt's ratios to each plain side."""
    def rate(runs):
        return _sum(runs, "tokens") / _sum(runs, rate_seconds)

    def peak(runs):
        return max(r["peak_mb"] for r in runs)

    print(title)
    for name, runs in results.items():
        print(f"  {name:32s} {rate(runs):8.1f} tokens/s  {_sum(runs, 'tokens'):7.0f} tokens  "
              f"{_sum(runs, 'seconds') / len(runs):6.1f} s per command  peak {peak(runs):7.0f} MB")
    (ours, mine), *others = results.items()
    for theirs, runs in others:
        print(f"  ratio {ours} / {theirs}: tokens/s x{rate(mine) / rate(runs):.2f}, command seconds "
              f"x{_sum(mine, 'seconds') / _sum(runs, 'seconds'):.2f}, peak memory x{peak(mine) / peak(runs):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="an imported model directory (default: import --gguf into a temp dir)")
    ap.add_argument("--gguf", help=f"GGUF file to import (default: {CACHED_GGUF})")
    ap.add_argument("--rows", type=int, default=16, help="training rows = prompts generated for")
    ap.add_argument("--batch", type=int, default=4, help="distill batch size")
    ap.add_argument("--steps", type=int, default=4, help="distill optimizer steps")
    ap.add_argument("--gen-batch", type=int, default=8, help="generate batch size")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=1, help="alternated runs of each side")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads of every side (OMP_NUM_THREADS)")
    ap.add_argument("--system", default="Solve the question.", help="system prompt of both views")
    ap.add_argument("--side", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.side:
        return {"sft": plain_sft, "generate": plain_generate}[a.side[0]](json.loads(a.side[1]))
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model, data = model_dir(a, work, env), make_data(work, a.rows)
        distill = {"rlt distill": [], **{name: [] for name in PLAIN_PRECISIONS}}
        generate = {"rlt generate": [], "transformers generate loop": []}
        for i in range(a.rounds):
            for name, run in distill_pair(model, data, work, a, env, i).items():
                distill[name].append(run)
            for name, run in generate_pair(model, data, work, a, env, i).items():
                generate[name].append(run)
    print(f"SmolLM2-135M-Instruct on CPU, {a.threads} thread(s), {a.rounds} round(s); {a.rows} rows of 2-digit additions")
    report(f"distill: batch {a.batch}, {a.steps} steps (tokens/s over the trainer's train_runtime)", distill,
           "train_seconds")
    report(f"generate: {a.rows} prompts, batch {a.gen_batch}, greedy, max_new_tokens {a.max_new_tokens} "
           "(tokens/s over the whole command)", generate, "seconds")


if __name__ == "__main__":
    main()
