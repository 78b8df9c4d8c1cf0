"""The batched RLT reward against a slow per-token reference written straight from docs/method.md.

The reference scores one row at a time: full forward of the HF model with
labels, log-softmax over all logits / tau, pick each span token's log-prob;
spans are found from the tags in the rendered text and the offset mapping.
"""

import math

import pytest
import torch

from stages.errors import UserError
from stages.method.reward import RLTReward, load_reward
from stages.method.settings import PromptsConfig, RewardConfig

BT, ET = "<|begin_of_thought|>", "<|end_of_thought|>"
BS, ES = "<|begin_of_solution|>", "<|end_of_solution|>"
BE, EE = "<|begin_of_explanation|>", "<|end_of_explanation|>"
TOL = 1e-4


# ----------------------------------------------------------------------------- the reference


def _load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def _token_logps(model, tok, text, tau):
    """log pi(token_k | tokens_<k) for every k >= 1, and the offsets."""
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
    ids = torch.tensor([enc.input_ids])
    with torch.no_grad():
        out = model(input_ids=ids, labels=ids)
    logp = torch.log_softmax(out.logits[0].float() / tau, dim=-1)  # [L, V]
    per = {k: logp[k - 1, ids[0, k]].item() for k in range(1, ids.shape[1])}
    return per, enc.offset_mapping, logp, ids[0]


def _inside(offsets, a, b):
    return [k for k, (x, y) in enumerate(offsets) if a <= x and y <= b and y > x]


def _reference_row(row, teacher, student, tok, cfg: RewardConfig, prompts: PromptsConfig):
    if "completion" in row:
        expl, _, _ = row["completion"].partition(EE)
        ok = EE in row["completion"]
    else:
        expl, ok = row["explanation"], True
    q, sol = row["question"], row["solution"]
    s_msgs = [{"role": "system", "content": prompts.student_system}, {"role": "user", "content": q},
              {"role": "assistant", "content": f"{BT}\n\n{expl}{ET}\n\n{BS}{sol}{ES}"}]
    t_msgs = [{"role": "system", "content": prompts.teacher_system}, {"role": "user", "content": q},
              {"role": "assistant", "content": f"{BS}{sol}{ES}\n\n{BE}\n\n{expl}{EE}"}]
    s_text = tok.apply_chat_template(s_msgs, tokenize=False)
    t_text = tok.apply_chat_template(t_msgs, tokenize=False, continue_final_message=True)
    back = 2 if cfg.kl_include_prefill else 0
    se0 = s_text.rindex(BT) + len(BT) + 2
    sol0 = s_text.rindex(BS) + len(BS)
    te0 = t_text.rindex(BE) + len(BE) + 2
    s_per, s_off, s_full, _ = _token_logps(student, tok, s_text, cfg.student_temperature)
    t_tau = cfg.teacher_temperature  # resolved by the caller, as a command resolves it
    t_per, t_off, t_full, _ = _token_logps(teacher, tok, t_text, t_tau)
    s_sol = [s_per[k] for k in _inside(s_off, sol0, sol0 + len(sol))]
    sk, tk = _inside(s_off, se0 - back, se0 + len(expl)), _inside(t_off, te0 - back, te0 + len(expl))
    if cfg.full_kl:
        kl = [(t_full[j - 1].exp() * (t_full[j - 1] - s_full[i - 1])).sum().item() for i, j in zip(sk, tk)]
    else:
        kl = [t_per[j] - s_per[i] for i, j in zip(sk, tk)]
    p = cfg.format_penalty
    if not s_sol:
        return {"reward": p, "format_ok": ok}
    if not kl:  # an empty explanation: the reference's nan_to_num reads -not_matched_penalty for the KL terms
        kl = [-p]
    r_ss = sum(s_sol) / len(s_sol) + cfg.alpha * min(s_sol)
    r_kl = sum(kl) / len(kl) + cfg.alpha * max(kl)
    return {"reward": r_ss - cfg.kl_coef * r_kl + (0 if ok else p), "format_ok": ok,
            "sol_logp_mean": sum(s_sol) / len(s_sol), "sol_logp_min": min(s_sol),
            "kl_mean": sum(kl) / len(kl), "kl_max": max(kl)}


def reference(rows, teacher_path, student_path, cfg, prompts):
    (teacher, tok), (student, _) = _load(teacher_path), _load(student_path)
    return [_reference_row(r, teacher, student, tok, cfg, prompts) for r in rows]


# ----------------------------------------------------------------------------- rows


