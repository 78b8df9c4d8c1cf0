"""The RLT reward (docs/method.md "The reward"), batched and exact.

Input: rows with `question`, `solution` and either `explanation` (what the
teacher wrote, tags excluded) or `completion` (the raw teacher continuation
after the prefill). Output: one dict per row with `reward, sol_logp_mean,
sol_logp_min, kl_mean, kl_max, format_ok, aligned` and the token counts (the fields of
stages/reward_record.py), plus `explanation`, `text` (the student view), `kl_estimator`
and `unscorable` (None, or why the row could not be scored). Used by `rlt teach` (GRPO reward), `rlt generate` (best-of-k) and
`rlt score --teacher M --student M --data A --out D` (stages/commands/score.py).

    scorer = load_reward("models/student", "models/teacher", RewardConfig(teacher_temperature=0.7), PromptsConfig())
    scores = scorer.score([{"question": q, "solution": s, "explanation": e}])

How it is computed, per padded batch:
- both views are rendered (views.student_view / views.teacher_view, the
  end tag always appended to the teacher view) and all views of the rows are
  tokenized with offsets in one batch-encode call; spans are the tokens whose
  character offsets lie inside a piece's characters, found by binary search
  over the (monotone) offsets; `prefetch(next_rows)` renders the next batch on
  a worker thread while the current one runs its forwards (`rlt score`);
- padded ids, positions, mask and gather indices are built with array ops into
  one int64 buffer and moved to the device in one (pinned, async) copy;
- the explanation tokens must be the same ids in both views, else the row is
  not scored (`aligned=False`, `unscorable="misaligned"`), counted and logged once;
- one forward of the student's decoder body over the student views and one of
  the teacher's over the teacher views; hidden states are projected to the
  vocabulary (lm_head, logits / temperature, log-softmax) only at span
  positions, `reward.chunk_tokens` at a time: never a [B, L, V] tensor.

Reductions (`reduce_reward`, pure): r = mean(s) + a*min(s) - l*(mean(kl) + a*max(kl))
+ format_penalty when the end tag is missing. A row that cannot be scored (`unscorable_reason`)
gets the lowest computed reward of its group (rows of one question and solution in one `score`
call) + format_penalty (`floor_unscorable`); an empty explanation is such a row by default
(`reward.empty_explanation=floor`), or with `reference` its KL reductions read -format_penalty
(the reference code's rule: it pays l*(1 + a)). Never NaN.
"""

from __future__ import annotations

import itertools
import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stages.errors import UserError
from stages.method.settings import PromptsConfig, RewardConfig, check_reward, resolved_teacher_temperature
from stages.method.views import (
    BEGIN_SOLUTION,
    BEGIN_THOUGHT,
    END_EXPLANATION,
    END_THOUGHT,
    check_template,
    split_completion,
    student_assistant,
    student_view,
    teacher_prefill,
    teacher_view,
)

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)
PREFILL_NL = "\n\n"  # what follows the begin tag before the explanation, in both views


# ----------------------------------------------------------------------------- pure reductions


def _finite(values: list[float]) -> bool:
    return all(math.isfinite(v) for v in values)


def _reductions(values: list[float], worst, fill: float) -> tuple[float, float]:
    """(mean, worst) of a span; `fill` for both when the span is empty or holds a non-finite value."""
    if not values or not _finite(values):
        return fill, fill
    return sum(values) / len(values), worst(values)


def unscorable_reason(sol_logps: list[float], kl: list[float], aligned: bool = True,
                      explanation: str | None = None, empty: str = "floor") -> str | None:
    """Why a row's reward cannot be computed, or None (docs/method.md "Rows the reward cannot score").

    Reasons, first match: `misaligned` (the two views tokenize the explanation differently),
    `empty_solution` (no solution token), `empty_explanation` (`""`, or no KL tokens when `explanation`
    is not given; only with `empty="floor"`, the default: with `"reference"` it is scored by the
    reference's rule, see `reduce_reward`), `whitespace_explanation` (only whitespace: its tokens merge
    with the prefilled newlines), `no_explanation_tokens` (text without a token of its own),
    `non_finite` (a log-prob or KL term is NaN or infinite).
    """
    if not aligned:
        return "misaligned"
    if not sol_logps:
        return "empty_solution"
    if empty == "floor" and (explanation == "" or (explanation is None and not kl)):
        return "empty_explanation"
    if explanation is not None and explanation and not explanation.strip():
        return "whitespace_explanation"
    if explanation and not kl:
        return "no_explanation_tokens"
    if not (_finite(sol_logps) and _finite(kl)):
        return "non_finite"
    return None


