"""`rlt generate`: teacher explanations -> student-format traces (docs/method.md "Generation and selection").

Input: a dataset artifact (`id, question, solution`) and a teacher model.
Output: a traces artifact (`id, sample, question, solution, explanation, text`,
`teacher`, token counts, `truncated`, `format_ok`, and with `--student` the
reward columns), with `text` = the student view, ready for `rlt distill`.

    rlt generate --teacher models/teacher --data data/train --out traces/train
    rlt generate --teacher M --data A --out D --num-generations 4 --select best --student models/student
    rlt generate --teacher M --data A --out D --engine openai engine.base_url=http://127.0.0.1:8000/v1
    rlt generate --teacher M --data A --out shards/0 --shard 0/2   # then: rlt data merge shards/* --out D

Each row's teacher view (solution prefilled) is continued until
`<|end_of_explanation|>` or `max_new_tokens` (then `truncated=true`).
Work items (row, sample) are sorted by prompt length and cut into fixed batches
of whole rows; each batch samples with a seed derived from (seed, its ids), so a
rerun after a kill regenerates exactly the missing batches, identically, and
writes only rows not yet on disk. Finished batches are flushed as parts.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from stages import interrupt, reward_record
from stages.artifacts.read import LIMIT_HELP, SHARD_HELP, parse_shard, read_rows, select_rows
from stages.artifacts.stage import run_stage
from stages.artifacts.writer import ArtifactWriter, check_output
from stages.config import at_least, between, check_config, opt
from stages.engines import make_engine
from stages.engines.base import EngineConfig, check_generations, derive_seed, warn_damaged
from stages.errors import UserError
from stages.method import degenerate
from stages.method import views as formats
from stages.method.settings import PromptsConfig, RewardConfig, check_reward, with_teacher_temperature
from stages.progress import plural

log = logging.getLogger(__name__)
SELECT = ("all", "best", "fit")


@dataclass
class GenerateConfig:
    """Options of `rlt generate`."""

    teacher: str = opt("", "Teacher model directory (or hub id).", flag=True, input=True, required=True)
    data: str = opt("", "Input dataset artifact with id, question, solution.", flag=True, input=True, required=True)
    out: str = opt("", "Output traces artifact.", hash=False, flag=True, required=True)
    max_new_tokens: int = opt(1024, "Most tokens the teacher writes per explanation (then truncated=true).", flag=True, check=at_least(1))
    temperature: float = opt(0.7, "Sampling temperature of the teacher (0 = greedy).", flag=True, check=at_least(0))
    top_p: float = opt(1.0, "Nucleus sampling mass.", flag=True, check=between(0, 1, low_open=True))
    num_generations: int = opt(1, "Explanations sampled per question.", flag=True, aliases=("samples",), check=at_least(1))
    seed: int = opt(0, "Base seed; each batch samples with a seed derived from it and the batch's ids.", flag=True)
    select: str = opt("all", "Which samples to keep: all, best (highest RLT reward), fit (best that fits "
                             "max_student_tokens). best and fit need --student.", flag=True, choices=SELECT)
    student: str | None = opt(None, "Student model: score every row with the RLT reward.", flag=True, input=True)
    max_student_tokens: int | None = opt(None, "Longest student view (tokens) kept by --select fit.", flag=True, check=at_least(1))
    shard: str | None = opt(None, SHARD_HELP, flag=True)
    limit: int | None = opt(None, LIMIT_HELP, flag=True, check=at_least(1))
    reward_batch_size: int = opt(8, "Rows per padded forward pass of the reward.", hash=False,
                                 aliases=("score_batch_size",), check=at_least(1))
    force: bool = opt(False, "Overwrite an existing output of another config.", hash=False, flag=True)
    prompts: PromptsConfig = opt(PromptsConfig, "System prompts of the two views.")
    reward: RewardConfig = opt(RewardConfig, "The RLT reward (used with --student).")
    engine: EngineConfig = opt(EngineConfig, "Generation engine.")


# ----------------------------------------------------------------------------- validate / load


def validate(cfg: GenerateConfig) -> None:
    """Every option problem as one UserError, before anything is loaded or written."""
    check_config(cfg)
    if cfg.select != "all" and not cfg.student:
        raise UserError(f"--select {cfg.select} ranks samples by the RLT reward: give --student")
    if cfg.select == "fit" and not cfg.max_student_tokens:
        raise UserError("--select fit needs --max-student-tokens")
    check_generations(cfg.num_generations, cfg.temperature)
    if cfg.student:
        check_reward(cfg.reward)
    parse_shard(cfg.shard)
    check_output(cfg.out)


def load_rows(cfg: GenerateConfig) -> list[dict]:
    """Dataset rows of this run (`select_rows`: the first --limit rows, then --shard i/n of them); rows sharing
    an id are kept apart by `read_rows` (schemas.REPEATED_IDS)."""
    return select_rows(read_rows(cfg.data, "dataset"), cfg.shard, cfg.limit)


def finalize_config(cfg: GenerateConfig) -> GenerateConfig:
    """The reward's teacher temperature as a number, once: unset follows the sampling `temperature`;
    greedy runs (temperature 0) score at 0.7 (stages/method/settings.py `with_teacher_temperature`).
    Idempotent; commands.make_config and run apply it."""
    cfg.reward = with_teacher_temperature(cfg.reward, cfg.temperature)
    return cfg


def check_templates(cfg: GenerateConfig) -> None:
    """The teacher's (and student's) chat template renders the views exactly, before any model loads."""
    from stages.models.loading import load_tokenizer

    for path in (cfg.teacher, cfg.student):
        if path:
            formats.check_template(load_tokenizer(path, trust_remote_code=cfg.engine.trust_remote_code), path)


def load_scorer(cfg: GenerateConfig, engine):
    """The RLT reward; the hf engine's teacher weights are reused instead of loaded twice."""
    from stages.method.reward import RLTReward, load_reward
    from stages.models.loading import check_same_vocab, load_model

    if cfg.engine.name != "hf":
        return load_reward(cfg.student, cfg.teacher, cfg.reward, cfg.prompts, device=cfg.engine.device,
                           reward_batch_size=cfg.reward_batch_size, trust_remote_code=cfg.engine.trust_remote_code)
    from stages.models.loading import load_tokenizer

    tok = load_tokenizer(cfg.student, trust_remote_code=cfg.engine.trust_remote_code)
    check_same_vocab(engine.tokenizer, tok)
    student = load_model(cfg.student, device=cfg.engine.device, trust_remote_code=cfg.engine.trust_remote_code,
                         allow_pickle=cfg.engine.allow_pickle)
    teacher_tok = None if engine.tokenizer.chat_template == tok.chat_template else engine.tokenizer
    return RLTReward(student, tok, cfg.reward, cfg.prompts, teacher=engine.model,
                     reward_batch_size=cfg.reward_batch_size, teacher_tokenizer=teacher_tok)


