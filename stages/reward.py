"""The RLT reward (METHOD.md "The reward"), batched and exact.

Input: rows with `question`, `solution` and either `explanation` (what the
teacher wrote, tags excluded) or `completion` (the raw teacher continuation
after the prefill). Output: one dict per row with `reward, sol_logp_mean,
sol_logp_min, kl_mean, kl_max, format_ok, aligned, explanation, text` and token
counts. Used by `rlt teach` (GRPO reward), `rlt generate` (best-of-k) and
`rlt score --teacher M --student M --data A --out D` (stages/score.py).

    scorer = load_reward("models/student", "models/teacher", RewardConfig(), PromptsConfig())
    scores = scorer.score([{"question": q, "solution": s, "explanation": e}])

How it is computed, per padded batch:
- both views are rendered (formats.student_view / formats.teacher_view, the
  end tag always appended to the teacher view) and tokenized with offsets;
  spans are the tokens whose character offsets lie inside a piece's characters;
- the explanation tokens must be the same ids in both views, else the row is
  penalised (`aligned=False`, reward = format_penalty), counted and logged once;
- one forward of the student's decoder body over the student views and one of
  the teacher's over the teacher views; hidden states are projected to the
  vocabulary (lm_head, logits / temperature, log-softmax) only at span
  positions, `reward.chunk_tokens` at a time: never a [B, L, V] tensor.

Reductions (`reduce_reward`, pure): r = mean(s) + a*min(s) - l*(mean(kl) + a*max(kl))
+ format_penalty when the end tag is missing. A reduction over an empty span
(or a non-finite one) is reported as the penalty value and the row's reward is
the penalty value: never NaN, and an empty explanation is never rewarded for
having no KL.
"""

from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass

from stages.config import PromptsConfig, RewardConfig
from stages.errors import UserError
from stages.formats import (
    BEGIN_SOLUTION,
    BEGIN_THOUGHT,
    END_EXPLANATION,
    END_THOUGHT,
    split_completion,
    student_assistant,
    student_view,
    teacher_prefill,
    teacher_view,
)

log = logging.getLogger(__name__)
SCORE_KEYS = ("reward", "sol_logp_mean", "sol_logp_min", "kl_mean", "kl_max", "format_ok", "aligned",
              "explanation", "explanation_tokens", "solution_tokens", "student_tokens")
PREFILL_NL = "\n\n"  # what follows the begin tag before the explanation, in both views


# ----------------------------------------------------------------------------- pure reductions


def _finite(values: list[float]) -> bool:
    return bool(values) and all(math.isfinite(v) for v in values)


def reduce_reward(sol_logps: list[float], kl: list[float], kl_coef: float = 3.0, alpha: float = 0.01,
                  format_penalty: float = -1.0, format_ok: bool = True, aligned: bool = True) -> dict:
    """Row reward from per-token solution log-probs and per-token KL terms.

    r_SS = mean(s) + alpha*min(s); r_KL = mean(kl) + alpha*max(kl);
    r = r_SS - kl_coef*r_KL (+ format_penalty without the end tag).
    Empty/non-finite spans or a misaligned row: components that cannot be
    computed read `format_penalty`, and so does the reward.
    """
    sol, kl = [float(x) for x in sol_logps], [float(x) for x in kl]
    ok_sol, ok_kl = _finite(sol), _finite(kl)
    out = {
        "sol_logp_mean": sum(sol) / len(sol) if ok_sol else format_penalty,
        "sol_logp_min": min(sol) if ok_sol else format_penalty,
        "kl_mean": sum(kl) / len(kl) if ok_kl else format_penalty,
        "kl_max": max(kl) if ok_kl else format_penalty,
    }
    if not (ok_sol and ok_kl and aligned):
        out["reward"] = format_penalty
        return out
    r_ss = out["sol_logp_mean"] + alpha * out["sol_logp_min"]
    r_kl = out["kl_mean"] + alpha * out["kl_max"]
    out["reward"] = r_ss - kl_coef * r_kl + (0.0 if format_ok else format_penalty)
    return out


def token_span(offsets: list[tuple[int, int]], start: int, end: int) -> list[int]:
    """Indices of tokens whose (non-empty) character offsets lie inside [start, end)."""
    return [k for k, (a, b) in enumerate(offsets) if start <= a and b <= end and b > a]


# ----------------------------------------------------------------------------- views and spans


@dataclass
class Views:
    """One row rendered in both views, with its token spans (indices into the ids)."""

    explanation: str
    format_ok: bool
    text: str                 # the student view
    s_ids: list[int]
    t_ids: list[int]
    sol: list[int]            # solution tokens in the student view
    s_kl: list[int]           # KL tokens in the student view (explanation [+ prefill newlines])
    t_kl: list[int]           # the same tokens in the teacher view
    n_expl: int               # explanation tokens (student view)
    aligned: bool


def extract_explanation(row: dict) -> tuple[str, bool]:
    """(explanation, has end tag) from a row's `completion` or `explanation`."""
    if row.get("completion") is not None:
        return split_completion(str(row["completion"]))
    if row.get("explanation") is not None:
        return str(row["explanation"]), row.get("format_ok") is not False
    raise UserError(f"row {row.get('id', '')!r} has neither 'explanation' nor 'completion'")