def reduce_reward(sol_logps: list[float], kl: list[float], kl_coef: float = 3.0, alpha: float = 0.01,
                  format_penalty: float = -1.0, format_ok: bool = True, aligned: bool = True,
                  explanation: str | None = None, empty: str = "floor") -> dict:
    """Row reward from per-token solution log-probs and per-token KL terms (nats per token).

    r_SS = mean(s) + alpha*min(s); r_KL = mean(kl) + alpha*max(kl);
    r = r_SS - kl_coef*r_KL (+ format_penalty without the end tag)   (arXiv 2506.08388, docs/method.md).
    Empty spans as the reference code fills them (SakanaAI/RLT trainers/teacher_rewards.py, its
    `nan_to_num` calls): solution reductions read `format_penalty` (its not_matched_penalty, -1) and KL
    reductions `-format_penalty` (+1, a cost), so with `empty="reference"` an empty explanation scores
    r_SS - kl_coef*(1 + alpha); by default (`"floor"`) it is unscorable.
    A row `unscorable_reason` names gets reward `format_penalty` here; `floor_unscorable` then puts it
    below every computed row of its group. -> {reward, sol_logp_mean, sol_logp_min, kl_mean, kl_max},
    all finite floats.
    """
    sol, kl = [float(x) for x in sol_logps], [float(x) for x in kl]
    out: dict = {}
    out["sol_logp_mean"], out["sol_logp_min"] = _reductions(sol, min, format_penalty)
    out["kl_mean"], out["kl_max"] = _reductions(kl, max, -format_penalty)
    if unscorable_reason(sol, kl, aligned, explanation, empty):
        out["reward"] = format_penalty
        return out
    r_ss = out["sol_logp_mean"] + alpha * out["sol_logp_min"]
    r_kl = out["kl_mean"] + alpha * out["kl_max"]
    out["reward"] = r_ss - kl_coef * r_kl + (0.0 if format_ok else format_penalty)
    return out


def group_minima(results: list[dict], groups: list) -> dict:
    """Lowest computed (not unscorable) reward of each group key: {key: reward}."""
    low: dict = {}
    for res, key in zip(results, groups):
        if not res.get("unscorable"):
            low[key] = min(low.get(key, math.inf), res["reward"])
    return low


def floor_unscorable(results: list[dict], groups: list, format_penalty: float, minima: dict | None = None) -> None:
    """The one rule for rows the reward cannot score, in place: reward = the lowest computed reward of its group
    + format_penalty (<= 0), so it never ranks above a computed row of its group (a GRPO group, the samples of
    one question); `format_penalty` when its group has no computed row. `groups`: one hashable key per row;
    `minima` (default: `group_minima` of these rows) lets a caller pass minima gathered over processes."""
    minima = group_minima(results, groups) if minima is None else minima
    for res, key in zip(results, groups):
        if res.get("unscorable"):
            res["reward"] = minima.get(key, 0.0) + format_penalty


def token_span(offsets, start: int, end: int) -> list[int]:
    """Indices of tokens whose (non-empty) character offsets lie inside [start, end). offsets: [n, 2]"""
    import numpy as np

    off = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    return _span(off, _monotone(off), start, end).tolist()


def _monotone(off: np.ndarray) -> bool:
    """Starts and ends never decrease (true of fast tokenizers' offsets): spans are found by binary search."""
    import numpy as np

    return bool((np.diff(off[:, 0]) >= 0).all() and (np.diff(off[:, 1]) >= 0).all())


