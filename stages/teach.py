"""`rlt teach`: GRPO training of the teacher with the RLT reward (docs/method.md "Teacher RL").

Inputs: a teacher model (M), a student model (M, same vocabulary) and a dataset
artifact (A: `id, question, solution`). Output (D): a checkpoint artifact - the
trained teacher as an HF model directory (safetensors, tokenizer, chat template)
with `metrics.jsonl` (one row per logging step), `samples.jsonl` (a few sampled
explanations per logging step), periodic resumable checkpoints under
`checkpoints/` and `manifest.json` written last.

    rlt teach --teacher models/teacher-sft --student models/student --data data/train \\
        --out runs/teach --preset tiny
    rlt teach ... --preset paper --launch zero3 --gpus 8

The policy is TRL's `GRPOTrainer` on the teacher view (question + prefilled
solution; the completion is the explanation). The reward object holds the frozen
student and is bound to the trainer after construction, so teacher log-probs
come from the current policy. Rerunning after a kill resumes from the last
checkpoint; a finished output is left alone unless `--force`.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from stages import launch
from stages.artifacts import ArtifactWriter, read_rows
from stages.checkpoints import last_checkpoint, truncate_jsonl
from stages.config import PromptsConfig, RewardConfig, config_hash, opt, to_dict, with_teacher_temperature
from stages.errors import UserError
from stages.formats import decode_keeping_tags, special_ids_except_tags, teacher_view

log = logging.getLogger(__name__)

PRESETS: dict[str, dict] = {
    # The paper's run (7B teacher, 8xH100): 16 prompts x 64 samples per optimizer step.
    "paper": {"preset": "paper", "num_generations": 64, "prompts_per_step": 16, "max_steps": 125, "lr": 1e-6,
              "beta": 0.04, "sync_ref_model": True, "ref_model_mixup_alpha": 0.9, "ref_model_sync_steps": 32,
              "temperature": 0.7, "loss_type": "grpo", "scale_rewards": "group",
              "max_completion_length": 16384, "save_steps": 25},
    # Improves the warmed-up tiny teacher on a CPU in a couple of minutes.
    "tiny": {"preset": "tiny", "num_generations": 8, "prompts_per_step": 4, "max_steps": 100, "lr": 2e-4,
             "beta": 0.04, "sync_ref_model": True, "ref_model_mixup_alpha": 0.9, "ref_model_sync_steps": 32,
             "temperature": 0.7, "loss_type": "grpo", "scale_rewards": "group",
             "max_completion_length": 128, "save_steps": 50},
}

# GRPOConfig fields set from a top-level key (or derived): `trl.<name>` must not set them.
MANAGED = {"learning_rate": "lr", "num_train_epochs": "epochs", "max_steps": "max_steps",
           "num_generations": "num_generations", "gradient_accumulation_steps": "grad_accum",
           "max_completion_length": "max_completion_length", "temperature": "temperature", "beta": "beta",
           "loss_type": "loss_type", "scale_rewards": "scale_rewards", "sync_ref_model": "sync_ref_model",
           "ref_model_mixup_alpha": "ref_model_mixup_alpha", "ref_model_sync_steps": "ref_model_sync_steps",
           "save_steps": "save_steps", "logging_steps": "logging_steps", "seed": "seed", "report_to": "report_to",
           "use_vllm": "use_vllm", "vllm_mode": "vllm_mode", "trust_remote_code": "trust_remote_code",
           "output_dir": "out", "per_device_train_batch_size": "prompts_per_step",
           "generation_batch_size": "prompts_per_step", "steps_per_generation": "grad_accum"}

CHOICES = {"loss_type": ("grpo", "dapo", "dr_grpo", "bnpo", "cispo", "sapo", "luspo", "vespo"),
           "scale_rewards": ("group", "batch", "none"), "vllm_mode": ("colocate", "server")}


@dataclass
class TeachConfig:
    """Options of `rlt teach`."""

    teacher: str = opt("", "Teacher model to train (model directory or hub id), usually warmed up by SFT.", hash=False,
                       flag=True)
    student: str = opt("", "Frozen student model whose understanding is the reward (same vocabulary).", hash=False,
                       flag=True)
    data: str = opt("", "Dataset artifact (or Parquet file) with question and solution columns.", hash=False, flag=True)
    out: str = opt("", "Output checkpoint artifact directory.", hash=False, flag=True)
    preset: str | None = opt(None, "Name of the preset these settings came from (tiny, paper).", hash=False)
    max_steps: int | None = opt(None, "Optimizer steps; unset = run `epochs` passes over the data.", flag=True)
    epochs: float = opt(1.0, "Passes over the data when max_steps is unset.", flag=True)
    lr: float = opt(1e-6, "Learning rate (constant schedule unless trl.lr_scheduler_type says otherwise).", flag=True)
    num_generations: int = opt(8, "Group size: completions sampled per prompt.", flag=True)
    prompts_per_step: int = opt(4, "Prompts per optimizer step (completions per step = this x num_generations).",
                                flag=True)
    grad_accum: int = opt(1, "Gradient accumulation micro-steps per optimizer step (per device).", flag=True)
    max_completion_length: int = opt(512, "Most explanation tokens generated per completion.", flag=True)
    temperature: float = opt(0.7, "Sampling temperature of the teacher.", flag=True)
    beta: float = opt(0.04, "KL-to-reference coefficient (k3 estimator); 0 drops the reference model.")
    loss_type: str = opt("grpo", "TRL loss type (grpo as in the paper; TRL's default is dapo).")
    scale_rewards: str = opt("group", "Advantage scaling: group, batch or none.")
    sync_ref_model: bool = opt(True, "Periodically mix the policy into the reference model.")
    ref_model_mixup_alpha: float = opt(0.9, "ref <- (1 - alpha) * ref + alpha * policy at each sync.")
    ref_model_sync_steps: int = opt(32, "Optimizer steps between reference syncs.")
    save_steps: int = opt(50, "Optimizer steps between resumable checkpoints.", hash=False)
    save_total_limit: int = opt(2, "Checkpoints kept under out/checkpoints.", hash=False)
    logging_steps: int = opt(1, "Optimizer steps between metrics rows.", hash=False)
    seed: int = opt(0, "Seed of sampling and training.", flag=True)
    report_to: str = opt("none", "Extra trackers (wandb, tensorboard, trackio...); metrics.jsonl is always written.",
                         hash=False)
    device: str = opt("auto", "auto, cpu or cuda (single-process runs).", hash=False, flag=True)
    dtype: str = opt("auto", "Weights dtype: auto (bf16 on GPU, float32 on CPU), float32, bfloat16.")
    use_vllm: bool = opt(False, "Generate with vLLM (GPU; needs the vllm extra).", hash=False, flag=True)
    vllm_mode: str = opt("colocate", "vLLM mode: colocate or server.", hash=False)
    launch: str | None = opt(None, "Scale out with an accelerate preset: ddp, zero2, zero3, zero3-offload.",
                             hash=False, flag=True)
    gpus: int | None = opt(None, "Processes (GPUs) for --launch.", hash=False, flag=True)
    force: bool = opt(False, "Overwrite an existing output.", hash=False, flag=True)
    trust_remote_code: bool = opt(False, "Allow model code from the model directory.", hash=False, flag=True)
    offload_student: bool = opt(False, "Keep the student on the CPU (saves accelerator memory, slower).",
                                hash=False, flag=True)
    reward_batch_size: int = opt(32, "Completions per padded reward forward pass.", hash=False)
    samples_per_log: int = opt(4, "Sampled explanations written to samples.jsonl per logging step.", hash=False)
    prompts: PromptsConfig = opt(PromptsConfig, "System prompts of the two views.")
    reward: RewardConfig = opt(RewardConfig, "The RLT reward.")
    trl: dict = opt(dict, "Any other GRPOConfig option, e.g. trl.warmup_ratio=0.05.")


# ----------------------------------------------------------------------------- validation


def devices(cfg: TeachConfig) -> int:
    """Training processes of this run: --gpus before launching, the launcher's world size inside it."""
    if cfg.launch and not launch.in_launched_process():
        return cfg.gpus or 1
    return launch.world_size()


