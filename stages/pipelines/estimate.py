"""Estimates of a pipeline's steps before they run: parameters, memory per device, tokens and GPU-hours.

    table = load_table()                                  # stages/pipelines/throughput.yaml (+ a user's file)
    rows = estimate_steps(steps, table, gpu="H100")       # one dict per step, numbers with their units
    totals(rows)                                          # the pipeline's GPU-hours and tokens

Nothing is loaded but configs and a sample of rows: a model's shape comes from its config.json (a local
directory, the hub cache, or the table's `models` for a plan made before the model is here), following
a step's model back through the steps that train it; data sizes from the artifact (row count from its
manifest, mean token lengths of question, solution and trace measured on its first SAMPLE_ROWS rows with
the model's tokenizer when one is here, else CHARS_PER_TOKEN), through the steps that make it (`data
synth` is sampled in-process, `data import` of a source not yet here reads the table's `datasets`).

Formulas (B = bytes per value, Ψ = parameters, W = processes of a launched step):
- parameters: embeddings V·h (twice when untied), per layer attention h·(2h + 2·kv·d) (+ biases, Qwen2),
  gated MLP 3·h·i, two norms 2h; a final norm h.
- training FLOPs: 6·Ψ per token (Kaplan et al. 2020) plus 2·Ψ per token recomputed under gradient
  checkpointing, plus causal attention 6·L·h·s per token (forward 2·L·h·s); a forward alone 2·Ψ (+ 2·L·h·s).
  GPU-seconds = FLOPs / (peak × mfu).
- decoding (generate, eval, teach's sampling): each step reads the weights (2Ψ bytes, bf16) and every
  sequence's KV cache (2·L·kv·d·2 bytes per token of context) once and yields one token per sequence;
  seconds per step = bytes / (bandwidth × decode_bandwidth), at least hf_decode_step_ms with transformers'
  generate, whose batches run as long as their longest sequence (max_new_tokens); vLLM batches as many
  sequences as its KV memory holds (at most vllm_max_num_seqs) and frees each when it ends.
- memory of a training process (ZeRO paper, Rajbhandari et al. 2020, §3): mixed precision under DeepSpeed
  keeps 16 bytes per parameter (bf16 weights and gradients, fp32 master weights and Adam's two moments):
  all on every GPU (ddp), 2Ψ + 14Ψ/W (zero2), 16Ψ/W (zero3); without DeepSpeed weights, gradients and
  Adam's moments take 4·B·Ψ (bf16 on GPU: 8 bytes; float32 on CPU: 16). Activations per micro-batch
  token and layer: 7·h + 3·kv·d + 4·i values (+ 2·heads·s of attention scores where an eager kernel
  materialises them), counted tensor by tensor as Korthikanti et al. 2022 count a GPT layer; under
  gradient checkpointing only each layer's input h is kept, plus one layer's full activations. Logits:
  tokens × V × 4 bytes × LOGIT_COPIES.
  teach adds the reference model (B·Ψ, sharded under zero3) when beta > 0, the reward's frozen student
  (B·Ψ_student on every process), and during sampling the gathered weights (zero3) and the KV cache.
  A process's runtime (CUDA context or the CPU interpreter with torch and transformers) is the table's.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.config import load_yaml
from stages.errors import UserError
from stages.pipelines.plan import Step, build_config

TABLE = Path(__file__).with_name("throughput.yaml")
SAMPLE_ROWS = 64
GIB = 1024 ** 3
TRAINING = ("distill", "teach")
DECODING = ("generate", "eval")
# fp32 logits of a micro-batch held at once: the logits, their log-softmax and its gradient; TRL's SFT loss
# also takes the softmax and entropy of the logits for its entropy and token-accuracy metrics
LOGIT_COPIES = {"distill": 5, "teach": 3}
PROMPT_OVERHEAD = 40  # tokens of chat template and system prompt around a question (ChatML, a short system prompt)


# ----------------------------------------------------------------------------- the table


def load_table(extra: str | None = None) -> dict:
    """The shipped table with `extra`'s entries (a YAML file of the same keys) replacing them by name."""
    table = load_yaml(TABLE)
    if extra:
        mine = load_yaml(extra) or {}
        if not isinstance(mine, dict) or set(mine) - set(table):
            raise UserError(f"{extra}: a throughput table has the keys {', '.join(table)}")
        for key, entries in mine.items():
            table[key] = {**table[key], **(entries or {})}
    return table


