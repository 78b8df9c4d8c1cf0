"""`rlt distill`: supervised fine-tuning of students, and the teacher warm-up.

Input: a model directory (or hub id) and a traces artifact (its `explanation`
column) or a dataset artifact (its gold `reasoning_trace`). Output: a checkpoint
artifact - an HF model directory (safetensors, tokenizer, chat template,
generation config with the tokenizer's eos/pad) that `AutoModelForCausalLM`
loads, `.rlt/metrics.jsonl` (step, loss, lr, tokens/s), `.rlt/manifest.json` written last.
Intermediate checkpoints go to `<out>/checkpoints/`; rerunning the same command
after a kill resumes from the last one.

    rlt distill --model models/tiny --data traces/train --out ckpt/student --preset tiny
    rlt distill --model models/tiny --data data/train --out ckpt/teacher --role teacher
    rlt distill --model Qwen/Qwen2.5-7B-Instruct --data traces/all --out ckpt/rlt-7b \\
        --preset paper --launch zero3 --nproc 8
    rlt distill ... lora.r=16 lora.alpha=32     # LoRA (stages/training/lora.py)

`--launch zero3 --nproc 8` (alias `--gpus 8`) is the same as (see stages/training/launch.py):

    accelerate launch --config_file stages/presets/zero3.yaml --num_processes 8 \\
        -m rltcli distill --config resolved.yaml

Roles (docs/method.md "Formats"): `student` - prompt = system + question, completion
= the student view's assistant turn (`--no-explanation`: solution only);
`teacher` - prompt = system + question + the prefilled solution block,
completion = explanation + `<|end_of_explanation|>`. Loss on the completion only.
Rows longer than `max_length` tokens are counted, logged and recorded in the
manifest, then dropped (`long_rows=drop`) or refused (`long_rows=error`).
Padding-free and packed batches attend within each sequence through a library
kernel chosen for the device (stages/models/attention.py: varlen FlashAttention on
CUDA, SDPA per sequence on CPU); `tiny` turns padding-free on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.artifacts.checkpoints import (
    checkpoint_dir,
    keep_checkpoints_opt,
    save_total_limit_opt,
)
from stages.artifacts.layout import metrics_path, read_manifest
from stages.artifacts.read import read_rows, read_table
from stages.config import above, at_least, between, check_config, inputs_of, opt
from stages.errors import UserError
from stages.method import degenerate
from stages.method import views as formats
from stages.method.settings import PromptsConfig
from stages.models import attention
from stages.models.loading import DEVICE_HELP, check_device, load_model, load_tokenizer, resolve_device
from stages.progress import training_progress, with_article
from stages.training import frame, launch, lora, trl_options
from stages.training.metrics import log_at_saves, mean_loss, read_metrics, sft_metrics_callback
from stages.training.rankzero import RankZeroWriter

log = logging.getLogger(__name__)
ROLES = ("student", "teacher")
LONG_ROWS = ("drop", "error")
REPORTERS = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio", "mlflow": "mlflow",
             "comet_ml": "comet_ml", "clearml": "clearml"}


@dataclass
class DistillConfig(launch.LaunchOptions):
    """Options of `rlt distill`."""

    model: str = opt("", "Model to fine-tune: a model directory or a hub id.", flag=True, input=True, required=True)
    data: str = opt("", "Traces artifact (explanation column) or dataset artifact (reasoning_trace column).", flag=True, input=True, required=True)
    out: str = opt("", "Output checkpoint artifact directory.", hash=False, flag=True, required=True)
    role: str = opt("student", "student (distillation) or teacher (the warm-up before RL).", flag=True, choices=ROLES)
    no_explanation: bool = opt(False, "Student only: train on the solution alone (a baseline without traces).",
                               flag=True)
    preset: str | None = opt(None, "Name of the preset these settings came from (tiny or paper).")
    epochs: float = opt(3.0, "Training epochs (ignored when max_steps is set).", flag=True, check=above(0))
    max_steps: int | None = opt(None, "Stop after this many optimizer steps.", flag=True, check=at_least(1))
    lr: float = opt(1e-5, "Peak learning rate.", flag=True, check=above(0))
    lr_scheduler: str = opt("cosine", "Learning-rate schedule (transformers names: cosine, linear, constant...).")
    warmup_ratio: float = opt(0.1, "Fraction of the steps spent warming up the learning rate (0 <= r < 1).", check=between(0, 1, high_open=True))
    weight_decay: float = opt(0.0, "AdamW weight decay.", check=at_least(0))
    batch_size: int = opt(8, "Sequences (rows) per device per micro-batch.", flag=True, check=at_least(1))
    grad_accum: int = opt(1, "Micro-batches per optimizer step (ignored when global_batch is set).", flag=True, check=at_least(1))
    global_batch: int | None = opt(None, "Rows per optimizer step over all processes; sets grad_accum.", check=at_least(1))
    max_length: int = opt(4096, "Longest row in tokens; longer rows are counted and handled by long_rows.", flag=True, check=at_least(1))
    long_rows: str = opt("drop", "Rows longer than max_length: drop (counted, reported) or error.", choices=LONG_ROWS)
    drop: list[str] = opt(list, "Degenerate explanations to leave out: any of empty, truncated, untagged (e.g. "
                                "drop=truncated,empty,untagged); counted in the manifest either way.")
    packing: bool = opt(False, "Pack rows into max_length sequences (best-fit, padding-free).", flag=True)
    padding_free: bool = opt(False, "Concatenate each batch into one unpadded sequence.",
                             flag="--padding-free/--padded")
    gradient_checkpointing: bool = opt(True, "Recompute activations on GPU to save memory (always off on CPU).")
    seed: int = opt(0, "Seed of initialisation-free randomness: shuffling and dropout.", flag=True)
    report_to: str = opt("none", "Trackers: none, tensorboard, wandb, trackio (comma-separated).", hash=False,
                         flag=True)
    eval_split: float = opt(0.0, "Fraction of rows held out for evaluation loss (0 = none).", flag=True, check=between(0, 1, high_open=True))
    save_steps: int = opt(100, "Save an intermediate checkpoint every N steps (for resume).", hash=False, check=at_least(1))
    save_total_limit: int = save_total_limit_opt()
    keep_checkpoints: bool = keep_checkpoints_opt()
    logging_steps: int = opt(10, "Log (and write metrics.jsonl) every N steps.", hash=False, check=at_least(1))
    device: str = opt("auto", DEVICE_HELP, hash=False, flag=True, check=check_device)
    dtype: str = opt("auto", "Weights dtype: auto (bf16 on a bf16 GPU, else float32), float32, bfloat16.")
    force: bool = opt(False, "Overwrite an existing output.", hash=False, flag=True)
    trust_remote_code: bool = opt(False, "Allow model code from the hub.", flag=True)
    prompts: PromptsConfig = opt(PromptsConfig, "System prompts.")
    lora: lora.LoraConfig = opt(lora.LoraConfig, "LoRA adapters (PEFT); lora.r=0 = full fine-tuning.")
    trl: dict = opt(dict, "Any other trl.SFTConfig option, e.g. trl.adam_beta2=0.95.")


PRESETS: dict[str, dict[str, Any]] = {
    # The embedded model on a laptop CPU in minutes.
    # Constant lr: the tiny model learns digit look-ups in a sudden drop after ~150 steps,
    # which a cosine decay over a few hundred steps cuts short.
    "tiny": {"preset": "tiny", "lr": 3e-3, "lr_scheduler": "constant_with_warmup", "warmup_ratio": 0.05, "epochs": 3.0,
             "batch_size": 32, "grad_accum": 1, "max_length": 1024, "weight_decay": 0.0,
             "padding_free": True, "logging_steps": 5, "save_steps": 50},
    # The paper's student distillation (docs/method.md); the teacher warm-up values are in PAPER_TEACHER.
    "paper": {"preset": "paper", "lr": 1e-5, "lr_scheduler": "cosine", "warmup_ratio": 0.1, "epochs": 3.0,
              "batch_size": 1, "global_batch": 96, "max_length": 16384, "weight_decay": 0.0},
}
TRL_CONFIG = "SFTConfig"  # the TRL config class the `trl.*` keys are fields of (`--help-keys trl`)
# SFTConfig fields set from a top-level key (or derived from one): `trl.<name>` must not set them.
MANAGED = {"learning_rate": "lr", "num_train_epochs": "epochs", "max_steps": "max_steps",
           "per_device_train_batch_size": "batch_size", "per_device_eval_batch_size": "batch_size",
           "gradient_accumulation_steps": "grad_accum", "lr_scheduler_type": "lr_scheduler",
           "warmup_steps": "warmup_ratio", "warmup_ratio": "warmup_ratio", "weight_decay": "weight_decay",
           "max_length": "max_length", "packing": "packing", "padding_free": "padding_free", "seed": "seed",
           "data_seed": "seed", "report_to": "report_to", "save_steps": "save_steps",
           "save_total_limit": "save_total_limit", "logging_steps": "logging_steps", "output_dir": "out",
           "activation_checkpointing": "gradient_checkpointing", "gradient_checkpointing": "gradient_checkpointing",
           "eval_steps": "save_steps", "use_cpu": "device", "bf16": "dtype", "fp16": "dtype"}
# The paper's teacher warm-up: replaces student values of `paper` that the user left unchanged.
PAPER_TEACHER: dict[str, Any] = {"warmup_ratio": 0.05, "weight_decay": 1e-4, "global_batch": 16,
                                 "trl": {"adam_beta1": 0.9, "adam_beta2": 0.95, "max_grad_norm": 1.0}}


# ----------------------------------------------------------------------------- validation


def validate(cfg: DistillConfig) -> None:
    """Refuse inconsistent options with one line each, before anything loads (the `trl.*` keys too)."""
    check_config(cfg)
    if cfg.no_explanation and cfg.role == "teacher":
        raise UserError("--no-explanation applies to --role student only (the teacher learns to explain)")
    if cfg.packing and cfg.padding_free:
        raise UserError("choose packing or padding_free, not both (packing is already padding-free)")
    for name in (r.strip() for r in cfg.report_to.split(",")):
        if name in ("", "none"):
            continue
        if name not in REPORTERS:
            raise UserError(f"unknown --report-to {name!r} (valid: none, {', '.join(REPORTERS)})")
        if importlib.util.find_spec(REPORTERS[name]) is None:
            raise UserError(f"--report-to {name} needs the {REPORTERS[name]} package (pip install {REPORTERS[name]})")
    if cfg.preset is not None and cfg.preset not in PRESETS:
        raise UserError(f"unknown preset {cfg.preset!r} (valid: {', '.join(sorted(PRESETS))})")
    lora.validate(cfg.lora, on_cuda=resolve_device(cfg.device).startswith("cuda"))
    degenerate.parse_drop(cfg.drop)
    check_trl_options(cfg.trl)


def check_trl_options(options: dict) -> None:
    """The `trl.*` keys checked by the training stages' one rule (stages/training/trl_options.py)."""
    from trl import SFTConfig

    trl_options.check_trl_options(options, SFTConfig, MANAGED, "distill")


