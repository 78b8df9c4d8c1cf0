"""Unscorable completions through teach's GRPO reward function (tiny models): never above a computed row.

The scorer renders the teacher view with the plain-tag tokenizer, so an explanation quoting a tag
tokenizes differently in the two views (misaligned), as a real template or merge can make it.
"""

import pytest

from stages import reward_record
from stages.method.views import BEGIN_SOLUTION, END_EXPLANATION

EE = END_EXPLANATION


@pytest.fixture(scope="module")
def reward_fn(tiny_teacher, tiny_student, tiny_plain):
    from stages.method.grpo import RLTRewardFunc
    from stages.method.reward import RLTReward
    from stages.method.settings import PromptsConfig, RewardConfig
    from stages.models.loading import load_model, load_tokenizer

    tok = load_tokenizer(str(tiny_student))
    scorer = RLTReward(load_model(str(tiny_student), "cpu"), tok, RewardConfig(teacher_temperature=0.7, kl_coef=10.0), PromptsConfig(),
                       reward_batch_size=3, teacher_tokenizer=load_tokenizer(str(tiny_plain)))
    return tok, RLTRewardFunc(scorer, tok, samples_per_log=0).bind_model(load_model(str(tiny_teacher), "cpu"))


GROUP = [("ones: 1 + 2 = 3.\n", True), ("tens: 1 + 3 = 4, write 4.\n", True), ("", True),
         (f"the tag {BEGIN_SOLUTION} starts it", True), ("   \n", True), ("no end tag here", False)]


def _call(tok, fn, group, q, s):
    ids = [tok(t + (EE if end else ""), add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
           for t, end in group]
    logged = {}
    rewards = fn(prompts=["p"] * len(ids), completions=[""] * len(ids), completion_ids=ids, question=[q] * len(ids),
                 solution=[s] * len(ids), log_metric=lambda k, v: logged.__setitem__(k, v))
    return rewards, logged


def test_unscorable_completions_rank_below_the_computed_ones_and_are_logged(reward_fn, one_thread):
    tok, fn = reward_fn
    q, s = "What is 12 + 30?", "12 + 30 = 42. The answer is \\boxed{42}."
    rewards, logged = _call(tok, fn, GROUP, q, s)
    rows = [{"question": q, "solution": s, "completion": t + (EE if end else "")} for t, end in GROUP]
    direct = fn.scorer.score(rows, teacher=fn._policy())
    assert [d["unscorable"] for d in direct] == [None, None, "empty_explanation", "misaligned",
                                                 "whitespace_explanation", None]
    assert rewards == pytest.approx([d["reward"] for d in direct])
    computed = [rewards[i] for i in (0, 1, 5)]
    assert max(computed) < -1.0  # far below the old flat penalty
    for i in (2, 3, 4):  # the empty explanation too: never above an explanation of its group
        assert rewards[i] == pytest.approx(min(computed) - 1.0) and rewards[i] < min(computed)
    assert logged["rlt/empty"] == pytest.approx(2 / 6) and logged["rlt/misaligned"] == pytest.approx(1 / 6)
    assert logged["rlt/untagged"] == pytest.approx(1 / 6) and logged["rlt/unscorable"] == pytest.approx(3 / 6)


def test_groups_are_floored_apart(reward_fn, one_thread):
    tok, fn = reward_fn
    a = ("What is 12 + 30?", "12 + 30 = 42. The answer is \\boxed{42}.")
    b = ("What is 40 + 41?", "40 + 41 = 81. The answer is \\boxed{81}.")
    texts = [("ones: 1 + 2 = 3.\n", True), (f"the tag {BEGIN_SOLUTION}", True)]
    ids = [tok(t + EE, add_special_tokens=False)["input_ids"] for t, _ in texts] * 2
    got = fn(prompts=["p"] * 4, completions=[""] * 4, completion_ids=ids, question=[a[0], a[0], b[0], b[0]],
             solution=[a[1], a[1], b[1], b[1]])
    assert got[1] == pytest.approx(got[0] - 1.0) and got[3] == pytest.approx(got[2] - 1.0)


def test_score_returns_the_record_and_its_bookkeeping(reward_fn):
    _, fn = reward_fn
    out = fn.scorer.score([{"question": "q", "solution": "s", "explanation": "e"}], teacher=fn._policy(),
                          estimators=["full"])
    assert set(out[0]) == {*reward_record.COLUMNS, "explanation", "text", "kl_estimator", "unscorable"}
    assert out[0]["kl_estimator"] == "full" and reward_record.record(out[0])
