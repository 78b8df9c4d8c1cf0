"""`rlt teach`: GRPO training of the teacher with the RLT reward (docs/method.md "Teacher RL").

Inputs: a teacher model (M), a student model (M, same vocabulary) and a dataset
artifact (A: `id, question, solution`). Output (D): a checkpoint artifact - the
trained teacher as an HF model directory (safetensors, tokenizer, chat template)
with `.rlt/metrics.jsonl` (one row per logging step), `.rlt/samples.jsonl` (a few sampled
explanations per logging step), periodic resumable checkpoints under
`checkpoints/` and `.rlt/manifest.json` written last.

    rlt teach --teacher models/teacher-sft --student models/student --data data/train \\
        --out runs/teach --preset tiny
    rlt teach ... --preset paper --launch zero3 --nproc 8
    rlt teach ... lora.r=16                  # LoRA policy; the GRPO reference is the base without adapters

The policy is TRL's `GRPOTrainer` on the teacher view (question + prefilled
solution; the completion is the explanation). The reward object holds the frozen
student and is bound to the trainer after construction, so teacher log-probs
come from the current policy. Rerunning after a kill resumes from the last
checkpoint; a finished output is left alone unless `--force`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from stages.artifacts.checkpoints import (
    checkpoint_dir,
    keep_checkpoints_opt,
    save_total_limit_opt,
)
from stages.artifacts.layout import SAMPLES, meta_path, metrics_path
from stages.artifacts.read import read_rows
from stages.artifacts.state import already_complete
from stages.config import above, at_least, between, check_config, inputs_of, opt
from stages.errors import UserError
from stages.method.grpo import RLTRewardFunc
from stages.method.settings import (
    PromptsConfig,
    RewardConfig,
    check_reward,
    resolved_teacher_temperature,
    with_teacher_temperature,
)
from stages.method.views import check_template, teacher_view
from stages.models.loading import DEVICE_HELP, check_device
from stages.progress import training_progress
from stages.training import frame, launch, lora, trl_options
from stages.training.lora import LoraConfig
from stages.training.metrics import grpo_metrics_callback, log_at_saves, mean_loss, read_metrics, summarize
from stages.training.rankzero import RankZeroWriter

log = logging.getLogger(__name__)

PRESETS: dict[str, dict] = {
    # The paper's run (7B teacher, 8xH100): 16 prompts x 64 samples per optimizer step.
    "paper": {"preset": "paper", "num_generations": 64, "prompts_per_step": 16, "max_steps": 125, "lr": 1e-6,
              "beta": 0.04, "sync_ref_model": True, "ref_model_mixup_alpha": 0.9, "ref_model_sync_steps": 32,
              "temperature": 0.7, "loss_type": "grpo", "scale_rewards": "group",
              "max_new_tokens": 16384, "save_steps": 25},
    # Improves the warmed-up tiny teacher on a CPU in a couple of minutes.
    "tiny": {"preset": "tiny", "num_generations": 8, "prompts_per_step": 4, "max_steps": 100, "lr": 2e-4,
             "beta": 0.04, "sync_ref_model": True, "ref_model_mixup_alpha": 0.9, "ref_model_sync_steps": 32,
             "temperature": 0.7, "loss_type": "grpo", "scale_rewards": "group",
             "max_new_tokens": 128, "save_steps": 50},
}

TRL_CONFIG = "GRPOConfig"  # the TRL config class the `trl.*` keys are fields of (`--help-keys trl`)
# GRPOConfig fields set from a top-level key (or derived): `trl.<name>` must not set them.
MANAGED = {"learning_rate": "lr", "num_train_epochs": "epochs", "max_steps": "max_steps",
           "num_generations": "num_generations", "gradient_accumulation_steps": "grad_accum",
           "max_completion_length": "max_new_tokens", "temperature": "temperature", "beta": "beta",
           "loss_type": "loss_type", "scale_rewards": "scale_rewards", "sync_ref_model": "sync_ref_model",
           "ref_model_mixup_alpha": "ref_model_mixup_alpha", "ref_model_sync_steps": "ref_model_sync_steps",
           "save_steps": "save_steps", "logging_steps": "logging_steps", "seed": "seed", "report_to": "report_to",
           "use_vllm": "use_vllm", "vllm_mode": "vllm_mode", "trust_remote_code": "trust_remote_code",
           "output_dir": "out", "per_device_train_batch_size": "prompts_per_step",
           "generation_batch_size": "prompts_per_step", "steps_per_generation": "grad_accum"}

CHOICES = {"loss_type": ("grpo", "dapo", "dr_grpo", "bnpo", "cispo", "sapo", "luspo", "vespo"),
           "scale_rewards": ("group", "batch", "none"), "vllm_mode": ("colocate", "server")}


@dataclass
class TeachConfig(launch.LaunchOptions):
    """Options of `rlt teach`."""

    teacher: str = opt("", "Teacher model to train (model directory or hub id), usually warmed up by SFT.",
                       flag=True, input=True, required=True)
    student: str = opt("", "Frozen student model whose understanding is the reward (same vocabulary).",
                       flag=True, input=True, required=True)
    data: str = opt("", "Dataset artifact (or Parquet file) with question and solution columns.", flag=True, input=True, required=True)
    out: str = opt("", "Output checkpoint artifact directory.", hash=False, flag=True, required=True)
    preset: str | None = opt(None, "Name of the preset these settings came from (tiny, paper).", hash=False)
    max_steps: int | None = opt(None, "Optimizer steps; unset = run `epochs` passes over the data.", flag=True, check=at_least(1))
    epochs: float = opt(1.0, "Passes over the data when max_steps is unset.", flag=True, check=above(0))
    lr: float = opt(1e-6, "Learning rate (constant schedule unless trl.lr_scheduler_type says otherwise).", flag=True, check=above(0))
    num_generations: int = opt(8, "Group size: completions sampled per prompt (GRPO compares a group: at least 2).",
                               flag=True, check=at_least(2))
    prompts_per_step: int = opt(4, "Prompts per optimizer step (completions per step = this x num_generations).",
                                flag=True, check=at_least(1))
    grad_accum: int = opt(1, "Gradient accumulation micro-steps per optimizer step (per device).", flag=True, check=at_least(1))
    max_new_tokens: int = opt(512, "Most explanation tokens generated per completion.", flag=True,
                              aliases=("max_completion_length",), check=at_least(1))
    temperature: float = opt(0.7, "Sampling temperature of the teacher.", flag=True, check=above(0))
    beta: float = opt(0.04, "KL-to-reference coefficient (k3 estimator); 0 drops the reference model.", check=at_least(0))
    loss_type: str = opt("grpo", "TRL loss type (grpo as in the paper; TRL's default is dapo).", choices=CHOICES["loss_type"])
    scale_rewards: str = opt("group", "Advantage scaling: group, batch or none.", choices=CHOICES["scale_rewards"])
    sync_ref_model: bool = opt(True, "Periodically mix the policy into the reference model.")
    ref_model_mixup_alpha: float = opt(0.9, "ref <- (1 - alpha) * ref + alpha * policy at each sync.", check=between(0, 1))
    ref_model_sync_steps: int = opt(32, "Optimizer steps between reference syncs.", check=at_least(1))
    save_steps: int = opt(50, "Optimizer steps between resumable checkpoints.", hash=False, check=at_least(1))
    save_total_limit: int = save_total_limit_opt()
    keep_checkpoints: bool = keep_checkpoints_opt()
    logging_steps: int = opt(1, "Optimizer steps between metrics rows.", hash=False, check=at_least(1))
    seed: int = opt(0, "Seed of sampling and training.", flag=True)
    report_to: str = opt("none", "Extra trackers (wandb, tensorboard, trackio...); metrics.jsonl is always written.",
                         hash=False)
    device: str = opt("auto", DEVICE_HELP, hash=False, flag=True, check=check_device)
    dtype: str = opt("auto", "Weights dtype: auto (bf16 on GPU, float32 on CPU), float32, bfloat16.")
    use_vllm: bool = opt(False, "Generate with vLLM (GPU; needs the vllm extra).", hash=False, flag=True)
    vllm_mode: str = opt("colocate", "vLLM mode: colocate or server.", hash=False, choices=CHOICES["vllm_mode"])
    force: bool = opt(False, "Overwrite an existing output.", hash=False, flag=True)
    trust_remote_code: bool = opt(False, "Allow model code from the model directory.", hash=False, flag=True)
    offload_student: bool = opt(False, "Keep the student on the CPU (saves accelerator memory, slower).",
                                hash=False, flag=True)
    reward_batch_size: int = opt(32, "Completions per padded forward pass of the reward.", hash=False, check=at_least(1))
    samples_per_log: int = opt(4, "Sampled explanations written to samples.jsonl per logging step.", hash=False, check=at_least(0))
    prompts: PromptsConfig = opt(PromptsConfig, "System prompts of the two views.")
    reward: RewardConfig = opt(RewardConfig, "The RLT reward.")
    lora: LoraConfig = opt(LoraConfig, "LoRA adapters on the teacher (PEFT); lora.r=0 = full fine-tuning.")
    trl: dict = opt(dict, "Any other GRPOConfig option, e.g. trl.warmup_ratio=0.05.")


# ----------------------------------------------------------------------------- validation


def devices(cfg: TeachConfig) -> int:
    """Training processes of this run: --nproc before launching, the launcher's world size inside it."""
    if cfg.launch and not launch.in_launched_process():
        return launch.processes(cfg.nproc, cfg.gpus)
    return launch.world_size()