def per_device_batch(cfg: TeachConfig, world: int) -> int:
    """Completions per device per micro-step; UserError naming the numbers to change."""
    for name in ("num_generations", "prompts_per_step", "grad_accum", "max_completion_length"):
        if getattr(cfg, name) < 1:
            raise UserError(f"{name} must be at least 1, got {getattr(cfg, name)}")
    if cfg.num_generations < 2:
        raise UserError(f"num_generations must be at least 2 (GRPO compares samples of a group), "
                        f"got {cfg.num_generations}")
    total, per_step = cfg.prompts_per_step * cfg.num_generations, world * cfg.grad_accum
    if total % per_step:
        raise UserError(
            f"batch arithmetic: prompts_per_step x num_generations = {cfg.prompts_per_step} x "
            f"{cfg.num_generations} = {total} completions per step must be divisible by devices x grad_accum "
            f"= {world} x {cfg.grad_accum} = {per_step}; change prompts_per_step, num_generations, grad_accum "
            f"or the number of devices")
    return total // per_step


def check_trl_options(options: dict) -> None:
    """Every `trl.*` key must be a GRPOConfig field not already set by a top-level key."""
    from trl import GRPOConfig

    valid = {f.name for f in dataclasses.fields(GRPOConfig)}
    problems = []
    for key in options:
        if key in MANAGED:
            problems.append(f"'trl.{key}' is set by the top-level key '{MANAGED[key]}'")
        elif key not in valid:
            problems.append(f"unknown GRPOConfig option 'trl.{key}'")
    if problems:
        raise UserError("; ".join(problems) + " (see trl.GRPOConfig for the valid names)")