def _encode(tok, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


def _locate(text: str, content: str, what: str) -> int:
    base = text.rfind(content)
    if base < 0:
        raise UserError(f"the chat template changes the assistant text of the {what} view; "
                        "cannot locate the explanation and solution in it")
    return base


def render(tok, teacher_tok, prompts: PromptsConfig, row: dict, include_prefill: bool = False) -> Views:
    """Render, tokenize and locate the spans of one row (METHOD.md "Exact strings")."""
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
    s_ids, s_off = _encode(tok, s_text)
    t_ids, t_off = _encode(teacher_tok, t_text)
    back = len(PREFILL_NL) if include_prefill else 0
    s_kl = token_span(s_off, e0 - back, e0 + len(expl))
    t_kl = token_span(t_off, t0 - back, t0 + len(expl))
    aligned = [s_ids[k] for k in s_kl] == [t_ids[k] for k in t_kl]
    n_expl = len(token_span(s_off, e0, e0 + len(expl)))
    return Views(expl, format_ok, s_text, s_ids, t_ids, token_span(s_off, s0, s0 + len(sol)),
                 s_kl, t_kl, n_expl, aligned)


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


def hidden_at(model, seqs: list[list[int]], wanted: list[list[int]], pad_id: int, left: bool):
    """Pad `seqs`, run the decoder body once; hidden states predicting each wanted token. -> [N, H]"""
    import torch

    body, dev = body_and_head(model)[0], _device(model)
    B, L = len(seqs), max(len(s) for s in seqs)
    ids = torch.full((B, L), pad_id, dtype=torch.long)
    mask = torch.zeros((B, L), dtype=torch.long)
    rows, cols = [], []
    for i, (s, w) in enumerate(zip(seqs, wanted)):
        off = L - len(s) if left else 0
        ids[i, off:off + len(s)] = torch.tensor(s)
        mask[i, off:off + len(s)] = 1
        rows += [i] * len(w)
        cols += [off + k - 1 for k in w]  # position k-1 predicts token k
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    out = body(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev), use_cache=False)
    h = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]  # [B, L, H]
    return h[torch.tensor(rows, device=h.device, dtype=torch.long), torch.tensor(cols, device=h.device, dtype=torch.long)]


def _logits(head, h, tau: float, softcap):
    z = head(h).float()  # [C, V], a fresh tensor: scaled in place
    if softcap:
        z = z.div_(softcap).tanh_().mul_(softcap)
    return z.div_(tau)


def token_logps(model, h, targets, tau: float, chunk: int):
    """log softmax(lm_head(h) / tau)[target], `chunk` positions at a time. h [N, H], targets [N] -> [N]"""
    import torch

    _, head, cap = body_and_head(model)
    out = []
    for i in range(0, h.shape[0], chunk):
        z = _logits(head, h[i:i + chunk], tau, cap)  # [C, V]
        t = targets[i:i + chunk].to(z.device)
        out.append(z.log_softmax(-1).gather(-1, t[:, None]).squeeze(-1).cpu())  # log_softmax beats logsumexp on CPU
    return torch.cat(out) if out else torch.zeros(0)