def per_device_batch(cfg: TeachConfig, world: int) -> int:
    """Completions per device per micro-step; UserError naming the numbers to change."""
    total, per_step = cfg.prompts_per_step * cfg.num_generations, world * cfg.grad_accum
    if total % per_step:
        raise UserError(
            f"batch arithmetic: prompts_per_step x num_generations = {cfg.prompts_per_step} x "
            f"{cfg.num_generations} = {total} completions per step must be divisible by devices x grad_accum "
            f"= {world} x {cfg.grad_accum} = {per_step}; change prompts_per_step, num_generations, grad_accum "
            f"or the number of devices")
    return total // per_step


def check_trl_options(options: dict) -> None:
    """The `trl.*` keys checked by the training stages' one rule (stages/training/trl_options.py)."""
    from trl import GRPOConfig

    trl_options.check_trl_options(options, GRPOConfig, MANAGED, "teach")


def validate(cfg: TeachConfig) -> int:
    """Checks that need no model; returns the per-device batch size."""
    from stages.models.loading import resolve_device

    check_config(cfg)
    if cfg.use_vllm and importlib.util.find_spec("vllm") is None:
        raise UserError("use_vllm needs vLLM, which is not installed: pip install 'rlt[vllm]' (GPU only)")
    if cfg.launch and not launch.in_launched_process():
        launch.check_launch(cfg.launch, launch.processes(cfg.nproc, cfg.gpus))
    lora.validate(cfg.lora, on_cuda=resolve_device(cfg.device).startswith("cuda"))
    check_reward(cfg.reward)
    batch = per_device_batch(cfg, devices(cfg))
    check_trl_options(cfg.trl)
    return batch


