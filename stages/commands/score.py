"""`rlt score`: the RLT reward of given explanations, written as a traces artifact.

Input: a traces artifact, or any dataset artifact / Parquet, JSONL, JSON or CSV
file with `question`, `solution` and `explanation` (or raw teacher `completion`)
columns; `id` (default: hash of question + solution) and `sample` (default: the
row's rank among rows of the same id) are kept. Output: a traces artifact (`id,
sample, question, solution, explanation, text` = student view, the reward
columns, `teacher`, `student`, token counts), flushed one part per batch, so an
interrupted run resumes where it stopped.

    rlt score --teacher models/teacher --student models/student --data traces/gen --out traces/scored
    rlt score ... --batch-size 16 --shard 0/4 reward.kl_coef=2
    rlt score ... reward.full_kl=true       # force the full-distribution KL for every row

KL estimator by provenance (docs/method.md "The reward"): the single-sample estimate
log pi_teacher(t) - log pi_student(t) is a KL estimate only for explanations
sampled from this teacher at the scoring temperature (`reward.teacher_temperature`, 0.7 when unset;
top-p 1). Rows that `rlt generate` sampled that way from `--teacher` get it;
every other row (imported traces, another teacher, greedy or nucleus decoding,
unknown origin) gets the full-distribution KL, on which foreign text cannot
score a negative KL. Each row records its estimator in `kl_estimator`
(`sampled` or `full`); `reward.full_kl=true|false` forces one for all rows.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from stages import interrupt, reward_record
from stages.artifacts.read import SHARD_HELP, read_table, select_shard
from stages.artifacts.schemas import row_id, validate
from stages.artifacts.stage import run_stage
from stages.artifacts.writer import ArtifactWriter
from stages.config import at_least, check_config, opt
from stages.errors import UserError
from stages.method import degenerate
from stages.method.kl import kl_estimators
from stages.method.settings import PromptsConfig, RewardConfig, check_reward, with_teacher_temperature
from stages.models.loading import DEVICE_HELP, check_device

log = logging.getLogger(__name__)
PASS_THROUGH = ("answer", "task")


@dataclass
class ScoreConfig:
    """Options of `rlt score`."""

    teacher: str = opt("", "Teacher model (directory or hub id) giving the teacher log-probs.", flag=True, input=True, required=True)
    student: str = opt("", "Student model (directory or hub id) giving the student log-probs.", flag=True, input=True, required=True)
    data: str = opt("", "Rows to score: traces/dataset artifact or file with question, solution, explanation.",
                    flag=True, input=True, required=True)
    out: str = opt("", "Output traces artifact.", hash=False, flag=True, required=True)
    reward_batch_size: int = opt(8, "Sequences (rows) scored together on one device: one padded forward pass of "
                                    "the reward.", hash=False, flag="--batch-size", aliases=("batch_size",),
                                 check=at_least(1))
    shard: str | None = opt(None, SHARD_HELP, flag=True)
    device: str = opt("auto", DEVICE_HELP, hash=False, flag=True, check=check_device)
    seed: int = opt(0, "Random seed (the reward itself is deterministic).", flag=True)
    force: bool = opt(False, "Overwrite an existing output of another config.", hash=False, flag=True)
    trust_remote_code: bool = opt(False, "Allow model code from the model directory.", flag=True)
    prompts: PromptsConfig = opt(PromptsConfig, "System prompts of the two views.")
    reward: RewardConfig = opt(RewardConfig, "Reward coefficients and options.")


def _check(cfg: ScoreConfig) -> None:
    check_config(cfg)
    check_reward(cfg.reward)


def finalize_config(cfg: ScoreConfig) -> ScoreConfig:
    """The reward's teacher temperature as a number, once: unset = 0.7, the paper's sampling temperature
    (stages/method/settings.py `with_teacher_temperature`). Idempotent; commands.make_config and run apply it."""
    cfg.reward = with_teacher_temperature(cfg.reward, None)
    return cfg


def load_rows(path: str) -> list[dict]:
    """Rows with question, solution and explanation (or completion); ids and samples filled in.

    A dataset's `reasoning_trace` (e.g. `rlt data synth` or imported traces) is scored as the explanation
    when the rows have neither `explanation` nor `completion`.
    """
    table = read_table(path)
    names = table.column_names
    if "explanation" not in names and "completion" not in names and "reasoning_trace" in names:
        table = table.rename_columns(["explanation" if n == "reasoning_trace" else n for n in names])
        names = table.column_names
    text = "completion" if "explanation" not in names and "completion" in names else "explanation"
    validate(table, "traces", str(path), required=("question", "solution", text))
    rows = table.to_pylist()
    seen: dict[str, int] = {}
    for r in rows:
        if r.get("id") is None:
            r["id"] = row_id(str(r["question"]), str(r["solution"]))
        r["id"] = str(r["id"])
        if r.get("sample") is None:
            r["sample"] = seen.get(r["id"], 0)
        seen[r["id"]] = max(seen.get(r["id"], 0), int(r["sample"])) + 1
    counts = Counter((r["id"], r["sample"]) for r in rows)
    dup = next((k for k, n in counts.items() if n > 1), None)
    if dup:
        raise UserError(f"{path}: several rows have id {dup[0]} and sample {dup[1]}; give distinct 'sample' values")
    return rows


def _generate_config(path: str) -> dict:
    """The generate config recorded in the input artifact's manifest ({} when there is none)."""
    from stages.artifacts.layout import read_manifest

    p = Path(path)
    manifest = read_manifest(p) if p.is_dir() else None
    cfg = (manifest or {}).get("config") or {}
    return {k: cfg[k] for k in ("temperature", "top_p") if k in cfg} if "max_new_tokens" in cfg else {}