def validate(cfg: TeachConfig) -> int:
    """Checks that need no model; returns the per-device batch size."""
    for name in ("teacher", "student", "data", "out"):
        if not getattr(cfg, name):
            raise UserError(f"--{name} is required")
    if cfg.max_steps is not None and cfg.max_steps < 1:
        raise UserError(f"max_steps must be at least 1, got {cfg.max_steps}")
    for name, valid in CHOICES.items():
        if getattr(cfg, name) not in valid:
            raise UserError(f"{name} must be one of {', '.join(valid)}, got {getattr(cfg, name)!r}")
    if cfg.use_vllm and importlib.util.find_spec("vllm") is None:
        raise UserError("use_vllm needs vLLM, which is not installed: pip install 'rlt[vllm]' (GPU only)")
    if cfg.launch:
        launch.check_launch(cfg.launch, cfg.gpus or 1)
    batch = per_device_batch(cfg, devices(cfg))
    check_trl_options(cfg.trl)
    return batch


def temperatures(cfg: TeachConfig) -> dict:
    """Sampling and reward temperatures of the teacher; a deliberate mismatch is logged (and kept in the manifest)."""
    reward_tau = with_teacher_temperature(cfg.reward, cfg.temperature).teacher_temperature
    apart = reward_tau != cfg.temperature
    if apart:
        log.warning("reward.teacher_temperature=%s is set apart from the sampling temperature %s: the sampled-token "
                    "KL then no longer estimates the KL (docs/method.md \"Temperatures\")", reward_tau, cfg.temperature)
    return {"sampling": cfg.temperature, "reward_teacher": reward_tau, "set_apart": apart}


# ----------------------------------------------------------------------------- loading


def load(cfg: TeachConfig):
    """(tokenizer, teacher policy, RLTReward holding the frozen student)."""
    from stages.models import check_same_vocab, load_model, load_tokenizer, resolve_device
    from stages.reward import RLTReward

    device = resolve_device(cfg.device)
    if launch.in_launched_process() and device == "cuda":  # one GPU per process
        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    tok = load_tokenizer(cfg.teacher, cfg.trust_remote_code)
    student_tok = load_tokenizer(cfg.student, cfg.trust_remote_code)
    check_same_vocab(tok, student_tok)
    teacher = load_model(cfg.teacher, device=device, dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code)
    student = load_model(cfg.student, device="cpu" if cfg.offload_student else device, dtype=cfg.dtype,
                         trust_remote_code=cfg.trust_remote_code)
    student.requires_grad_(False)
    student.eval()
    reward = with_teacher_temperature(cfg.reward, cfg.temperature)
    scorer = RLTReward(student, student_tok, reward, cfg.prompts, teacher=None, batch_size=cfg.reward_batch_size,
                       teacher_tokenizer=tok if tok.chat_template != student_tok.chat_template else None)
    return tok, teacher, scorer