def finalize_config(cfg: TeachConfig) -> TeachConfig:
    """The reward's teacher temperature as a number, once: unset follows the sampling `temperature`
    (stages/method/settings.py `with_teacher_temperature`). Idempotent; commands.make_config and run apply it."""
    cfg.reward = with_teacher_temperature(cfg.reward, cfg.temperature)
    return cfg


def temperatures(cfg: TeachConfig) -> dict:
    """Sampling and reward temperatures of the teacher; a deliberate mismatch is logged (and kept in the manifest)."""
    reward_tau = resolved_teacher_temperature(cfg.reward)  # finalized once, by run
    apart = reward_tau != cfg.temperature
    if apart:
        log.warning("reward.teacher_temperature=%s is set apart from the sampling temperature %s: the sampled-token "
                    "KL then no longer estimates the KL (docs/method.md \"Temperatures\")", reward_tau, cfg.temperature)
    return {"sampling": cfg.temperature, "reward_teacher": reward_tau, "set_apart": apart}


# ----------------------------------------------------------------------------- loading


def load(cfg: TeachConfig):
    """(tokenizer, teacher policy, RLTReward holding the frozen student) for a finalized `cfg` (run finalizes it;
    the reward refuses an unresolved teacher temperature with ValueError)."""
    from stages.method.reward import RLTReward
    from stages.models.loading import check_same_vocab, load_model, load_tokenizer, resolve_device

    device = resolve_device(cfg.device)
    if launch.in_launched_process() and device == "cuda":  # one GPU per process
        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    tok = load_tokenizer(cfg.teacher, cfg.trust_remote_code)
    student_tok = load_tokenizer(cfg.student, cfg.trust_remote_code)
    check_same_vocab(tok, student_tok)
    check_template(tok, cfg.teacher)
    check_template(student_tok, cfg.student)
    teacher = load_model(cfg.teacher, device=device, dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code,
                         quantization=lora.quantization_config(cfg.lora))
    lora.prepare_model(teacher, cfg.lora)  # refuses head targets, unties tied embeddings it trains
    student = load_model(cfg.student, device="cpu" if cfg.offload_student else device, dtype=cfg.dtype,
                         trust_remote_code=cfg.trust_remote_code)
    student.requires_grad_(False)
    student.eval()
    scorer = RLTReward(student, student_tok, cfg.reward, cfg.prompts, teacher=None,
                       reward_batch_size=cfg.reward_batch_size,
                       teacher_tokenizer=tok if tok.chat_template != student_tok.chat_template else None)
    return tok, teacher, scorer


