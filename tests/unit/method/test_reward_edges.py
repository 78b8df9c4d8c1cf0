"""Rows the RLT reward cannot score: a floor below the group (empty explanations too, by default), and the
reference's rule for empty explanations as an option.

Computed rewards here are far below -1 (about -22 to -60), as they are for real students on long
solutions: a flat penalty of -1 would rank an unscorable row first in its group. Expected values are
computed by hand from docs/method.md, not by the code under test.
"""

import math
import statistics

import pytest

from stages.method.reward import floor_unscorable, group_minima, reduce_reward, unscorable_reason

NAN, INF = float("nan"), float("inf")
SOL = [-20.0, -24.0, -18.0]           # r_SS = -20.6667 + 0.01 * -24 = -20.9067
KL = [0.4, 0.9, 0.5]                  # r_KL = 0.6 + 0.01 * 0.9 = 0.609


def by_hand(sol, kl, lam=3.0, alpha=0.01, penalty=-1.0, format_ok=True):
    r_ss = sum(sol) / len(sol) + alpha * min(sol)
    r_kl = sum(kl) / len(kl) + alpha * max(kl)
    return r_ss - lam * r_kl + (0.0 if format_ok else penalty)


def scored(sol, kl, explanation="some steps", aligned=True, format_ok=True, **kw):
    out = reduce_reward(sol, kl, format_ok=format_ok, aligned=aligned, explanation=explanation, **kw)
    out["unscorable"] = unscorable_reason(sol, kl, aligned, explanation, kw.get("empty", "floor"))
    return out


UNSCORABLE = {  # kind -> (sol, kl, explanation, aligned)
    "misaligned": (SOL, [], "steps", False),
    "empty_solution": ([], KL, "steps", True),
    "empty_explanation": (SOL, [], "", True),
    "whitespace_explanation": (SOL, [0.1], " \n\n ", True),
    "no_explanation_tokens": (SOL, [], "x", True),
    "non_finite": ([-20.0, NAN], KL, "steps", True),
    "non_finite_kl": (SOL, [0.2, INF], "steps", True),
    "non_finite_neg": ([-INF, -3.0], KL, "steps", True),
}


@pytest.mark.parametrize("kind", sorted(UNSCORABLE))
@pytest.mark.parametrize("penalty", [-1.0, -0.5, -3.0])
def test_each_unscorable_kind_ranks_below_every_computed_row_of_its_group(kind, penalty):
    sol, kl, expl, aligned = UNSCORABLE[kind]
    group = [scored(SOL, KL, format_penalty=penalty),
             scored([x - 30 for x in SOL], [k + 2 for k in KL], format_penalty=penalty),  # the group's worst
             scored(SOL, KL, format_ok=False, format_penalty=penalty),
             scored(sol, kl, expl, aligned, format_penalty=penalty)]
    computed = [by_hand(SOL, KL), by_hand([x - 30 for x in SOL], [k + 2 for k in KL]),
                by_hand(SOL, KL, penalty=penalty, format_ok=False)]
    assert all(c < -20 for c in computed)
    assert group[3]["unscorable"] == kind.removesuffix("_kl").removesuffix("_neg")
    assert all(r["unscorable"] is None for r in group[:3])
    floor_unscorable(group, ["g"] * 4, penalty)
    assert [r["reward"] for r in group[:3]] == pytest.approx(computed)  # computed rows are untouched
    assert group[3]["reward"] == pytest.approx(min(computed) + penalty)
    assert group[3]["reward"] < min(computed)
    assert all(math.isfinite(v) for r in group for k, v in r.items() if k != "unscorable")


def test_the_floor_is_per_group_and_a_group_without_computed_rows_reads_the_penalty():
    rows = [scored(SOL, KL), scored(*UNSCORABLE["misaligned"][:3], aligned=False),
            scored([x - 40 for x in SOL], KL), scored([], KL), scored([], [])]
    groups = ["a", "a", "b", "b", "c"]
    floor_unscorable(rows, groups, -1.0)
    assert rows[1]["reward"] == pytest.approx(by_hand(SOL, KL) - 1.0)  # group a's floor, not group b's
    assert rows[3]["reward"] == pytest.approx(by_hand([x - 40 for x in SOL], KL) - 1.0)
    assert rows[4]["reward"] == -1.0  # nothing computed in group c
    assert group_minima(rows, groups) == pytest.approx({"a": by_hand(SOL, KL), "b": by_hand([x - 40 for x in SOL], KL)})