def prompt_rows(tok, rows: list[dict], system: str) -> list[dict]:
    """Training rows: the raw-text teacher view up to the prefill, plus the reward's columns."""
    return [{"prompt": teacher_view(tok, system, r["question"], r["solution"]), "id": r["id"],
             "question": r["question"], "solution": r["solution"]} for r in rows]


# ----------------------------------------------------------------------------- reward adapter


class RLTRewardFunc:
    """GRPO reward function: the RLT reward of each completion under the current policy.

    Bound to the trainer after construction (`bind`), it reads the policy from
    `trainer.model` at every call. Completion text is decoded from
    `completion_ids` by the one decode rule (`formats.decode_keeping_tags`: tags
    kept, other special tokens dropped), so the end tag survives whatever TRL's
    own decoding removed.
    """

    def __init__(self, scorer, tokenizer, samples_per_log: int = 4):
        self.__name__ = "rlt"
        self.scorer, self.tok, self.samples_per_log = scorer, tokenizer, samples_per_log
        self.stop_ids = {i for i in (tokenizer.eos_token_id, tokenizer.pad_token_id) if i is not None}
        self._drop = special_ids_except_tags(tokenizer)
        self._policy = None
        self.samples: list[dict] = []

    def bind(self, trainer) -> RLTRewardFunc:
        """Take teacher log-probs from `trainer.model` (unwrapped from accelerate) from now on."""
        self.stop_ids |= set(getattr(trainer, "eos_token_ids", []) or [])
        self._policy = lambda: trainer.accelerator.unwrap_model(trainer.model)
        return self

    def bind_model(self, model) -> RLTRewardFunc:
        """Use a fixed model as the teacher (scoring outside a trainer)."""
        self._policy = lambda: model
        return self

    def completion_text(self, ids) -> str:
        ids = list(ids)
        while ids and ids[-1] in self.stop_ids:  # eos / padding after the completion
            ids.pop()
        return decode_keeping_tags(self.tok, ids, self._drop)

    def __call__(self, prompts, completions, completion_ids, question, solution, log_metric=None, **_) -> list[float]:
        import torch

        if self._policy is None:
            raise RuntimeError("RLTRewardFunc used before bind(trainer) or bind_model(model)")
        rows = [{"question": q, "solution": s, "completion": self.completion_text(ids)}
                for q, s, ids in zip(question, solution, completion_ids)]
        teacher = self._policy()
        was_training = teacher.training
        teacher.eval()
        try:
            with torch.no_grad():
                scored = self.scorer.score(rows, teacher=teacher)
        finally:
            teacher.train(was_training)
        if log_metric is not None:
            for name, value in reward_summary(scored).items():
                log_metric(f"rlt/{name}", value)
        self._keep(rows, scored)
        return [float(r["reward"]) for r in scored]

    def _keep(self, rows: list[dict], scored: list[dict]) -> None:
        keep = ("explanation", "reward", "sol_logp_mean", "sol_logp_min", "kl_mean", "kl_max", "format_ok",
                "aligned", "explanation_tokens")
        room = max(self.samples_per_log - len(self.samples), 0)
        self.samples += [{"question": row["question"], "solution": row["solution"], **{k: r.get(k) for k in keep}}
                         for row, r in zip(rows[:room], scored)]

    def take_samples(self) -> list[dict]:
        out, self.samples = self.samples, []
        return out


def reward_summary(scored: list[dict]) -> dict[str, float]:
    """Batch means of the reward components, format-ok rate and alignment failures."""
    n = max(len(scored), 1)
    out = {k: sum(float(r[k]) for r in scored) / n
           for k in ("sol_logp_mean", "sol_logp_min", "kl_mean", "kl_max", "explanation_tokens")}
    out["format_ok"] = sum(bool(r["format_ok"]) for r in scored) / n
    out["align_fail"] = sum(not r["aligned"] for r in scored) / n
    return out


# ----------------------------------------------------------------------------- metrics


METRIC_KEYS = {"reward": "reward", "reward_std": "reward_std", "sol_logp_mean": "rlt/sol_logp_mean",
               "sol_logp_min": "rlt/sol_logp_min", "kl_mean": "rlt/kl_mean", "kl_max": "rlt/kl_max",
               "format_ok": "rlt/format_ok", "align_fail": "rlt/align_fail",
               "explanation_tokens": "rlt/explanation_tokens", "completion_length": "completions/mean_length",
               "clipped_ratio": "completions/clipped_ratio", "kl_ref": "kl", "entropy": "entropy",
               "loss": "loss", "grad_norm": "grad_norm", "lr": "learning_rate"}