@pytest.fixture(scope="module")
def rows(synth_train):
    from stages.artifacts.read import read_rows

    data = read_rows(synth_train, "dataset")[:4]
    out = []
    for i, r in enumerate(data):
        trace = r["reasoning_trace"]
        out.append({"question": r["question"], "solution": r["solution"],
                    "explanation": trace[: 20 + 40 * i]})  # rows of different lengths
    a = data[0]
    out += [
        {"question": a["question"], "solution": a["solution"], "explanation": a["reasoning_trace"] + a["solution"]},
        {"question": "Was ist 12 + 30? Ünïcödé — 数学 ✓", "solution": "12 + 30 = 42. Die Antwort ist \\boxed{42}. é",
         "explanation": "Einer: 2 + 0 = 2, schreibe 2 — weiter… 数学\nSo 12 + 30 = 42. ✓"},
        {"question": a["question"], "solution": a["solution"], "completion": a["reasoning_trace"]},  # no end tag
        {"question": a["question"], "solution": a["solution"], "completion": a["reasoning_trace"][:37]},  # truncated
        {"question": a["question"], "solution": a["solution"],
         "completion": a["reasoning_trace"] + EE + "<|im_end|> trailing text"},
    ]
    return out


def _check(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g["format_ok"] == w["format_ok"]
        assert g["aligned"] is True
        for k, v in w.items():
            if k != "format_ok":
                assert g[k] == pytest.approx(v, abs=TOL), (k, g, w)
        assert math.isfinite(g["reward"])


def _scorer(teacher_path, student_path, cfg, side="right", batch_size=4):
    scorer = load_reward(str(student_path), str(teacher_path), cfg, PromptsConfig(), device="cpu",
                         reward_batch_size=batch_size)
    scorer.tokenizer.padding_side = side
    return scorer


# ----------------------------------------------------------------------------- agreement


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("swap", [False, True])
def test_batched_matches_reference(rows, tiny_teacher, tiny_student, side, swap):
    teacher, student = (tiny_student, tiny_teacher) if swap else (tiny_teacher, tiny_student)
    cfg = RewardConfig(teacher_temperature=0.7)
    got = _scorer(teacher, student, cfg, side).score(rows)
    _check(got, reference(rows, teacher, student, cfg, PromptsConfig()))
    assert [g["format_ok"] for g in got][-3:] == [False, False, True]


def test_tags_as_multi_token_text(rows, tiny_plain):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_plain)
    assert len(tok(EE, add_special_tokens=False).input_ids) > 1
    cfg = RewardConfig(kl_coef=2.0, alpha=0.1, teacher_temperature=1.0, student_temperature=0.5)
    got = _scorer(tiny_plain, tiny_plain, cfg, "left", batch_size=3).score(rows)
    _check(got, reference(rows, tiny_plain, tiny_plain, cfg, PromptsConfig()))
    assert all(g["explanation_tokens"] > 0 for g in got[:-3])


def test_full_kl_and_prefill_options(rows, tiny_teacher, tiny_student):
    cfg = RewardConfig(teacher_temperature=0.7, full_kl=True, kl_include_prefill=True, chunk_tokens=7)
    got = _scorer(tiny_teacher, tiny_student, cfg, "left").score(rows)
    _check(got, reference(rows, tiny_teacher, tiny_student, cfg, PromptsConfig()))
    assert all(r["kl_max"] >= r["kl_mean"] >= 0 for r in got)  # a true KL is never negative
    few = rows[:3]
    plain = _scorer(tiny_teacher, tiny_student, RewardConfig(teacher_temperature=0.7)).score(few)
    prefill = _scorer(tiny_teacher, tiny_student, RewardConfig(teacher_temperature=0.7, kl_include_prefill=True)).score(few)
    _check(prefill, reference(few, tiny_teacher, tiny_student, RewardConfig(teacher_temperature=0.7, kl_include_prefill=True), PromptsConfig()))
    assert all(b["explanation_tokens"] == a["explanation_tokens"] for a, b in zip(plain, prefill))
    assert all(abs(a["kl_mean"] - b["kl_mean"]) > 1e-4 for a, b in zip(plain, prefill))


def test_batch_size_and_order_do_not_change_scores(rows, tiny_teacher, tiny_student):
    few = rows[:3] + rows[-3:]
    one = _scorer(tiny_teacher, tiny_student, RewardConfig(teacher_temperature=0.7, chunk_tokens=5), batch_size=1).score(few)
    many = _scorer(tiny_teacher, tiny_student, RewardConfig(teacher_temperature=0.7), batch_size=16).score(few[::-1])[::-1]
    for a, b in zip(one, many):
        assert a["reward"] == pytest.approx(b["reward"], abs=TOL)
        assert a["student_tokens"] == b["student_tokens"] and a["text"] == b["text"]


# ----------------------------------------------------------------------------- edge cases


