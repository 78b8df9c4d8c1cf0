"""Hand-computed cases for the RLT reward reductions and span selection (no model)."""

import math

import pytest

from stages.reward import reduce_reward, token_span


def test_paper_coefficients_by_hand():
    # s = [-1, -3]: mean -2, min -3 -> r_SS = -2 + 0.01*-3 = -2.03
    # kl = [0.5, -0.1, 0.2]: mean 0.2, max 0.5 -> r_KL = 0.2 + 0.01*0.5 = 0.205
    # r = -2.03 - 3*0.205 = -2.645
    out = reduce_reward([-1.0, -3.0], [0.5, -0.1, 0.2])
    assert out["sol_logp_mean"] == pytest.approx(-2.0)
    assert out["sol_logp_min"] == pytest.approx(-3.0)
    assert out["kl_mean"] == pytest.approx(0.2)
    assert out["kl_max"] == pytest.approx(0.5)
    assert out["reward"] == pytest.approx(-2.645)


def test_other_coefficients():
    # alpha 0.5, lambda 2: r_SS = -0.5 + 0.5*-0.5 = -0.75; r_KL = 1 + 0.5*1 = 1.5; r = -0.75 - 3 = -3.75
    out = reduce_reward([-0.5], [1.0], kl_coef=2.0, alpha=0.5)
    assert out["reward"] == pytest.approx(-3.75)
    # lambda 0: the KL term drops out entirely
    assert reduce_reward([-0.5], [9.0], kl_coef=0.0, alpha=0.0)["reward"] == pytest.approx(-0.5)


def test_negative_kl_raises_reward():
    base = reduce_reward([-1.0], [0.0])["reward"]
    assert reduce_reward([-1.0], [-0.2, -0.4])["reward"] > base


def test_missing_end_tag_adds_penalty_and_still_scores():
    ok = reduce_reward([-1.0, -2.0], [0.1, 0.3], format_penalty=-1.0)
    bad = reduce_reward([-1.0, -2.0], [0.1, 0.3], format_penalty=-1.0, format_ok=False)
    assert bad["reward"] == pytest.approx(ok["reward"] - 1.0)
    assert bad["sol_logp_mean"] == ok["sol_logp_mean"] and bad["kl_max"] == ok["kl_max"]
    assert reduce_reward([-1.0], [0.0], format_penalty=-2.5, format_ok=False)["reward"] == pytest.approx(-1.01 - 2.5)


@pytest.mark.parametrize("sol,kl", [([], [0.1]), ([-1.0], []), ([], []),
                                    ([float("nan"), -1.0], [0.1]), ([-1.0], [float("inf")]),
                                    ([float("-inf")], [0.0])])
def test_empty_or_non_finite_spans_give_the_penalty(sol, kl):
    out = reduce_reward(sol, kl, format_penalty=-1.5)
    assert out["reward"] == -1.5
    assert all(math.isfinite(v) for v in out.values())
    if not sol:
        assert out["sol_logp_mean"] == out["sol_logp_min"] == -1.5
    if not kl:
        assert out["kl_mean"] == out["kl_max"] == -1.5


def test_empty_explanation_is_not_rewarded_for_missing_kl():
    # Substituting the penalty into the KL terms would *add* 3.03 to the reward.
    assert reduce_reward([-0.1], [], format_penalty=-1.0)["reward"] == -1.0


def test_misaligned_row_reads_the_penalty_but_keeps_components():
    out = reduce_reward([-2.0], [0.2], aligned=False, format_penalty=-1.0)
    assert out["reward"] == -1.0 and out["sol_logp_mean"] == -2.0 and out["kl_mean"] == pytest.approx(0.2)


def test_token_span_keeps_only_tokens_inside():
    offsets = [(0, 3), (3, 5), (5, 6), (6, 6), (6, 9), (9, 12)]
    assert token_span(offsets, 3, 9) == [1, 2, 4]       # the empty (6, 6) token is dropped
    assert token_span(offsets, 4, 9) == [2, 4]          # (3, 5) straddles the start
    assert token_span(offsets, 3, 10) == [1, 2, 4]      # (9, 12) straddles the end
    assert token_span(offsets, 5, 5) == []
    # byte-level pieces of one character share its offsets: both are inside
    assert token_span([(0, 1), (1, 2), (1, 2), (2, 3)], 1, 2) == [1, 2]