def _append_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "a") as f:
        f.writelines(json.dumps(r, default=str) + "\n" for r in rows)


def metrics_callback(out: Path, reward_fn: RLTRewardFunc):
    """A TrainerCallback writing metrics.jsonl and samples.jsonl on the main process."""
    from transformers import TrainerCallback

    class MetricsLog(TrainerCallback):
        def __init__(self):
            self.t_last, self.step_seconds = time.time(), []

        def on_step_end(self, args, state, control, **kw):
            now = time.time()
            self.step_seconds.append(now - self.t_last)
            self.t_last = now

        def on_log(self, args, state, control, logs=None, **kw):
            if not state.is_world_process_zero or not logs or "reward" not in logs:
                return
            row = {"step": state.global_step, "epoch": logs.get("epoch")}
            row.update({k: logs.get(src) for k, src in METRIC_KEYS.items()})
            secs, self.step_seconds = self.step_seconds, []
            row["seconds_per_step"] = sum(secs) / len(secs) if secs else None
            _append_jsonl(out / "metrics.jsonl", [row])
            log.info("step %d reward=%.4f format_ok=%.2f sol_logp=%.3f kl=%.3f kl_ref=%.4f %.2fs/step",
                     row["step"], *(row[k] if row[k] is not None else math.nan
                                    for k in ("reward", "format_ok", "sol_logp_mean", "kl_mean", "kl_ref",
                                              "seconds_per_step")))
            _append_jsonl(out / "samples.jsonl", [{"step": state.global_step, **s} for s in reward_fn.take_samples()])

    return MetricsLog()


# ----------------------------------------------------------------------------- training


def grpo_args(cfg: TeachConfig, batch: int, on_gpu: bool):
    """GRPOConfig from the stage config; the trl dict overrides the defaults chosen here."""
    from trl import GRPOConfig

    kwargs = dict(  # noqa: C408 - keyword form mirrors GRPOConfig's signature
        output_dir=str(Path(cfg.out) / "checkpoints"), per_device_train_batch_size=batch,
        gradient_accumulation_steps=cfg.grad_accum, num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length, temperature=cfg.temperature, top_p=1.0,
        beta=cfg.beta, loss_type=cfg.loss_type, scale_rewards=cfg.scale_rewards,
        sync_ref_model=cfg.sync_ref_model and cfg.beta > 0, ref_model_mixup_alpha=cfg.ref_model_mixup_alpha,
        ref_model_sync_steps=cfg.ref_model_sync_steps, learning_rate=cfg.lr, lr_scheduler_type="constant",
        max_steps=cfg.max_steps or -1, num_train_epochs=cfg.epochs, save_strategy="steps",
        save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit, logging_steps=cfg.logging_steps,
        seed=cfg.seed, report_to=cfg.report_to, use_vllm=cfg.use_vllm, vllm_mode=cfg.vllm_mode,
        trust_remote_code=cfg.trust_remote_code, bf16=on_gpu, use_cpu=not on_gpu, gradient_checkpointing=False,
        disable_dropout=True, log_completions=False, dataloader_num_workers=0, disable_tqdm=True,
    )
    kwargs.update(cfg.trl)
    try:
        return GRPOConfig(**kwargs)
    except (ValueError, TypeError) as e:
        raise UserError(f"GRPO settings: {str(e).splitlines()[0]}") from None