# ----------------------------------------------------------------------------- work plan


def plan_batches(rows: list[dict], prompt_lens: list[int], num_generations: int, batch_size: int) -> list[list[int]]:
    """Row indices per batch: sorted by prompt length (then id), whole rows, ~batch_size items each."""
    order = sorted(range(len(rows)), key=lambda i: (prompt_lens[i], rows[i]["id"]))
    per = max(1, batch_size // num_generations)  # batch_size counts sequences: rows x generations
    return [order[b: b + per] for b in range(0, len(order), per)]


def batch_todo(batch: list[int], rows: list[dict], num_generations: int, select: str, done: set) -> bool:
    """Does this batch still have rows to write?"""
    if select == "all":
        return any((rows[i]["id"], k) not in done for i in batch for k in range(num_generations))
    done_ids = {key[0] for key in done}
    return any(rows[i]["id"] not in done_ids for i in batch)


# ----------------------------------------------------------------------------- rows


def make_row(cfg: GenerateConfig, tok, row: dict, sample: int, completion) -> dict:
    """A traces row from one teacher completion (reward columns filled later, if scored)."""
    explanation, has_end = formats.split_completion(completion.text)
    text = formats.student_view(tok, cfg.prompts.student_system, row["question"], row["solution"], explanation)
    return {
        "id": row["id"], "sample": sample, "question": row["question"], "solution": row["solution"],
        "explanation": explanation, "text": text, "answer": row.get("answer"), "task": row.get("task"),
        "teacher": cfg.teacher, "student": cfg.student, "format_ok": has_end,
        "temperature": cfg.temperature, "top_p": cfg.top_p,  # provenance: decides the KL estimator
        "truncated": not completion.finished, "generated_tokens": completion.tokens,
        "explanation_tokens": _count(tok, explanation), "solution_tokens": _count(tok, row["solution"]),
        "student_tokens": _count(tok, text),
    }


def _count(tok, text: str) -> int:
    return len(tok(text, add_special_tokens=False)["input_ids"])


SCORE_COLUMNS = (*reward_record.COLUMNS, "text")


def score_rows(scorer, rows: list[dict], cfg: GenerateConfig) -> None:
    """Add the RLT reward columns to `rows` in place (batched inside the scorer).

    These rows were sampled from this teacher: the sampled-token KL estimate
    applies when they were drawn at `reward.teacher_temperature` with top-p 1;
    greedy or nucleus decoding gets the full-distribution KL (stages/commands/score.py).
    """
    from stages.method.kl import kl_estimators

    scored = scorer.score(rows, estimators=kl_estimators(rows, cfg.teacher, cfg.reward))
    for row, res in zip(rows, scored):
        row.update({k: res[k] for k in (*SCORE_COLUMNS, "kl_estimator")})


def choose(rows: list[dict], select: str, max_student_tokens: int | None) -> list[dict]:
    """Keep every row (`all`), or per id the highest reward (`best`) / the best that fits (`fit`)."""
    if select == "all":
        return rows
    by_id: dict[str, list[dict]] = {}
    for r in rows:
        by_id.setdefault(r["id"], []).append(r)
    kept = []
    for group in by_id.values():
        if select == "fit":
            group = [r for r in group if r["student_tokens"] <= max_student_tokens]
        if group:
            kept.append(max(group, key=lambda r: (r["reward"], -r["sample"])))
    return kept


# ----------------------------------------------------------------------------- run


def generate_batch(cfg: GenerateConfig, engine, rows: list[dict]) -> tuple[list[dict], int, int]:
    """Generate every sample of `rows` in one engine call -> (trace rows, generated tokens, completions
    whose text was not valid Unicode: `Completion.damaged`)."""
    tok = engine.tokenizer
    prompts = [formats.teacher_view(tok, cfg.prompts.teacher_system, r["question"], r["solution"])
               for r in rows for _ in range(cfg.num_generations)]
    seed = derive_seed(cfg.seed, sorted(r["id"] for r in rows))
    outs = engine.generate(prompts, n=1, max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                           top_p=cfg.top_p, seed=seed, stop=[formats.END_EXPLANATION])
    traces = [make_row(cfg, tok, r, k, outs[j * cfg.num_generations + k][0])
              for j, r in enumerate(rows) for k in range(cfg.num_generations)]
    damaged = sum(outs[j * cfg.num_generations + k][0].damaged for j in range(len(rows)) for k in range(cfg.num_generations))
    return traces, sum(t["generated_tokens"] for t in traces), damaged


def _prompt_lens(tok, cfg: GenerateConfig, rows: list[dict]) -> list[int]:
    views = [formats.teacher_view(tok, cfg.prompts.teacher_system, r["question"], r["solution"]) for r in rows]
    return [len(ids) for ids in tok(views, add_special_tokens=False)["input_ids"]] if views else []


def _loop(cfg: GenerateConfig, engine, scorer, rows: list[dict], w: ArtifactWriter) -> dict:
    from stages.progress import progress

    batches = plan_batches(rows, _prompt_lens(engine.tokenizer, cfg, rows), cfg.num_generations, cfg.engine.batch_size)
    todo = [b for b in batches if batch_todo(b, rows, cfg.num_generations, cfg.select, w.done)]
    stats = {"generated": 0, "tokens": 0, "truncated": 0, "format_ok": 0, "dropped_ids": 0, "damaged_text": 0}
    log.info("%d rows x %d generations: %d of %d batches to generate", len(rows), cfg.num_generations, len(todo), len(batches))
    total = sum(len(b) for b in batches) * cfg.num_generations  # a resumed run counts what it did before
    done = total - sum(len(b) for b in todo) * cfg.num_generations
    with progress(total=total, desc="generate", unit="explanations", done=done) as bar:
        for batch in interrupt.stoppable(todo):  # SIGTERM: the batch in flight is written, then a stop
            traces, tokens, damaged = generate_batch(cfg, engine, [rows[i] for i in batch])
            if scorer is not None:
                score_rows(scorer, traces, cfg)
            kept = choose(traces, cfg.select, cfg.max_student_tokens)
            if cfg.select != "all":  # one row per id: never a second sample of an id already written
                done_ids = {key[0] for key in w.done}
                kept = [t for t in kept if t["id"] not in done_ids]
            stats["dropped_ids"] += len(batch) - len({t["id"] for t in kept})
            w.write(kept)
            stats["generated"] += len(traces)
            stats["tokens"] += tokens
            stats["damaged_text"] += damaged
            stats["truncated"] += sum(t["truncated"] for t in traces)
            stats["format_ok"] += sum(bool(t["format_ok"]) for t in traces)
            bar.advance(rows=len(traces), tokens=tokens)
    return stats


def summary_line(rows: int, out, stats: dict, written_now: int) -> str:
    """`wrote 184 traces to D: 168 generated now (142 with the end tag, 24 cut at max_new_tokens, 2 ended
    without the tag); 16 from the earlier run` - the parts add up to the whole."""
    g = stats["generated"]
    other = g - stats["format_ok"] - stats["truncated"]
    parts = [f"{stats['format_ok']:,} with the end tag", f"{stats['truncated']:,} cut at max_new_tokens"] + \
        ([f"{other:,} ended without the tag"] if other else [])
    line = f"wrote {plural(rows, 'trace')} to {out}: {g:,} generated now ({', '.join(parts)})"
    earlier = rows - written_now
    return line + (f"; {earlier:,} from the earlier run" if earlier > 0 else "")


def finish_merged(w: ArtifactWriter, rows: list[dict], manifests: list[dict], extra: dict) -> dict:
    """Finish traces merged from their shards (`rlt run`'s merge job): the generation counts of the shards
    summed (other settings as the shards recorded them), the degenerate explanations of the merged rows,
    and `extra` (the shards)."""
    generation: dict = {}
    for m in manifests:
        for k, v in (m.get("generation") or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                generation[k] = generation.get(k, 0) + v
            else:
                generation.setdefault(k, v)
    return w.finish({**extra, "generation": generation, "degenerate": degenerate.record(degenerate.counts(rows))})


@contextlib.contextmanager
def loaded(cfg: GenerateConfig):
    """(engine, scorer or None) of a run: templates checked first; the engine closed however the run ends."""
    check_templates(cfg)
    engine = make_engine(cfg.engine, cfg.teacher)
    try:
        yield engine, load_scorer(cfg, engine) if cfg.student else None
    finally:
        engine.close()


def run(cfg: GenerateConfig) -> Path:
    """validate -> load data, teacher (and student) -> generate batch by batch -> manifest."""
    finalize_config(cfg)  # a config built in Python, not by commands.make_config
    validate(cfg)
    rows = load_rows(cfg)

    def write(w: ArtifactWriter, models) -> None:
        stats = _loop(cfg, *models, rows, w)
        bad = degenerate.counts(w.all_rows())  # the artifact's rows: the same whether the run resumed or not
        manifest = w.finish({"generation": {**stats, "engine": cfg.engine.name, "rows_in": len(rows)},
                             "degenerate": degenerate.record(bad)})
        degenerate.warn(bad, str(w.out), log, hint="; rlt distill drop=empty,truncated,untagged leaves them out")
        warn_damaged(stats["damaged_text"], w.out, log)
        if stats["dropped_ids"]:
            log.warning("%d questions had no sample within --max-student-tokens %s and were left out",
                        stats["dropped_ids"], cfg.max_student_tokens)
        log.info("%s", summary_line(manifest["rows"], w.out, stats, w.rows_written))

    return run_stage(cfg, "traces", write, load=lambda: loaded(cfg))