def figure(table: dict, name: str) -> float:
    return float(table["efficiency"][name]["value"])


# ----------------------------------------------------------------------------- model shapes


@dataclass
class Shape:
    """A decoder's shape from its config.json (Qwen2, Llama and their kin)."""

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied: bool
    bias: bool  # Qwen2's q, k, v projections carry biases
    source: str

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def params(self) -> int:
        h, kv = self.hidden, self.kv_heads * self.head_dim
        attention = h * h * 2 + h * kv * 2 + ((h + 2 * kv) if self.bias else 0)
        layer = attention + 3 * h * self.intermediate + 2 * h
        return self.vocab * h * (1 if self.tied else 2) + self.layers * layer + h

    def kv_bytes(self, bytes_per_value: int = 2) -> int:
        """KV cache bytes per token of context (keys and values of every layer)."""
        return 2 * self.layers * self.kv_heads * self.head_dim * bytes_per_value


def shape_of_config(cfg: dict, name: str, source: str) -> Shape:
    return Shape(name, int(cfg["hidden_size"]), int(cfg["num_hidden_layers"]), int(cfg["num_attention_heads"]),
                 int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"]), int(cfg["intermediate_size"]),
                 int(cfg["vocab_size"]), bool(cfg.get("tie_word_embeddings", False)),
                 cfg.get("model_type") == "qwen2" or bool(cfg.get("attention_bias")), source)


def _hub_config(repo: str) -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo, "config.json")
    except Exception:  # noqa: BLE001 - not a valid repo id: no cached config
        return None
    return found if isinstance(found, str) else None