def train(cfg: TeachConfig, tok, teacher, scorer, rows: list[dict], batch: int) -> dict:
    """Build the GRPOTrainer, bind the reward, train (resuming when a checkpoint exists), save the teacher."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import GRPOTrainer

    out = Path(cfg.out)
    args = grpo_args(cfg, batch, on_gpu=teacher.device.type == "cuda")
    reward_fn = RLTRewardFunc(scorer, tok, cfg.samples_per_log)
    trainer = GRPOTrainer(model=teacher, reward_funcs=[reward_fn], args=args, processing_class=tok,
                          train_dataset=Dataset.from_list(prompt_rows(tok, rows, cfg.prompts.teacher_system)))
    reward_fn.bind(trainer)
    trainer.remove_callback(PrinterCallback)  # metrics go to metrics.jsonl and one log line per step
    trainer.add_callback(metrics_callback(out, reward_fn))
    resume, step = (None, 0) if cfg.force else last_checkpoint(out / "checkpoints")
    if trainer.is_world_process_zero():
        for name in ("metrics.jsonl", "samples.jsonl"):
            truncate_jsonl(out / name, step)
    if resume:
        log.info("resuming from %s (step %d)", resume, step)
    t0 = time.time()
    result = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        (out / "training_args.bin").unlink(missing_ok=True)  # a pickle; the manifest holds the config
    return {"global_step": trainer.state.global_step, "resumed_from": resume,
            "train_seconds": round(time.time() - t0, 2), "train_loss": result.training_loss}


def summarize(out: Path) -> dict:
    """First-fifth vs last-fifth mean reward of metrics.jsonl, for the manifest and the log."""
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()] \
        if (out / "metrics.jsonl").is_file() else []
    rewards = [r["reward"] for r in rows if r.get("reward") is not None and math.isfinite(r["reward"])]
    if not rewards:
        return {}
    k = max(len(rewards) // 5, 1)
    secs = [r["seconds_per_step"] for r in rows if r.get("seconds_per_step")]
    return {"reward_first_fifth": sum(rewards[:k]) / k, "reward_last_fifth": sum(rewards[-k:]) / k,
            "seconds_per_step": sum(secs) / len(secs) if secs else None, "metric_rows": len(rows)}


# ----------------------------------------------------------------------------- run


def already_complete(cfg: TeachConfig, inputs: dict[str, str]) -> bool:
    """A finished output of the same config and inputs (checked before loading any model)."""
    from stages.artifacts import input_hash, read_manifest

    manifest = read_manifest(cfg.out) if Path(cfg.out).is_dir() else None
    if cfg.force or not manifest or manifest.get("kind") != "checkpoint":
        return False
    theirs = {k: v.get("hash") for k, v in manifest.get("inputs", {}).items()}
    return manifest.get("config_hash") == config_hash(cfg) and theirs == {k: input_hash(v) for k, v in inputs.items()}


class _Follower:
    """Stand-in writer of non-main ranks: the main rank alone writes the artifact."""

    def __init__(self, cfg: TeachConfig):
        from stages.artifacts import read_manifest

        manifest = read_manifest(cfg.out) or {}
        self.complete = not cfg.force and manifest.get("config_hash") == config_hash(cfg)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def run(cfg: TeachConfig) -> Path:
    """validate -> load -> GRPO -> checkpoint artifact (manifest last)."""
    batch = validate(cfg)
    tau = temperatures(cfg)
    if cfg.launch and not launch.in_launched_process():
        launch.relaunch("teach", to_dict(cfg), cfg.launch, cfg.gpus or 1)
        return Path(cfg.out)
    inputs = {"teacher": cfg.teacher, "student": cfg.student, "data": cfg.data}
    if already_complete(cfg, inputs):
        log.info("%s is already complete (use --force to train again)", cfg.out)
        return Path(cfg.out)
    rows = read_rows(cfg.data, "dataset")
    if len(rows) < cfg.prompts_per_step:
        raise UserError(f"{cfg.data} has {len(rows)} rows, fewer than prompts_per_step={cfg.prompts_per_step}")
    tok, teacher, scorer = load(cfg)
    main = int(os.environ.get("RANK", "0")) == 0
    writer = ArtifactWriter(cfg.out, "checkpoint", cfg, inputs=inputs, force=cfg.force) if main else _Follower(cfg)
    with writer as w:
        if w.complete:
            log.info("%s is already complete (use --force to train again)", cfg.out)
            return Path(cfg.out)
        info = train(cfg, tok, teacher, scorer, rows, batch)
        if main:
            info.update(summarize(Path(cfg.out)))
            w.finish(extra={"training": info, "teacher": cfg.teacher, "student": cfg.student, "temperatures": tau},
                     rows=len(rows))
            log.info("trained teacher written to %s (step %d)", cfg.out, info["global_step"])
    return Path(cfg.out)