def apply_role_preset(cfg: DistillConfig) -> DistillConfig:
    """`paper` + teacher: use the warm-up recipe where the student recipe was left unchanged."""
    if cfg.preset != "paper" or cfg.role != "teacher":
        return cfg
    student = PRESETS["paper"]
    for key, value in PAPER_TEACHER.items():
        if key == "trl":
            cfg.trl = {**value, **cfg.trl}
        elif getattr(cfg, key) == student.get(key, getattr(DistillConfig(), key)):
            setattr(cfg, key, value)
    return cfg


finalize_config = apply_role_preset  # applied by commands.make_config after resolution


# ----------------------------------------------------------------------------- data


def _input_kind(path: str) -> str:
    manifest = read_manifest(path) if Path(path).is_dir() else None
    if manifest is not None:
        return manifest.get("kind", "dataset")
    return "traces" if "explanation" in read_table(path).column_names else "dataset"


def load_rows(cfg: DistillConfig) -> list[dict]:
    """Rows with `question`, `solution` and `explanation` (None for --no-explanation)."""
    kind = _input_kind(cfg.data)
    if kind not in ("dataset", "traces"):
        raise UserError(f"{cfg.data} is {with_article(kind)} artifact; distill reads a traces or dataset artifact")
    column = "explanation" if kind == "traces" else "reasoning_trace"
    need = ["question", "solution"] + ([] if cfg.no_explanation else [column])
    rows = read_rows(cfg.data, kind, required=need)
    return [{"question": r["question"], "solution": r["solution"],
             "explanation": None if cfg.no_explanation else r[column],
             "truncated": r.get("truncated"), "format_ok": r.get("format_ok")} for r in rows]