def to_trace(row: dict, scored: dict, cfg: ScoreConfig) -> dict:
    """One output row of the traces schema."""
    out = {k: row[k] for k in ("id", "sample", "question", "solution")}
    out.update({k: row.get(k) for k in PASS_THROUGH + ("temperature", "top_p")})
    out.update({k: scored[k] for k in ("explanation", "text", "kl_estimator")})
    out.update(reward_record.record(scored))
    truncated = row.get("truncated")
    out.update(teacher=cfg.teacher, student=cfg.student,
               truncated=bool(truncated) if truncated is not None else not scored["format_ok"])
    return out


def group_batches(rows: list[dict], size: int) -> list[list[dict]]:
    """Batches of `size` rows in input order, each grown past `size` rather than split inside a run of
    adjacent rows of one group (one question and solution: the samples `rlt generate` writes together).
    The reward floors a row it cannot score within its group in one call (docs/method.md)."""
    batches, cur = [], []
    for r in rows:
        if len(cur) >= size and _group(r) != _group(cur[-1]):
            batches.append(cur)
            cur = []
        cur.append(r)
    return batches + ([cur] if cur else [])


def _group(row: dict) -> tuple[str, str]:
    return str(row["question"]), str(row["solution"])


def _score_all(scorer, w: ArtifactWriter, todo: list[dict], cfg: ScoreConfig) -> None:
    from stages.progress import progress

    default = _generate_config(cfg.data)
    with progress(total=len(todo), desc="score") as bar:
        batches = group_batches(todo, cfg.reward_batch_size)
        for batch, after in interrupt.stoppable(itertools.zip_longest(batches, batches[1:])):  # SIGTERM: see interrupt
            if after:
                scorer.prefetch(after)  # rendered while this batch runs its forward passes
            scored = scorer.score(batch, estimators=kl_estimators(batch, cfg.teacher, cfg.reward, default))
            w.write([to_trace(r, s, cfg) for r, s in zip(batch, scored)])
            bar.advance(rows=len(batch), tokens=sum(s["student_tokens"] for s in scored))


def _summary(rows: list[dict]) -> dict:
    """The manifest's summary: means of the reward record's fields (shares for flags), the estimators used
    and the degenerate explanations (stages/method/degenerate.py)."""
    return {"means": reward_record.summary(rows),
            "kl_estimator": dict(Counter(r.get("kl_estimator") or "unknown" for r in rows)),
            "degenerate": degenerate.record(degenerate.counts(rows))}


def finish_merged(w, rows: list[dict], manifests: list[dict], extra: dict) -> dict:
    """Finish a score artifact merged from its shards (`rlt run`'s merge job): the summary one unsharded run
    records, from the merged rows, and `extra` (the shards)."""
    return w.finish({**extra, **_summary(rows)})


def run(cfg: ScoreConfig) -> Path:
    """Validate -> load rows and models -> score in batches -> write the traces artifact."""
    import torch

    from stages.method.reward import load_reward

    finalize_config(cfg)  # a config built in Python, not by commands.make_config
    _check(cfg)
    rows = select_shard(load_rows(cfg.data), cfg.shard)
    if not rows:
        raise UserError(f"shard {cfg.shard} of {cfg.data} holds no rows")

    @contextlib.contextmanager
    def scorer():
        torch.manual_seed(cfg.seed)
        yield load_reward(cfg.student, cfg.teacher, cfg.reward, cfg.prompts, device=cfg.device,
                          reward_batch_size=cfg.reward_batch_size, trust_remote_code=cfg.trust_remote_code)

    def write(w: ArtifactWriter, reward) -> None:
        todo = [r for r in rows if w.key(r) not in w.done]
        if len(todo) < len(rows):
            log.info("resuming: %d of %d rows already scored", len(rows) - len(todo), len(rows))
        _score_all(reward, w, todo, cfg)
        summary = _summary(w.all_rows())
        w.finish(summary)
        means = summary["means"]
        log.info("scored %d rows -> %s (mean reward %.4f, end tag in %.0f %%, aligned %.0f %%)", len(rows),
                 w.out, means["reward"], 100 * means["format_ok"], 100 * means["aligned"])
        degenerate.warn(summary["degenerate"], str(w.out), log)

    return run_stage(cfg, "traces", write, load=scorer)