def prompt_rows(tok, rows: list[dict], system: str) -> list[dict]:
    """Training rows: the raw-text teacher view up to the prefill, plus the reward's columns."""
    return [{"prompt": teacher_view(tok, system, r["question"], r["solution"]), "id": r["id"],
             "question": r["question"], "solution": r["solution"]} for r in rows]


# ----------------------------------------------------------------------------- training


def grpo_args(cfg: TeachConfig, batch: int, on_gpu: bool):
    """GRPOConfig from the stage config; the trl dict overrides the defaults chosen here."""
    from trl import GRPOConfig

    kwargs = dict(  # noqa: C408 - keyword form mirrors GRPOConfig's signature
        output_dir=str(checkpoint_dir(cfg.out)), per_device_train_batch_size=batch,
        gradient_accumulation_steps=cfg.grad_accum, num_generations=cfg.num_generations,
        max_completion_length=cfg.max_new_tokens, temperature=cfg.temperature, top_p=1.0,
        beta=cfg.beta, loss_type=cfg.loss_type, scale_rewards=cfg.scale_rewards,
        sync_ref_model=cfg.sync_ref_model and cfg.beta > 0, ref_model_mixup_alpha=cfg.ref_model_mixup_alpha,
        ref_model_sync_steps=cfg.ref_model_sync_steps, learning_rate=cfg.lr, lr_scheduler_type="constant",
        max_steps=cfg.max_steps or -1, num_train_epochs=cfg.epochs, save_strategy="steps",
        save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit, logging_steps=cfg.logging_steps,
        seed=cfg.seed, report_to=cfg.report_to, use_vllm=cfg.use_vllm, vllm_mode=cfg.vllm_mode,
        trust_remote_code=cfg.trust_remote_code, bf16=on_gpu, use_cpu=not on_gpu, activation_checkpointing=False,
        disable_dropout=True, log_completions=False, dataloader_num_workers=0, disable_tqdm=True,
    )
    if kwargs["sync_ref_model"] and lora.enabled(cfg.lora):
        # TRL refuses sync_ref_model with PEFT: the reference is the frozen base (adapters disabled)
        log.info("lora: the GRPO reference model is the base without adapters; reference syncing "
                 "(sync_ref_model) is off")
        kwargs["sync_ref_model"] = False
    kwargs.update(cfg.trl)
    try:
        return GRPOConfig(**kwargs)
    except (ValueError, TypeError) as e:
        raise UserError(f"GRPO settings: {str(e).splitlines()[0]}") from None