def drop_degenerate(cfg: DistillConfig, rows: list[dict]) -> tuple[list[dict], dict]:
    """Count the degenerate explanations (stages/method/degenerate.py), leave out the kinds of `drop`,
    warn in one line about kinds kept above the threshold. -> (kept rows, the manifest's record)."""
    if cfg.no_explanation:  # the explanations are not trained on
        return rows, {}
    counts, kinds = degenerate.counts(rows), degenerate.parse_drop(cfg.drop)
    kept = degenerate.drop(rows, kinds)
    if not kept:
        raise UserError(f"every row of {cfg.data} has a degenerate explanation ({', '.join(sorted(kinds))}); "
                        "nothing is left to train on")
    if kinds:
        log.info("%s: dropped %d of %d rows with %s explanations", cfg.data, len(rows) - len(kept), len(rows),
                 " / ".join(sorted(kinds)))
    kept_counts = {k: v for k, v in counts.items() if k not in kinds}
    degenerate.warn(kept_counts, cfg.data, log, hint="; trained on as they are (drop=empty,truncated,untagged "
                                                     "leaves them out)")
    return kept, {**degenerate.record(counts), "dropped": len(rows) - len(kept), "drop": sorted(kinds)}


def _end_on_eos(completion: str, eos: str | None) -> str:
    """Completion ending exactly on the eos token (the template's trailing newline dropped)."""
    if not eos:
        return completion
    stripped = completion.rstrip()
    return stripped if stripped.endswith(eos) else completion + eos