def _span(off: np.ndarray, monotone: bool, start: int, end: int) -> np.ndarray:
    """token_span as an index array: bisect the sorted starts and ends, then drop empty-width tokens. -> [k]"""
    import numpy as np

    a, b = off[:, 0], off[:, 1]
    if monotone:  # {a >= start} is a suffix and {b <= end} a prefix: their overlap is one range
        lo, hi = int(np.searchsorted(a, start, "left")), int(np.searchsorted(b, end, "right"))
        k = np.arange(lo, max(lo, hi))
    else:
        k = np.arange(len(off))
    return k[(a[k] >= start) & (b[k] <= end) & (b[k] > a[k])]


# ----------------------------------------------------------------------------- views and spans


@dataclass
class Views:
    """One row rendered in both views, with its token spans (int64 index arrays into the ids)."""

    explanation: str
    format_ok: bool
    text: str                 # the student view
    s_ids: np.ndarray         # [Ls]
    t_ids: np.ndarray         # [Lt]
    sol: np.ndarray           # solution tokens in the student view
    s_kl: np.ndarray          # KL tokens in the student view (explanation [+ prefill newlines])
    t_kl: np.ndarray          # the same tokens in the teacher view
    n_expl: int               # explanation tokens (student view)
    aligned: bool


@dataclass
class _Texts:
    """Both rendered views of a row and the character starts of its pieces."""

    explanation: str
    format_ok: bool
    student: str
    teacher: str
    s_expl: int               # explanation start in the student view
    s_sol: int                # solution start in the student view
    sol_len: int              # solution characters
    t_expl: int               # explanation start in the teacher view


def extract_explanation(row: dict) -> tuple[str, bool]:
    """(explanation, has end tag) from a row's `completion` or `explanation`."""
    if row.get("completion") is not None:
        return split_completion(str(row["completion"]))
    if row.get("explanation") is not None:
        return str(row["explanation"]), row.get("format_ok") is not False
    raise UserError(f"row {row.get('id', '')!r} has neither 'explanation' nor 'completion'")