def test_minima_from_other_processes_lower_the_floor():
    rows = [scored(SOL, KL), scored([], KL)]
    floor_unscorable(rows, ["g", "g"], -1.0, minima={"g": -99.0})
    assert rows[1]["reward"] == -100.0 and rows[0]["reward"] == pytest.approx(by_hand(SOL, KL))


@pytest.mark.parametrize("penalty", [-1.0, -2.0])
def test_an_empty_explanation_follows_the_reference(penalty):
    # SakanaAI/RLT trainers/teacher_rewards.py: nan_to_num(kl_scores, nan=-not_matched_penalty): each KL
    # reduction reads +|penalty|, so r = r_SS - lambda * |penalty| * (1 + alpha); the solution is measured.
    out = scored(SOL, [], explanation="", format_penalty=penalty, empty="reference")
    assert out["unscorable"] is None
    assert out["kl_mean"] == out["kl_max"] == -penalty
    assert out["reward"] == pytest.approx(by_hand(SOL, [-penalty, -penalty]))
    assert out["reward"] == pytest.approx(by_hand(SOL, [1.0]) if penalty == -1.0 else by_hand(SOL, [2.0]))
    untagged = scored(SOL, [], explanation="", format_ok=False, format_penalty=penalty, empty="reference")
    assert untagged["reward"] == pytest.approx(out["reward"] + penalty)


def advantages(rewards: list[float]) -> list[float]:
    """GRPO's group advantages, by hand: (r - mean) / std over the group (scale_rewards=group)."""
    mean, std = statistics.fmean(rewards), statistics.stdev(rewards)
    return [(r - mean) / std for r in rewards]


@pytest.mark.parametrize("sampled_sol", [[-7.0, -7.2], [-2.0, -2.5], [-15.0, -16.0]])
def test_an_empty_explanation_never_gets_the_top_advantage(sampled_sol):
    # real explanations that cost more than ~1 nat per token of KL (about -22.4 here): under the reference's
    # rule the empty one scores r_SS - 3.03 and gets the top advantage; the default floors it below them all
    sampled = [scored(sampled_sol, [5.0 + i / 10, 5.1], f"steps {i}") for i in range(3)]
    empty = scored([-9.0, -9.5], [], "")
    group = [*sampled, empty]
    floor_unscorable(group, ["g"] * 4, -1.0)
    worst = min(by_hand(sampled_sol, [5.0 + i / 10, 5.1]) for i in range(3))
    assert empty["unscorable"] == "empty_explanation" and empty["reward"] == pytest.approx(worst - 1.0)
    adv = advantages([r["reward"] for r in group])
    assert adv[3] == min(adv) and adv[3] < 0
    reference = scored([-9.0, -9.5], [], "", empty="reference")
    assert reference["reward"] == pytest.approx(-9.25 + 0.01 * -9.5 - 3 * 1.01)
    if sampled_sol == [-7.0, -7.2]:  # the measured case: the reference's rule ranks saying nothing first
        assert advantages([*(r["reward"] for r in sampled), reference["reward"]])[3] > 1.4


def test_reasons_in_order_and_scorable_rows():
    assert unscorable_reason(SOL, KL) is None
    assert unscorable_reason(SOL, [], explanation="") == "empty_explanation"  # floored by default
    assert unscorable_reason(SOL, []) == "empty_explanation"                   # explanation unknown: empty
    assert unscorable_reason(SOL, [], explanation="", empty="reference") is None  # the reference's rule
    assert unscorable_reason(SOL, [], empty="reference") is None
    assert unscorable_reason([], [], aligned=False) == "misaligned"    # first match
    assert unscorable_reason([], KL, explanation="  ") == "empty_solution"
    assert unscorable_reason(SOL, [0.1], explanation="\t") == "whitespace_explanation"