class Resolver:
    """Model shapes and data profiles of a pipeline's steps, following outputs back to the steps that make them."""

    def __init__(self, steps: list[Step], table: dict):
        self.steps, self.table = steps, table
        self.by_out = {os.path.normpath(s.out): s for s in steps}
        self._tokenizers: dict[str, Any] = {}

    def maker(self, path: str) -> Step | None:
        return self.by_out.get(os.path.normpath(str(path)))

    # -- models
    def shape(self, ref: str | None) -> Shape | None:
        if not ref:
            return None
        step = self.maker(ref)
        if step is not None and not (Path(ref) / "config.json").is_file():
            cfg = build_config(step)
            if step.command == "model tiny":
                from stages.method.views import TAGS

                vocab = cfg.vocab_size + 2 + (len(TAGS) if cfg.tag_tokens else 0)  # + chat markers, tags
                return Shape("rlt model tiny", cfg.hidden, cfg.layers, cfg.heads, cfg.kv_heads, cfg.intermediate,
                             vocab, True, True, f"step {step.name}'s options")
            base = getattr(cfg, "model", None) or getattr(cfg, "teacher", None)
            return self.shape(base)
        local = Path(ref) / "config.json"
        cached = None if local.is_file() else _hub_config(ref)
        for path, where in ((local, str(local)), (cached, f"the hub cache ({ref})")):
            if path and Path(path).is_file():
                try:
                    return shape_of_config(json.loads(Path(path).read_text()), str(ref), where)
                except (ValueError, KeyError, OSError):
                    return None
        known = self.table.get("models", {}).get(str(ref))
        return shape_of_config(known, str(ref), known["source"]) if known else None

    def tokenizer(self, model: str | None):
        """The model's tokenizer when its directory is here (never downloaded), else None."""
        if not model or not (Path(model) / "config.json").is_file():
            return None
        if model not in self._tokenizers:
            try:
                from transformers import AutoTokenizer

                self._tokenizers[model] = AutoTokenizer.from_pretrained(model, local_files_only=True)
            except Exception:  # noqa: BLE001 - no usable tokenizer: characters per token instead
                self._tokenizers[model] = None
        return self._tokenizers[model]

    # -- data
    def profile(self, ref: str | None, model: str | None) -> dict:
        """{rows, question_tokens, solution_tokens, trace_tokens, source} of a dataset or traces artifact."""
        empty = {"rows": None, "question_tokens": None, "solution_tokens": None, "trace_tokens": None,
                 "source": f"unknown: {ref} is not here yet"}
        if not ref:
            return empty
        if Path(ref).exists():
            return self._measured(ref, model)
        step = self.maker(ref)
        if step is None:
            return empty
        cfg = build_config(step)
        if step.command == "data synth":
            from stages.method import tasks

            rows = tasks.synth_rows(min(cfg.n, SAMPLE_ROWS), cfg.seed, cfg.split, cfg.min_digits, cfg.max_digits)
            out = self._lengths(rows, "reasoning_trace", model)
            return {**out, "rows": cfg.n, "source": f"{len(rows)} rows of step {step.name} made here"}
        if step.command == "data import":
            return self._imported(cfg, model, step)
        if step.command == "data decontaminate":
            return {**self.profile(cfg.src, model), "source": f"its source {cfg.src} (at most)"}
        if step.command == "data merge":
            parts = [self.profile(p, model) for p in cfg.inputs]
            rows = sum(p["rows"] or 0 for p in parts) or None
            return {**parts[0], "rows": rows}
        if step.command in ("generate", "score"):
            source = self.profile(cfg.data, model)
            out = dict(source)
            if step.command == "generate":
                k = 1 if cfg.select else cfg.num_generations
                out["rows"] = None if source["rows"] is None else source["rows"] * k
                out["trace_tokens"] = generated_length(source, cfg.max_new_tokens)
                out["source"] = f"step {step.name}: {source['source']}; explanations as long as its data's traces"
            return out
        return empty

    def _imported(self, cfg, model: str | None, step: Step) -> dict:
        parts = Path(str(cfg.src)).parts
        name = next((k for k in self.table.get("datasets", {}) if k in parts), None)
        known = self.table["datasets"][name] if name else None
        if not known:
            return {"rows": None, "question_tokens": None, "solution_tokens": None, "trace_tokens": None,
                    "source": f"unknown: {cfg.src} is not here"}
        rows = known["rows"] if cfg.limit is None else min(known["rows"], cfg.limit)
        return {"rows": rows, "question_tokens": known.get("question_tokens"),
                "solution_tokens": known.get("solution_tokens"), "trace_tokens": known.get("trace_tokens"),
                "source": f"the table's {name}: {known['source']}"}

    def _measured(self, ref: str, model: str | None) -> dict:
        from stages.artifacts.layout import read_manifest
        from stages.artifacts.read import read_table

        try:
            table = read_table(ref)
        except Exception as e:  # noqa: BLE001 - unreadable here: the step itself will say why
            return {"rows": None, "question_tokens": None, "solution_tokens": None, "trace_tokens": None,
                    "source": f"unreadable: {type(e).__name__}"}
        manifest = read_manifest(Path(ref)) if Path(ref).is_dir() else None
        rows = (manifest or {}).get("rows") or table.num_rows
        sample = table.slice(0, SAMPLE_ROWS).to_pylist()
        trace = "explanation" if "explanation" in table.column_names else "reasoning_trace"
        out = self._lengths(sample, trace, model)
        return {**out, "rows": rows, "source": f"measured on {len(sample)} rows of {ref}"}

    def _lengths(self, rows: list[dict], trace: str, model: str | None) -> dict:
        tok = self.tokenizer(model)
        per = figure(self.table, "chars_per_token")

        def mean(column: str) -> float | None:
            texts = [str(r[column]) for r in rows if r.get(column) is not None]
            if not texts:
                return None
            counts = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts] if tok is not None \
                else [len(t) / per for t in texts]
            return sum(counts) / len(counts)

        return {"question_tokens": mean("question"), "solution_tokens": mean("solution"),
                "trace_tokens": mean(trace)}


def generated_length(profile: dict, max_new_tokens: int) -> float:
    """Mean tokens a model writes: as long as the data's reference traces, capped by the limit; without
    traces, half the limit (assumed)."""
    trace = profile.get("trace_tokens")
    return min(float(trace), max_new_tokens) if trace else max_new_tokens / 2


# ----------------------------------------------------------------------------- arithmetic


def flops_per_token(shape: Shape, context: float, train: bool, checkpointing: bool = False) -> float:
    """FLOPs per token: forward 2Ψ + 2·L·h·s (causal attention over a context of s); training 3x the forward,
    plus one more forward under gradient checkpointing."""
    forward = 2 * shape.params + 2 * shape.layers * shape.hidden * context
    return forward * ((4 if checkpointing else 3) if train else 1)


def compute_seconds(flops: float, gpu: dict, table: dict) -> float:
    return flops / (gpu["bf16_tflops"] * 1e12 * figure(table, "mfu"))