def build_examples(cfg: DistillConfig, tok, rows: list[dict]) -> tuple[list[dict], list[int]]:
    """Prompt/completion text rows of the role; returns (examples, token lengths)."""
    sys_prompt = cfg.prompts.teacher_system if cfg.role == "teacher" else cfg.prompts.student_system
    examples = []
    for r in rows:
        if cfg.role == "teacher":
            prompt, completion = formats.teacher_example(tok, sys_prompt, r["question"], r["solution"],
                                                         r["explanation"])
        else:
            prompt, completion = formats.student_example(tok, sys_prompt, r["question"], r["solution"],
                                                         r["explanation"])
        examples.append({"prompt": prompt, "completion": _end_on_eos(completion, tok.eos_token)})
    texts = [e["prompt"] + e["completion"] for e in examples]
    lengths = [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]]
    return examples, lengths


def drop_long(cfg: DistillConfig, examples: list[dict], lengths: list[int]) -> tuple[list[dict], int]:
    """Apply `long_rows` to rows over max_length; returns (kept, number too long)."""
    long_idx = [i for i, n in enumerate(lengths) if n > cfg.max_length]
    if long_idx and cfg.long_rows == "error":
        raise UserError(f"{len(long_idx)} of {len(examples)} rows exceed max_length={cfg.max_length} tokens "
                        f"(row {long_idx[0]} has {lengths[long_idx[0]]}); raise max_length or set long_rows=drop")
    if long_idx:
        log.warning("%d of %d rows exceed max_length=%d tokens (longest %d) and are dropped",
                    len(long_idx), len(examples), cfg.max_length, max(lengths))
    skip = set(long_idx)
    kept = [e for i, e in enumerate(examples) if i not in skip]
    if not kept:
        raise UserError(f"no row fits max_length={cfg.max_length} tokens")
    return kept, len(long_idx)


def split_eval(examples: list[dict], fraction: float) -> tuple[list[dict], list[dict]]:
    """Deterministic hold-out by a hash of the prompt (stable across reruns and resumes)."""
    if fraction <= 0:
        return examples, []
    def held(e):
        return int(hashlib.sha256(e["prompt"].encode()).hexdigest()[:8], 16) % 10_000 < fraction * 10_000
    train = [e for e in examples if not held(e)]
    evals = [e for e in examples if held(e)]
    if not train or not evals:
        raise UserError(f"eval_split={fraction} leaves an empty train or eval set ({len(examples)} rows)")
    return train, evals