def _encode(tok, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """One batch-encode call -> per text (ids [n], character offsets [n, 2]), int64."""
    import numpy as np

    if not texts:
        return []
    backend = tok.backend_tokenizer
    if backend.padding or backend.truncation or getattr(tok, "split_special_tokens", False):
        enc = tok(texts, add_special_tokens=False, return_offsets_mapping=True)  # lets the wrapper reset those
        pairs = zip(enc["input_ids"], enc["offset_mapping"])
    else:  # the wrapper's own call without its conversion to Python lists of lists
        pairs = ((e.ids, e.offsets) for e in backend.encode_batch(texts, add_special_tokens=False))
    return [(np.array(ids, dtype=np.int64),
             np.fromiter(itertools.chain.from_iterable(off), dtype=np.int64, count=2 * len(off)).reshape(-1, 2))
            for ids, off in pairs]


def _locate(text: str, content: str, what: str) -> int:
    base = text.rfind(content)
    if base < 0:
        raise UserError(f"the chat template changes the assistant text of the {what} view; "
                        "cannot locate the explanation and solution in it")
    return base


def _texts(tok, teacher_tok, prompts: PromptsConfig, row: dict) -> _Texts:
    """Render both views of a row and locate its pieces (docs/method.md "Formats", exact strings)."""
    q, sol = str(row["question"]), str(row["solution"])
    expl, format_ok = extract_explanation(row)
    s_text = student_view(tok, prompts.student_system, q, sol, expl)
    s_base = _locate(s_text, student_assistant(expl, sol), "student")
    e0 = s_base + len(BEGIN_THOUGHT) + len(PREFILL_NL)
    s0 = e0 + len(expl) + len(END_THOUGHT) + len(PREFILL_NL) + len(BEGIN_SOLUTION)
    t_text = teacher_view(teacher_tok, prompts.teacher_system, q, sol, expl + END_EXPLANATION)
    t0 = _locate(t_text, teacher_prefill(sol) + expl + END_EXPLANATION, "teacher") + len(teacher_prefill(sol))
    if s_text[e0:e0 + len(expl)] != expl or s_text[s0:s0 + len(sol)] != sol or t_text[t0:t0 + len(expl)] != expl:
        raise RuntimeError("span arithmetic does not match the rendered views")  # formats.py changed
    return _Texts(expl, format_ok, s_text, t_text, e0, s0, len(sol), t0)


def _views(x: _Texts, s_enc, t_enc, back: int) -> Views:
    import numpy as np

    (s_ids, s_off), (t_ids, t_off) = s_enc, t_enc
    s_mono, t_mono = _monotone(s_off), _monotone(t_off)
    n = len(x.explanation)
    s_kl = _span(s_off, s_mono, x.s_expl - back, x.s_expl + n)
    t_kl = _span(t_off, t_mono, x.t_expl - back, x.t_expl + n)
    aligned = bool(np.array_equal(s_ids[s_kl], t_ids[t_kl]))
    n_expl = len(_span(s_off, s_mono, x.s_expl, x.s_expl + n))
    sol = _span(s_off, s_mono, x.s_sol, x.s_sol + x.sol_len)
    return Views(x.explanation, x.format_ok, x.student, s_ids, t_ids, sol, s_kl, t_kl, n_expl, aligned)


def render_batch(tok, teacher_tok, prompts: PromptsConfig, rows: list[dict],
                 include_prefill: bool = False) -> list[Views]:
    """Render the rows' views, tokenize all of them in one batch-encode call, locate the spans."""
    texts = [_texts(tok, teacher_tok, prompts, r) for r in rows]
    students, teachers = [x.student for x in texts], [x.teacher for x in texts]
    if teacher_tok is tok:
        enc = _encode(tok, students + teachers)
        s_enc, t_enc = enc[:len(texts)], enc[len(texts):]
    else:
        s_enc, t_enc = _encode(tok, students), _encode(teacher_tok, teachers)
    back = len(PREFILL_NL) if include_prefill else 0
    return [_views(x, s, t, back) for x, s, t in zip(texts, s_enc, t_enc)]


def render(tok, teacher_tok, prompts: PromptsConfig, row: dict, include_prefill: bool = False) -> Views:
    """Render, tokenize and locate the spans of one row (see render_batch)."""
    return render_batch(tok, teacher_tok, prompts, [row], include_prefill)[0]


# ----------------------------------------------------------------------------- model plumbing


def _unwrap(model):
    """The HF model inside DDP-style (`.module`) and PEFT (`get_base_model`) wrappers."""
    import torch

    while isinstance(getattr(model, "module", None), torch.nn.Module):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def body_and_head(model):
    """(decoder body returning hidden states, lm_head, final-logit softcap or None)."""
    m = _unwrap(model)
    body = m.get_decoder() if hasattr(m, "get_decoder") else getattr(m, m.base_model_prefix)
    return body, m.get_output_embeddings(), getattr(m.config, "final_logit_softcapping", None)


def _device(model):
    return next(model.parameters()).device


@contextmanager
def _eval_mode(model):
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


def pack_batch(seqs: list, wanted: list, pad_id: int, left: bool):
    """Host arrays of one padded batch, built with array ops (no per-token Python).

    seqs: B int arrays; wanted: B index arrays into them. -> (int64 [3*B*L + 2*N] = ids, position ids,
    attention mask (each [B, L] flattened), then the rows and columns of the hidden states predicting
    each wanted token (position k-1 predicts token k)), B, L.
    """
    import numpy as np

    lens = np.array([len(s) for s in seqs], dtype=np.int64)
    B, L = len(seqs), int(lens.max())
    start = L - lens if left else np.zeros(B, dtype=np.int64)
    col = np.arange(L)
    mask = (col >= start[:, None]) & (col < (start + lens)[:, None])  # [B, L]
    ids = np.full((B, L), pad_id, dtype=np.int64)
    ids[mask] = np.concatenate(seqs)  # row-major order = each row's tokens in order
    pos = np.maximum(mask.cumsum(-1) - 1, 0)
    counts = np.array([len(w) for w in wanted], dtype=np.int64)
    rows = np.repeat(np.arange(B), counts)
    cols = np.concatenate([np.asarray(w, dtype=np.int64) for w in wanted]) + np.repeat(start, counts) - 1
    return np.concatenate([ids.ravel(), pos.ravel(), mask.ravel().astype(np.int64), rows, cols]), B, L


def to_device(buf, dev):
    """One host-to-device copy (pinned and asynchronous on CUDA) of a packed int64 buffer."""
    import torch

    t = torch.from_numpy(buf)
    if dev.type == "cuda":
        return t.pin_memory().to(dev, non_blocking=True)
    return t.to(dev)


def hidden_at(model, seqs: list, wanted: list, pad_id: int, left: bool):
    """Pad `seqs`, run the decoder body once. -> (hidden states predicting each wanted token [N, H],
    those tokens [N]), both on the model's device."""
    body = body_and_head(model)[0]
    buf, B, L = pack_batch(seqs, wanted, pad_id, left)
    t = to_device(buf, _device(model))
    ids, pos, mask = t[:B * L].view(B, L), t[B * L:2 * B * L].view(B, L), t[2 * B * L:3 * B * L].view(B, L)
    rows, cols = t[3 * B * L:].view(2, -1)
    out = body(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False)
    h = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]  # [B, L, H]
    return h[rows, cols.to(h.device)], ids[rows, cols + 1]