def decode_seconds(shape: Shape, sequences: float, prompt: float, new_mean: float, new_max: int, engine: str,
                   batch: int, gpu: dict, table: dict, memory_share: float | None = None) -> float:
    """GPU-seconds to generate `sequences` completions (see the module docstring)."""
    if sequences <= 0:
        return 0.0
    bandwidth = gpu["memory_tb_s"] * 1e12 * figure(table, "decode_bandwidth")
    weights, kv = 2 * shape.params, shape.kv_bytes()
    if engine == "vllm":
        share = memory_share or figure(table, "vllm_memory_share")
        context = prompt + new_mean / 2
        room = share * gpu["memory_gib"] * GIB - weights
        seqs = max(1.0, min(figure(table, "vllm_max_num_seqs"), room / (context * kv)))
        step = (weights + seqs * context * kv) / bandwidth
        return sequences * new_mean / seqs * step
    seqs = max(1, min(batch, int(sequences)))
    context = prompt + new_max / 2
    step = max((weights + seqs * context * kv) / bandwidth, figure(table, "hf_decode_step_ms") / 1000)
    return math.ceil(sequences / seqs) * new_max * step


def states_bytes(params: float, preset: str | None, world: int, bytes_per_value: int) -> float:
    """Weights, gradients and Adam's moments per process under a launch preset (ZeRO paper, §3)."""
    if preset in ("zero3", "zero3-offload"):
        return (2 if preset == "zero3-offload" else 16) * params / world
    if preset == "zero2":
        return 2 * params + 14 * params / world
    return 4 * bytes_per_value * params


def activation_bytes(shape: Shape, tokens: float, seq: float, bytes_per_value: int, checkpointing: bool,
                     eager_scores: bool) -> float:
    """Activations kept for the backward pass of a micro-batch of `tokens` tokens in sequences of `seq`."""
    h, kv = shape.hidden, shape.kv_heads * shape.head_dim
    # per token: the layer's input and its two norms' outputs, q k v and their rotated copies, the attention
    # output, the gated MLP's four inner tensors (gate, up, act(gate), their product); an eager kernel adds
    # the attention scores and their softmax
    per_layer = 7 * h + 3 * kv + 4 * shape.intermediate + (2 * shape.heads * seq if eager_scores else 0)
    if checkpointing:
        return tokens * bytes_per_value * (shape.layers * shape.hidden + per_layer)
    return tokens * bytes_per_value * shape.layers * per_layer


# ----------------------------------------------------------------------------- per step


def _world(cfg, step: Step) -> int:
    count = getattr(cfg, "nproc", None) or getattr(cfg, "gpus", None)
    if count:
        return int(count)
    if getattr(cfg, "launch", None):
        return step.resources.get("nodes", 1) * (step.resources.get("gpus_per_node") or 1)
    return 1


def step_estimate(step: Step, res: Resolver, gpu_name: str, device: str = "gpu") -> dict | None:
    """The estimate of one step (None for a step without a model: data steps run on CPUs)."""
    table, cfg = res.table, build_config(step)
    gpus = table["gpus"]
    if gpu_name not in gpus:
        raise UserError(f"no GPU kind {gpu_name!r} in the throughput table (has: {', '.join(gpus)}); add it with "
                        "--throughput FILE")
    gpu = gpus[gpu_name]
    if step.command not in TRAINING + DECODING + ("score",):
        return None
    model = getattr(cfg, "model", None) or getattr(cfg, "teacher", None) or (getattr(cfg, "models", None) or [None])[0]
    shape = res.shape(model)
    data = res.profile(getattr(cfg, "data", None), model if Path(str(model)).exists() else None)
    out: dict[str, Any] = {"step": step.name, "command": step.command, "model": str(model), "gpu": gpu_name,
                           "data": data["source"]}
    if shape is None:
        out["unknown"] = f"no config.json for {model} here (give a local directory or cache it)"
        return out
    if data["rows"] is None:
        out["unknown"] = f"data rows unknown: {data['source']}"
        out["params"] = shape.params
        return out
    q = data["question_tokens"] or 0
    sol = data["solution_tokens"] or 0
    trace = data["trace_tokens"] or 0
    out["params"] = shape.params
    fn = {"distill": _distill, "teach": _teach, "generate": _decode, "eval": _decode, "score": _score}[step.command]
    fn(out, step, cfg, res, shape, data, q, sol, trace, gpu, table, device)
    out["gpu_hours"] = round(out.pop("gpu_seconds") / 3600, 2)
    world = out.get("gpus", 1)
    out["wall_hours"] = round(out["gpu_hours"] / world, 2)
    return out