def full_kl(teacher, h_t, tau_t: float, student, h_s, tau_s: float, chunk: int):
    """KL(teacher || student) over the whole vocabulary at each position. [N, H] x2 -> [N]"""
    import torch

    (_, head_t, cap_t), (_, head_s, cap_s) = body_and_head(teacher), body_and_head(student)
    out = []
    for i in range(0, h_t.shape[0], chunk):
        lt = _logits(head_t, h_t[i:i + chunk], tau_t, cap_t)
        ls = _logits(head_s, h_s[i:i + chunk], tau_s, cap_s).to(lt.device)
        v = min(lt.shape[-1], ls.shape[-1])  # padded embedding rows beyond the vocabulary
        lt, ls = lt[:, :v].log_softmax(-1), ls[:, :v].log_softmax(-1)
        out.append((lt.exp() * (lt - ls)).sum(-1).cpu())
    return torch.cat(out) if out else torch.zeros(0)


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
    """

    def __init__(self, student, tokenizer, reward: RewardConfig, prompts: PromptsConfig, teacher=None,
                 batch_size: int = 8, teacher_tokenizer=None):
        if batch_size < 1:
            raise UserError(f"batch size must be >= 1, got {batch_size}")
        if reward.teacher_temperature <= 0 or reward.student_temperature <= 0:
            raise UserError("reward.teacher_temperature and reward.student_temperature must be > 0")
        if reward.chunk_tokens < 1:
            raise UserError(f"reward.chunk_tokens must be >= 1, got {reward.chunk_tokens}")
        if not getattr(tokenizer, "is_fast", False):
            raise UserError("the reward needs a fast tokenizer (character offsets); this one is slow")
        self.student, self.tokenizer, self.teacher = student.eval(), tokenizer, teacher
        self.teacher_tokenizer = teacher_tokenizer or tokenizer
        self.reward, self.prompts, self.batch_size = reward, prompts, batch_size
        self.misaligned = 0  # rows penalised because the two views tokenized the explanation differently

    def render(self, row: dict) -> Views:
        return render(self.tokenizer, self.teacher_tokenizer, self.prompts, row, self.reward.kl_include_prefill)

    def score(self, rows: list[dict], teacher=None) -> list[dict]:
        """One result dict per row (see SCORE_KEYS, plus `text` = the student view)."""
        teacher = teacher if teacher is not None else self.teacher
        if teacher is None:
            raise ValueError("RLTReward.score needs a teacher model (argument or .teacher)")
        views = [self.render(r) for r in rows]
        self._count_misaligned(views)
        order = sorted(range(len(views)), key=lambda i: len(views[i].s_ids))  # similar lengths share a batch
        out: list[dict | None] = [None] * len(views)
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            for i, res in zip(idx, self._score_batch([views[i] for i in idx], teacher)):
                out[i] = res
        return out  # type: ignore[return-value]

    def _count_misaligned(self, views: list[Views]) -> None:
        bad = sum(not v.aligned for v in views)
        if bad and not self.misaligned:
            log.warning("%d of %d rows: explanation tokens differ between the teacher and student views; "
                        "scored as format_penalty (counted in 'aligned')", bad, len(views))
        self.misaligned += bad

    def _score_batch(self, views: list[Views], teacher) -> list[dict]:
        import torch

        cfg, pad = self.reward, self.tokenizer.pad_token_id or 0
        left = self.tokenizer.padding_side == "left"
        kl_rows = [v for v in views if v.aligned and v.s_kl]
        has_kl = {id(v) for v in kl_rows}
        with torch.no_grad(), _eval_mode(teacher):
            wanted = [v.sol + (v.s_kl if id(v) in has_kl else []) for v in views]
            h_s = hidden_at(self.student, [v.s_ids for v in views], wanted, pad, left)  # [N, H]
            s_lp = token_logps(self.student, h_s, _targets(views, wanted), cfg.student_temperature, cfg.chunk_tokens)
            is_kl = torch.tensor([k >= len(v.sol) for v, w in zip(views, wanted) for k in range(len(w))], dtype=torch.bool)
            kl = torch.zeros(0)
            if kl_rows:
                t_wanted = [v.t_kl for v in kl_rows]
                h_t = hidden_at(teacher, [v.t_ids for v in kl_rows], t_wanted, pad, left)
                if cfg.full_kl:
                    kl = full_kl(teacher, h_t, cfg.teacher_temperature, self.student,
                                 h_s[is_kl.to(h_s.device)], cfg.student_temperature, cfg.chunk_tokens)
                else:
                    t_lp = token_logps(teacher, h_t, _targets(kl_rows, t_wanted, teacher=True),
                                       cfg.teacher_temperature, cfg.chunk_tokens)
                    kl = t_lp - s_lp[is_kl]
        sol = _split(s_lp[~is_kl], [len(v.sol) for v in views])
        kls = iter(_split(kl, [len(v.t_kl) for v in kl_rows]))
        return [self._result(v, s, next(kls) if id(v) in has_kl else []) for v, s in zip(views, sol)]

    def _result(self, v: Views, sol: list[float], kl: list[float]) -> dict:
        c = self.reward
        res = reduce_reward(sol, kl, c.kl_coef, c.alpha, c.format_penalty, v.format_ok, v.aligned)
        res.update(format_ok=v.format_ok, aligned=v.aligned, explanation=v.explanation, text=v.text,
                   explanation_tokens=v.n_expl, solution_tokens=len(v.sol), student_tokens=len(v.s_ids))
        return res


def _targets(views: list[Views], wanted: list[list[int]], teacher: bool = False):
    import torch

    ids = [v.t_ids if teacher else v.s_ids for v in views]
    return torch.tensor([s[k] for s, w in zip(ids, wanted) for k in w], dtype=torch.long)


def load_reward(student_path: str, teacher_path: str | None, reward: RewardConfig, prompts: PromptsConfig,
                device: str = "auto", batch_size: int = 8, trust_remote_code: bool = False) -> RLTReward:
    """Load the student (and teacher) safely; refuse tokenizers with different vocabularies."""
    from stages.models import check_same_vocab, load_model, load_tokenizer

    tok = load_tokenizer(student_path, trust_remote_code=trust_remote_code)
    teacher_tok = None
    if teacher_path:
        teacher_tok = load_tokenizer(teacher_path, trust_remote_code=trust_remote_code)
        check_same_vocab(teacher_tok, tok)
        if teacher_tok.chat_template == tok.chat_template:
            teacher_tok = None
    student = load_model(student_path, device=device, trust_remote_code=trust_remote_code)
    teacher = load_model(teacher_path, device=device, trust_remote_code=trust_remote_code) if teacher_path else None
    return RLTReward(student, tok, reward, prompts, teacher=teacher, batch_size=batch_size,
                     teacher_tokenizer=teacher_tok)