def _logits(head, h, tau: float, softcap):
    z = head(h).float()  # [C, V], a fresh tensor: scaled in place
    if softcap:
        z = z.div_(softcap).tanh_().mul_(softcap)
    return z.div_(tau)


def token_logps(model, h, targets, tau: float, chunk: int):
    """log softmax(lm_head(h) / tau)[target], `chunk` positions at a time. h [N, H], targets [N] -> [N] (CPU)"""
    import torch

    _, head, cap = body_and_head(model)
    out = []
    for i in range(0, h.shape[0], chunk):
        z = _logits(head, h[i:i + chunk], tau, cap)  # [C, V]
        t = targets[i:i + chunk].to(z.device)
        out.append(z.log_softmax(-1).gather(-1, t[:, None]).squeeze(-1))  # log_softmax beats logsumexp on CPU
    return torch.cat(out).cpu() if out else torch.zeros(0)  # one device-to-host copy


def full_kl(teacher, h_t, tau_t: float, student, h_s, tau_s: float, chunk: int):
    """KL(teacher || student) over the whole vocabulary at each position. [N, H] x2 -> [N] (CPU)"""
    import torch

    (_, head_t, cap_t), (_, head_s, cap_s) = body_and_head(teacher), body_and_head(student)
    out = []
    for i in range(0, h_t.shape[0], chunk):
        lt = _logits(head_t, h_t[i:i + chunk], tau_t, cap_t)
        ls = _logits(head_s, h_s[i:i + chunk], tau_s, cap_s).to(lt.device)
        v = min(lt.shape[-1], ls.shape[-1])  # padded embedding rows beyond the vocabulary
        lt, ls = lt[:, :v].log_softmax(-1), ls[:, :v].log_softmax(-1)
        out.append((lt.exp() * (lt - ls)).sum(-1))
    return torch.cat(out).cpu() if out else torch.zeros(0)


def _split(values, counts: list[int]) -> list[list[float]]:
    flat, out, i = values.tolist(), [], 0
    for c in counts:
        out.append(flat[i:i + c])
        i += c
    return out


# ----------------------------------------------------------------------------- the reward object