def _bytes_per_value(cfg, device: str) -> int:
    dtype = getattr(cfg, "dtype", "auto")
    return 4 if device == "cpu" or dtype == "float32" else 2


def _distill(out, step, cfg, res, shape, data, q, sol, trace, gpu, table, device) -> None:
    world = _world(cfg, step)
    explanation = 0 if getattr(cfg, "no_explanation", False) else trace
    row = PROMPT_OVERHEAD + q + sol + explanation + (sol if cfg.role == "teacher" else 0)
    row = min(row, cfg.max_length)
    global_batch = getattr(cfg, "global_batch", None) or cfg.batch_size * cfg.grad_accum * world
    steps = cfg.max_steps or math.ceil(data["rows"] * cfg.epochs / global_batch)
    tokens = steps * global_batch * row
    checkpointing = cfg.gradient_checkpointing and device != "cpu"
    out["gpu_seconds"] = compute_seconds(tokens * flops_per_token(shape, row / 2, True, checkpointing), gpu, table)
    out.update(gpus=world, optimizer_steps=steps, tokens={"trained": int(tokens)})
    micro = cfg.batch_size * row
    out["memory"] = _training_memory(shape, cfg, world, micro, row, device, table, "distill")


def _training_memory(shape: Shape, cfg, world: int, micro_tokens: float, seq: float, device: str, table: dict,
                     command: str, extra: dict | None = None) -> dict:
    b = _bytes_per_value(cfg, device)
    preset = cfg.launch if device != "cpu" else None
    if preset and device != "cpu" and preset.startswith("zero"):
        states = states_bytes(shape.params, preset, world, b)
    else:
        states = states_bytes(shape.params, None, world, b)
    checkpointing = getattr(cfg, "gradient_checkpointing", True) and device != "cpu"
    parts = {"weights, gradients and optimizer states": states,
             "activations": activation_bytes(shape, micro_tokens, seq, b, checkpointing, device == "cpu"),
             "logits": micro_tokens * shape.vocab * 4 * LOGIT_COPIES[command], **(extra or {}),
             "runtime": figure(table, "cpu_runtime_gib" if device == "cpu" else "gpu_runtime_gib") * GIB}
    return _memory(parts)


def _memory(parts: dict, phases: tuple[tuple[str, ...], ...] = ()) -> dict:
    """Per-device GiB by part and the peak: resident parts plus the largest phase (parts held only in turn)."""
    phased = {p for ph in phases for p in ph}
    resident = sum(v for k, v in parts.items() if k not in phased)
    peak = resident + max((sum(parts[p] for p in ph) for ph in phases), default=0)
    return {"per_device_gib": round(peak / GIB, 2), "parts_gib": {k: round(v / GIB, 3) for k, v in parts.items()}}