def make_trainer(cfg: TeachConfig, tok, teacher, scorer, rows: list[dict], batch: int):
    """(GRPOTrainer, its bound RLTRewardFunc). With LoRA the policy is the adapted teacher and the
    reference the same weights with adapters disabled (TRL's PEFT path: no second copy)."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import GRPOTrainer

    args = grpo_args(cfg, batch, on_gpu=teacher.device.type == "cuda")
    reward_fn = RLTRewardFunc(scorer, tok, cfg.samples_per_log)
    trainer = GRPOTrainer(model=teacher, reward_funcs=[reward_fn], args=args, processing_class=tok,
                          train_dataset=Dataset.from_list(prompt_rows(tok, rows, cfg.prompts.teacher_system)),
                          peft_config=lora.peft_config(cfg.lora))
    reward_fn.bind(trainer)
    trainer.remove_callback(PrinterCallback)  # metrics go to metrics.jsonl and one log line per step
    trainer.add_callback(log_at_saves())  # the metrics rows of a resumed run are those of an uninterrupted one
    trainer.add_callback(grpo_metrics_callback(Path(cfg.out), reward_fn))
    trainer.add_callback(training_progress("teach", metric="reward"))
    return trainer, reward_fn


def train(cfg: TeachConfig, tok, teacher, scorer, rows: list[dict], batch: int) -> tuple[object, dict]:
    """Build the GRPOTrainer, train (resuming when a checkpoint exists), save the teacher: (trainer, the
    manifest's training figures)."""
    out = Path(cfg.out)
    trainer, reward_fn = make_trainer(cfg, tok, teacher, scorer, rows, batch)
    t0 = time.time()
    resume = frame.fit(trainer, out, logs=(metrics_path(out), meta_path(out, SAMPLES)), rewards=reward_fn.take_rewards,
                       save_last=cfg.keep_checkpoints)
    frame.save(trainer, out, tok, cfg.lora, cfg.teacher, trust_remote_code=cfg.trust_remote_code)
    return trainer, {"global_step": trainer.state.global_step, "resumed_from": resume,
            "train_seconds": round(time.time() - t0, 2), "train_loss": mean_loss(read_metrics(out)),
            "processes": launch.world_size(), "per_device_batch": batch,
            "completions_per_step": launch.per_step(batch, cfg.grad_accum)}


# ----------------------------------------------------------------------------- run


def run(cfg: TeachConfig) -> Path:
    """validate -> load -> GRPO -> checkpoint artifact (manifest last)."""
    finalize_config(cfg)  # a config built in Python, not by commands.make_config
    batch = validate(cfg)
    tau = temperatures(cfg)
    if not frame.start("teach", cfg):
        return Path(cfg.out)
    rows = read_rows(cfg.data, "dataset")
    if len(rows) < cfg.prompts_per_step:
        raise UserError(f"{cfg.data} has {len(rows)} rows, fewer than prompts_per_step={cfg.prompts_per_step}")
    tok, teacher, scorer = load(cfg)
    with RankZeroWriter(cfg.out, "checkpoint", cfg, inputs=inputs_of(cfg), force=cfg.force) as w:
        if w.complete:
            return already_complete(cfg.out)
        trainer, info = train(cfg, tok, teacher, scorer, rows, batch)
        info.update(summarize(Path(cfg.out)))
        frame.finish(w, trainer, cfg.out, {"training": info, "teacher": cfg.teacher, "student": cfg.student,
                                           "temperatures": tau, "lora": lora.describe(cfg.lora, cfg.teacher)},
                     rows=len(rows), keep_checkpoints=cfg.keep_checkpoints)
    return Path(cfg.out)