class RLTReward:
    """Holds the student (frozen, eval mode) and scores rows against `teacher` in padded batches.

    `teacher` may be reassigned at any time (rlt teach points it at the current policy).
    `teacher_tokenizer` renders the teacher view when its chat template differs from the student's.
    Raises ValueError when `reward.teacher_temperature` is unset (settings.resolved_teacher_temperature),
    UserError for a bad batch size, reward setting or slow tokenizer.
    """

    def __init__(self, student, tokenizer, reward: RewardConfig, prompts: PromptsConfig, teacher=None,
                 reward_batch_size: int = 8, teacher_tokenizer=None):
        if reward_batch_size < 1:
            raise UserError(f"reward_batch_size must be >= 1, got {reward_batch_size}")
        resolved_teacher_temperature(reward)  # ValueError when unset: no fallback that could disagree
        check_reward(reward)
        if not getattr(tokenizer, "is_fast", False):
            raise UserError("the reward needs a fast tokenizer (character offsets); this one is slow")
        self.student, self.tokenizer, self.teacher = student.eval(), tokenizer, teacher
        self.teacher_tokenizer = teacher_tokenizer or tokenizer
        self.reward, self.prompts, self.reward_batch_size = reward, prompts, reward_batch_size
        self.rows_not_aligned = 0  # rows penalised: the two views tokenized the explanation differently
        self._pool, self._ahead = None, None  # the render worker and (rows, future) it is rendering

    def render_rows(self, rows: list[dict]) -> list[Views]:
        """Both views of every row, tokenized in one batch-encode call (see render_batch)."""
        return render_batch(self.tokenizer, self.teacher_tokenizer, self.prompts, rows,
                            self.reward.kl_include_prefill)

    def prefetch(self, rows: list[dict]) -> None:
        """Start rendering `rows` on a worker thread (with `reward.overlap_render`): call it for the next
        batch before `score(batch)`, and `score(rows)` of this same list then uses the prefetched views."""
        if not self.reward.overlap_render:
            return
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(1, thread_name_prefix="reward-render")
        self._ahead = (rows, self._pool.submit(self.render_rows, rows))

    def score(self, rows: list[dict], teacher=None, estimators: list[str] | None = None) -> list[dict]:
        """One result dict per row: the RewardRecord fields, `explanation`, `text` (the student view),
        `kl_estimator` and `unscorable` (module docstring).

        `estimators`: per row `sampled` or `full` (stages/method/kl.py chooses them); default: every row
        by `reward.full_kl` (unset = sampled). Rows that cannot be scored are floored within their group
        (same question and solution) over the whole call (`floor_unscorable`).
        """
        teacher = self._teacher(teacher)
        ahead, self._ahead = self._ahead, None
        views = ahead[1].result() if ahead is not None and ahead[0] is rows else self.render_rows(rows)
        if estimators is None:
            estimators = ["full" if self.reward.full_kl else "sampled"] * len(rows)
        if len(estimators) != len(rows) or not set(estimators) <= {"full", "sampled"}:
            raise ValueError("estimators: one of 'full' or 'sampled' per row")
        out = self._score_views(views, teacher, estimators)
        floor_unscorable(out, [(str(r["question"]), str(r["solution"])) for r in rows], self.reward.format_penalty)
        return out

    def _teacher(self, teacher):
        teacher = teacher if teacher is not None else self.teacher
        if teacher is None:
            raise ValueError("RLTReward.score needs a teacher model (argument or .teacher)")
        return teacher

    def _score_views(self, views: list[Views], teacher, estimators: list[str]) -> list[dict]:
        self._count_not_aligned(views)
        out: list[dict | None] = [None] * len(views)
        for name in ("sampled", "full"):
            mine = [i for i, e in enumerate(estimators) if e == name]
            order = sorted(mine, key=lambda i: len(views[i].s_ids))  # similar lengths share a batch
            for start in range(0, len(order), self.reward_batch_size):
                idx = order[start:start + self.reward_batch_size]
                for i, res in zip(idx, self._score_batch([views[i] for i in idx], teacher, name == "full")):
                    out[i] = {**res, "kl_estimator": name}
        return out  # type: ignore[return-value]

    def _count_not_aligned(self, views: list[Views]) -> None:
        bad = sum(not v.aligned for v in views)
        if bad and not self.rows_not_aligned:
            log.warning("%d of %d rows: explanation tokens differ between the teacher and student views; "
                        "not scored: each reads the lowest reward of its group + format_penalty (counted in 'aligned')", bad, len(views))
        self.rows_not_aligned += bad

    def _score_batch(self, views: list[Views], teacher, full: bool) -> list[dict]:
        import numpy as np
        import torch

        cfg, pad = self.reward, self.tokenizer.pad_token_id or 0
        left = self.tokenizer.padding_side == "left"
        kl_rows = [v for v in views if v.aligned and len(v.s_kl)]
        has_kl = {id(v) for v in kl_rows}
        kl_len = [len(v.s_kl) if id(v) in has_kl else 0 for v in views]
        wanted = [np.concatenate([v.sol, v.s_kl[:n]]) for v, n in zip(views, kl_len)]
        is_kl = torch.from_numpy(np.repeat(np.tile([False, True], len(views)),
                                           [n for v, k in zip(views, kl_len) for n in (len(v.sol), k)]))
        with torch.no_grad(), _eval_mode(teacher):
            h_s, s_tgt = hidden_at(self.student, [v.s_ids for v in views], wanted, pad, left)  # [N, H], [N]
            s_lp = token_logps(self.student, h_s, s_tgt, cfg.student_temperature, cfg.chunk_tokens)
            kl = torch.zeros(0)
            if kl_rows:
                h_t, t_tgt = hidden_at(teacher, [v.t_ids for v in kl_rows], [v.t_kl for v in kl_rows], pad, left)
                if full:
                    kl = full_kl(teacher, h_t, cfg.teacher_temperature, self.student,
                                 h_s[is_kl.to(h_s.device)], cfg.student_temperature, cfg.chunk_tokens)
                else:
                    t_lp = token_logps(teacher, h_t, t_tgt, cfg.teacher_temperature, cfg.chunk_tokens)
                    kl = t_lp - s_lp[is_kl]
        sol = _split(s_lp[~is_kl], [len(v.sol) for v in views])
        kls = iter(_split(kl, [len(v.t_kl) for v in kl_rows]))
        return [self._result(v, s, next(kls) if id(v) in has_kl else []) for v, s in zip(views, sol)]

    def _result(self, v: Views, sol: list[float], kl: list[float]) -> dict:
        c = self.reward
        res = reduce_reward(sol, kl, c.kl_coef, c.alpha, c.format_penalty, v.format_ok, v.aligned, v.explanation,
                            c.empty_explanation)
        res["unscorable"] = unscorable_reason(sol, kl, v.aligned, v.explanation, c.empty_explanation)
        res.update(format_ok=v.format_ok, aligned=v.aligned, explanation=v.explanation, text=v.text,
                   explanation_tokens=v.n_expl, solution_tokens=len(v.sol), student_tokens=len(v.s_ids))
        return res