def _teach(out, step, cfg, res, shape, data, q, sol, trace, gpu, table, device) -> None:
    world = _world(cfg, step)
    student = res.shape(cfg.student) or shape
    completions = cfg.prompts_per_step * cfg.num_generations
    steps = cfg.max_steps or math.ceil(data["rows"] * cfg.epochs / cfg.prompts_per_step)
    prompt = PROMPT_OVERHEAD + q + sol
    new = generated_length(data, cfg.max_new_tokens)
    seq = prompt + new
    n = steps * completions
    trained = n * seq
    flops = trained * flops_per_token(shape, seq / 2, True, device != "cpu")
    flops += trained * flops_per_token(shape, seq / 2, False)  # the reward's teacher log-probs
    flops += n * (PROMPT_OVERHEAD + q + new + sol) * flops_per_token(student, seq / 2, False)  # the reward's student
    if cfg.beta > 0:
        flops += trained * flops_per_token(shape, seq / 2, False)  # the reference model's log-probs
    per_device = max(1, completions // (world * cfg.grad_accum))
    engine = "vllm" if cfg.use_vllm else "hf"
    share = 0.3 if cfg.use_vllm and cfg.vllm_mode == "colocate" else None
    sampling = decode_seconds(shape, n, prompt, new, cfg.max_new_tokens, engine, per_device, gpu, table, share)
    if cfg.use_vllm and cfg.vllm_mode == "server":  # one GPU serves vLLM, the others wait for it (assumed)
        sampling *= world
    out["gpu_seconds"] = compute_seconds(flops, gpu, table) + sampling
    out.update(gpus=world, optimizer_steps=steps, tokens={"generated": int(n * new), "trained": int(trained)},
               sampling=f"{engine}{' ' + cfg.vllm_mode if cfg.use_vllm else ''}",
               sampling_gpu_hours=round(sampling / 3600, 2))
    b = _bytes_per_value(cfg, device)
    zero3 = device != "cpu" and str(cfg.launch or "").startswith("zero3")
    extra = {"reward student": b * student.params,
             "sampling: gathered weights": (2 * shape.params * (1 - 1 / world)) if zero3 else 0,
             "sampling: KV cache": 0 if cfg.use_vllm else per_device * (prompt + cfg.max_new_tokens) * shape.kv_bytes(b)}
    if cfg.beta > 0:
        extra["reference model"] = b * shape.params / (world if zero3 else 1)
    mem = _training_memory(shape, cfg, world, per_device * seq, seq, device, table, "teach", extra)
    parts = {k: v * GIB for k, v in mem["parts_gib"].items()}
    out["memory"] = _memory(parts, (("activations", "logits"), ("sampling: gathered weights", "sampling: KV cache")))


def _decode(out, step, cfg, res, shape, data, q, sol, trace, gpu, table, device) -> None:
    models = len(getattr(cfg, "models", None) or [1])
    k = cfg.num_generations
    n = data["rows"] * k * models
    prompt = PROMPT_OVERHEAD + q + (sol if step.command == "generate" else 0)
    new = generated_length(data if step.command == "generate" else {}, cfg.max_new_tokens)
    engine = cfg.engine.name
    if engine not in ("hf", "vllm"):
        out.update(gpus=0, tokens={"generated": int(n * new)}, gpu_seconds=0.0,
                   note=f"engine {engine}: generated by a server this step does not hold")
        return
    seconds = decode_seconds(shape, n, prompt, new, cfg.max_new_tokens, engine, cfg.engine.batch_size, gpu, table)
    seconds += compute_seconds(n * prompt * flops_per_token(shape, prompt / 2, False), gpu, table)
    if getattr(cfg, "student", None):  # generate --student: every sample scored
        seconds += compute_seconds(2 * n * (prompt + new) * flops_per_token(shape, prompt, False), gpu, table)
    shards = step.shards or 1
    kv = (cfg.engine.batch_size * (prompt + cfg.max_new_tokens) * shape.kv_bytes()) if engine == "hf" else \
        figure(table, "vllm_memory_share") * gpu["memory_gib"] * GIB - 2 * shape.params
    out.update(gpus=shards, tokens={"generated": int(n * new), "prompt": int(n * prompt)}, gpu_seconds=seconds,
               memory=_memory({"weights": 2 * shape.params, "KV cache": max(kv, 0),
                               "runtime": figure(table, "gpu_runtime_gib") * GIB}))


def _score(out, step, cfg, res, shape, data, q, sol, trace, gpu, table, device) -> None:
    student = res.shape(cfg.student) or shape
    n = data["rows"]
    seq = PROMPT_OVERHEAD + q + sol + trace
    flops = n * seq * (flops_per_token(shape, seq / 2, False) + flops_per_token(student, seq / 2, False))
    out.update(gpus=1, tokens={"scored": int(2 * n * seq)}, gpu_seconds=compute_seconds(flops, gpu, table),
               memory=_memory({"teacher and student weights": 2 * (shape.params + student.params),
                               "runtime": figure(table, "gpu_runtime_gib") * GIB}))


# ----------------------------------------------------------------------------- a pipeline


def estimate_steps(steps: list[Step], table: dict, gpu: str = "H100", only: set[str] | None = None) -> list[dict]:
    """One estimate per step that uses a model (of `only` when given), in order."""
    res = Resolver(steps, table)
    rows = []
    for step in steps:
        if only is not None and step.name not in only:
            continue
        est = step_estimate(step, res, gpu)
        if est is not None:
            rows.append(est)
    return rows


def totals(rows: list[dict]) -> dict:
    """The pipeline's GPU-hours and tokens over the steps estimated (steps with unknowns are counted apart)."""
    known = [r for r in rows if "gpu_hours" in r]
    tokens: dict[str, int] = {}
    for r in known:
        for k, v in r.get("tokens", {}).items():
            tokens[k] = tokens.get(k, 0) + v
    return {"gpu_hours": round(sum(r["gpu_hours"] for r in known), 1), "tokens": tokens,
            "steps_estimated": len(known), "steps_unknown": [r["step"] for r in rows if "gpu_hours" not in r]}