# ----------------------------------------------------------------------------- trainer


def _grad_accum(cfg: DistillConfig) -> int:
    if not cfg.global_batch:
        return cfg.grad_accum
    per_step = cfg.batch_size * launch.world_size()
    if cfg.global_batch % per_step:
        raise UserError(f"global_batch={cfg.global_batch} is not a multiple of batch_size x processes "
                        f"({cfg.batch_size} x {launch.world_size()}); change one of them")
    return cfg.global_batch // per_step


def _precision(device: str) -> dict:
    import torch

    if device == "cpu":
        return {"use_cpu": True, "bf16": False, "fp16": False, "activation_checkpointing": False}
    bf16 = torch.cuda.is_bf16_supported()
    return {"bf16": bf16, "fp16": not bf16}


def sft_args(cfg: DistillConfig, device: str, has_eval: bool):
    """trl.SFTConfig from the stage config; `cfg.trl` keys are checked against SFTConfig's fields."""
    from trl import SFTConfig

    kw = {
        "output_dir": str(checkpoint_dir(cfg.out)), "per_device_train_batch_size": cfg.batch_size,
        "per_device_eval_batch_size": cfg.batch_size, "gradient_accumulation_steps": _grad_accum(cfg),
        "learning_rate": cfg.lr, "lr_scheduler_type": cfg.lr_scheduler, "warmup_steps": cfg.warmup_ratio,
        "weight_decay": cfg.weight_decay, "num_train_epochs": cfg.epochs, "max_steps": cfg.max_steps or -1,
        "max_length": cfg.max_length if cfg.packing else None, "packing": cfg.packing, "padding_free": cfg.padding_free,
        "completion_only_loss": True, "seed": cfg.seed, "data_seed": cfg.seed,
        "report_to": [r for r in cfg.report_to.split(",") if r and r != "none"] or "none",
        "save_strategy": "steps", "save_steps": cfg.save_steps, "save_total_limit": cfg.save_total_limit,
        "logging_steps": cfg.logging_steps, "include_num_input_tokens_seen": "non_padding",
        "eval_strategy": "steps" if has_eval else "no", "eval_steps": cfg.save_steps if has_eval else None,
        "activation_checkpointing": cfg.gradient_checkpointing, "disable_tqdm": True, "dataset_num_proc": None,
    }
    kw.update(_precision(device))
    check_trl_options(cfg.trl)
    kw.update(cfg.trl)
    try:
        return SFTConfig(**kw)
    except (ValueError, TypeError) as e:
        raise UserError(f"invalid training options: {str(e).splitlines()[0][:300]}") from None


@dataclass
class Prepared:
    """Everything training needs, loaded and validated before the output is touched."""

    cfg: DistillConfig
    args: Any
    model: Any
    tok: Any
    train: list[dict]
    evals: list[dict]
    too_long: int
    attn_before: str | None = None  # the attention implementation padding-free batches replaced
    degenerate: dict = dataclasses.field(default_factory=dict)  # counts of degenerate explanations


def prepare(cfg: DistillConfig) -> Prepared:
    """validate -> tokenizer -> rows -> examples -> SFTConfig -> model."""
    validate(cfg)
    apply_role_preset(cfg)
    device = resolve_device(cfg.device)
    tok = load_tokenizer(cfg.model, trust_remote_code=cfg.trust_remote_code)
    rows, bad = drop_degenerate(cfg, load_rows(cfg))
    examples, lengths = build_examples(cfg, tok, rows)
    kept, too_long = drop_long(cfg, examples, lengths)
    train, evals = split_eval(kept, cfg.eval_split)
    args = sft_args(cfg, device, bool(evals))  # before the model: ZeRO-3 init hooks into from_pretrained
    dtype = cfg.dtype
    if dtype == "auto":
        dtype = "bfloat16" if args.bf16 else "float32"
    quant = lora.quantization_config(cfg.lora)  # QLoRA: the 4-bit base is placed on this process's GPU at load
    model = load_model(cfg.model, device=f"cuda:{launch.local_rank()}" if quant else "cpu", dtype=dtype,
                       trust_remote_code=cfg.trust_remote_code, quantization=quant)
    lora.prepare_model(model, cfg.lora)  # refuses head targets, unties tied embeddings it trains
    return Prepared(cfg, args, model, tok, train, evals, too_long, degenerate=bad)