def test_edge_cases(rows, tiny_teacher, tiny_student):
    scorer = _scorer(tiny_teacher, tiny_student, RewardConfig(teacher_temperature=0.7, format_penalty=-2.0))
    q, s = rows[0]["question"], rows[0]["solution"]
    empty, missing, contains = scorer.score([
        {"question": q, "solution": s, "explanation": ""},
        {"question": q, "solution": s, "explanation": "ones: 1 + 2 = 3.", "format_ok": False},
        {"question": q, "solution": s, "explanation": f"We know {s} so {s}"},
    ])
    # the default rule: an empty explanation is floored below its group (here: the other two rows) by the penalty
    assert empty["explanation_tokens"] == 0 and empty["unscorable"] == "empty_explanation"
    assert empty["reward"] == pytest.approx(min(missing["reward"], contains["reward"]) - 2.0)
    # the reference's rule (reward.empty_explanation=reference): the solution measured as usual, each KL
    # reduction reads -format_penalty (+2)
    ref = _scorer(tiny_teacher, tiny_student, RewardConfig(teacher_temperature=0.7, format_penalty=-2.0, empty_explanation="reference"))
    empty = ref.score([{"question": q, "solution": s, "explanation": ""}])[0]
    assert empty["unscorable"] is None and empty["kl_mean"] == empty["kl_max"] == 2.0
    assert empty["solution_tokens"] > 0 and empty["sol_logp_mean"] < 0
    assert empty["reward"] == pytest.approx(empty["sol_logp_mean"] + 0.01 * empty["sol_logp_min"] - 3 * 2.02)
    assert missing["format_ok"] is False and missing["explanation_tokens"] > 0
    ok = scorer.score([{"question": q, "solution": s, "explanation": "ones: 1 + 2 = 3."}])[0]
    assert missing["reward"] == pytest.approx(ok["reward"] - 2.0, abs=TOL)
    # the solution span is the one inside the solution tags, not the copy in the explanation
    assert contains["solution_tokens"] == ok["solution_tokens"]
    assert contains["explanation"] == f"We know {s} so {s}"
    assert contains["text"].endswith(f"{BS}{s}{ES}<|im_end|>\n")


def test_misaligned_rows_are_penalised_not_fatal(rows, tiny_teacher, tiny_student, tiny_plain, caplog):
    from stages.models.loading import load_model, load_tokenizer

    # Render the teacher view with a tokenizer where tags are plain text: an explanation that
    # quotes a tag then tokenizes differently in the two views.
    scorer = RLTReward(load_model(str(tiny_student), "cpu"), load_tokenizer(str(tiny_student)), RewardConfig(teacher_temperature=0.7),
                       PromptsConfig(), teacher=load_model(str(tiny_plain), "cpu"),
                       teacher_tokenizer=load_tokenizer(str(tiny_plain)))
    q, s = rows[0]["question"], rows[0]["solution"]
    batch = [{"question": q, "solution": s, "explanation": f"the tag {BS} starts it"},
             {"question": q, "solution": s, "explanation": "ones: 1 + 2 = 3."}] * 2
    with caplog.at_level("WARNING"):
        got = scorer.score(batch)
        scorer.score(batch)
    assert [g["aligned"] for g in got] == [False, True, False, True]
    assert got[0]["reward"] == got[2]["reward"] == pytest.approx(min(got[1]["reward"], got[3]["reward"]) - 1.0)
    assert got[0]["unscorable"] == "misaligned" and math.isfinite(got[1]["kl_mean"])
    assert scorer.rows_not_aligned == 4
    assert sum("differ between the teacher and student views" in r.message for r in caplog.records) == 1


def test_teacher_can_be_reassigned_and_is_required(rows, tiny_teacher, tiny_student):
    from stages.models.loading import load_model

    scorer = _scorer(tiny_teacher, tiny_student, RewardConfig(teacher_temperature=0.7))
    a = scorer.score(rows[:2])
    scorer.teacher = load_model(str(tiny_student), "cpu")
    b = scorer.score(rows[:2])
    assert all(abs(x["kl_mean"] - y["kl_mean"]) > 1e-6 for x, y in zip(a, b))
    assert scorer.score(rows[:2], teacher=load_model(str(tiny_teacher), "cpu"))[0]["reward"] == \
        pytest.approx(a[0]["reward"], abs=1e-6)
    scorer.teacher.train()
    scorer.score(rows[:1])
    assert scorer.teacher.training  # the policy's mode is restored after scoring
    scorer.teacher = None
    with pytest.raises(ValueError):
        scorer.score(rows[:1])


def test_different_vocabularies_refused(tiny_teacher, tiny_plain):
    with pytest.raises(UserError, match="tokenizers differ"):
        load_reward(str(tiny_teacher), str(tiny_plain), RewardConfig(teacher_temperature=0.7), PromptsConfig(), device="cpu")


def test_prefetched_rows_score_the_same(rows, tiny_teacher, tiny_student):
    chunks = [rows[:3], rows[3:4], rows[4:]]
    plain = _scorer(tiny_teacher, tiny_student, RewardConfig(teacher_temperature=0.7, overlap_render=False), batch_size=2)
    scorer = _scorer(tiny_teacher, tiny_student, RewardConfig(teacher_temperature=0.7), batch_size=2)
    got = []
    for chunk, after in zip(chunks, chunks[1:] + [None]):
        if after:
            scorer.prefetch(after)
        got.append(scorer.score(chunk))
    assert got == [plain.score(c) for c in chunks]
    scorer.prefetch(rows[:2])
    assert scorer.score(rows[2:4]) == plain.score(rows[2:4])  # a prefetch of other rows is not used