def load_reward(student_path: str, teacher_path: str | None, reward: RewardConfig, prompts: PromptsConfig,
                device: str = "auto", reward_batch_size: int = 8, trust_remote_code: bool = False) -> RLTReward:
    """Load the student (and teacher) safely. Before a model loads, refuse (UserError) tokenizers with
    different vocabularies and chat templates that cannot render the views exactly."""
    from stages.models.loading import check_same_vocab, load_model, load_tokenizer

    resolved_teacher_temperature(reward)
    check_reward(reward)
    tok = load_tokenizer(student_path, trust_remote_code=trust_remote_code)
    check_template(tok, student_path)
    teacher_tok = None
    if teacher_path:
        teacher_tok = load_tokenizer(teacher_path, trust_remote_code=trust_remote_code)
        check_same_vocab(teacher_tok, tok)
        check_template(teacher_tok, teacher_path)
        if teacher_tok.chat_template == tok.chat_template:
            teacher_tok = None
    student = load_model(student_path, device=device, trust_remote_code=trust_remote_code)
    teacher = load_model(teacher_path, device=device, trust_remote_code=trust_remote_code) if teacher_path else None
    return RLTReward(student, tok, reward, prompts, teacher=teacher, reward_batch_size=reward_batch_size,
                     teacher_tokenizer=teacher_tok)