def make_trainer(prep: Prepared, callbacks: tuple = ()):
    """The trl.SFTTrainer over prompt/completion text rows (completion-only loss)."""
    from datasets import Dataset
    from trl import SFTTrainer

    evals = Dataset.from_list(prep.evals) if prep.evals else None
    if prep.cfg.packing or prep.cfg.padding_free:
        device = "cpu" if prep.args.use_cpu else resolve_device(prep.cfg.device)
        prep.attn_before = attention.use_packed_attention(prep.model, device)
    from transformers.trainer_callback import PrinterCallback

    trainer = SFTTrainer(model=prep.model, args=prep.args, processing_class=prep.tok,
                         train_dataset=Dataset.from_list(prep.train), eval_dataset=evals, callbacks=list(callbacks),
                         peft_config=lora.peft_config(prep.cfg.lora))
    trainer.remove_callback(PrinterCallback)  # metrics go to the log and metrics.jsonl instead
    return trainer


# ----------------------------------------------------------------------------- output


def _fix_generation_config(model, tok) -> None:
    """eos = the tokenizer's eos (plus any the model had), pad = the tokenizer's pad."""
    gen = model.generation_config
    eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    eos = [e for e in eos if e is not None]
    if tok.eos_token_id not in eos:
        eos.insert(0, tok.eos_token_id)
    gen.eos_token_id = eos[0] if len(eos) == 1 else eos
    gen.pad_token_id = tok.pad_token_id


def _save_final(trainer, prep: Prepared, out: Path) -> None:
    def finalize(model):
        _fix_generation_config(model, prep.tok)
        attention.restore(model, prep.attn_before)  # the saved model loads without rlt's kernels
    frame.save(trainer, out, prep.tok, prep.cfg.lora, prep.cfg.model, finalize, prep.cfg.trust_remote_code)


def train(prep: Prepared, callbacks: tuple = ()) -> Path:
    """Train (resuming from the last intermediate checkpoint), save, write the manifest."""
    cfg, out = prep.cfg, Path(prep.cfg.out)
    with RankZeroWriter(out, "checkpoint", cfg, inputs=inputs_of(cfg), force=cfg.force) as writer:
        shown = training_progress(f"distill ({cfg.role})", metric="loss")
        # log_at_saves: the metrics rows (and the train_loss computed from them) do not depend on a resume
        trainer = make_trainer(prep, (log_at_saves(), sft_metrics_callback(out), shown, *callbacks))
        resume = frame.fit(trainer, out, logs=(metrics_path(out),), save_last=cfg.keep_checkpoints)
        _save_final(trainer, prep, out)
        extra = {"role": cfg.role, "global_step": trainer.state.global_step, "processes": launch.world_size(),
                 "rows_per_step": launch.per_step(cfg.batch_size, prep.args.gradient_accumulation_steps),
                 "train_loss": mean_loss(read_metrics(out)), "train_rows": len(prep.train),
                 "eval_rows": len(prep.evals), "rows_too_long": prep.too_long,
                 "tokens_seen": trainer.state.num_input_tokens_seen,
                 "resumed_from": Path(resume).name if resume else None,
                 "lora": lora.describe(cfg.lora, cfg.model), "degenerate": prep.degenerate}
        frame.finish(writer, trainer, out, extra, rows=len(prep.train), keep_checkpoints=cfg.keep_checkpoints)
    return out


def run(cfg: DistillConfig, callbacks: tuple = ()) -> Path:
    """validate -> (relaunch under accelerate) -> load -> train -> write the checkpoint artifact."""
    validate(cfg)
    apply_role_preset(cfg)  # idempotent: the recipe a teacher warm-up records (and is hashed with)
    if not frame.start("distill", cfg):
        return Path(cfg.out)
    return train(prepare(cfg), callbacks)
