"""Hand-computed cases for the RLT reward reductions and span selection (no model)."""

import math

import pytest

from stages.method.reward import reduce_reward, token_span


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


@pytest.mark.parametrize("sol,kl", [([], [0.1]), ([], []),
                                    ([float("nan"), -1.0], [0.1]), ([-1.0], [float("inf")]),
                                    ([float("-inf")], [0.0])])
def test_unscorable_spans_read_the_penalty_alone(sol, kl):
    # an empty solution or a non-finite value: the row is not scored (floor_unscorable places it in its group)
    out = reduce_reward(sol, kl, format_penalty=-1.5)
    assert out["reward"] == -1.5
    assert all(math.isfinite(v) for v in out.values())
    if not sol:
        assert out["sol_logp_mean"] == out["sol_logp_min"] == -1.5
    if not kl:
        assert out["kl_mean"] == out["kl_max"] == 1.5


def test_empty_explanation_pays_the_references_kl_fill():
    # the reference's nan_to_num: KL reductions over an empty span read -not_matched_penalty = +1 (a cost)
    out = reduce_reward([-0.1], [], format_penalty=-1.0, empty="reference")
    assert out["kl_mean"] == out["kl_max"] == 1.0
    assert out["reward"] == pytest.approx(-0.1 + 0.01 * -0.1 - 3 * (1 + 0.01))


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


def _scan(offsets, start, end):
    return [k for k, (a, b) in enumerate(offsets) if start <= a and b <= end and b > a]


def test_token_span_binary_search_matches_a_scan_on_random_offsets():
    import random

    rng = random.Random(0)
    for trial in range(300):
        offsets, pos = [], 0
        for _ in range(rng.randint(0, 30)):
            width = rng.choice([0, 1, 1, 2, 3])
            offsets.append((pos, pos + width))
            if rng.random() < 0.7:
                pos += width  # else the next piece shares these characters (a byte-level split)
        if trial % 3 == 0 and len(offsets) > 2:
            rng.shuffle(offsets)  # not monotone: the scan fallback
        a, b = sorted(rng.randint(0, pos + 2) for _ in range(2))
        assert token_span(offsets, a, b) == _scan(offsets, a, b), (offsets, a, b)


def test_pack_batch_matches_a_per_row_loop():
    import numpy as np

    from stages.method.reward import pack_batch

    seqs = [np.array([5, 6, 7]), np.array([8]), np.array([9, 10, 11, 12, 13])]
    wanted = [np.array([1, 2]), np.array([], dtype=np.int64), np.array([4, 1, 3])]
    for left in (False, True):
        buf, B, L = pack_batch(seqs, wanted, pad_id=0, left=left)
        ids, pos, mask = (buf[i * B * L:(i + 1) * B * L].reshape(B, L) for i in range(3))
        rows, cols = buf[3 * B * L:].reshape(2, -1)
        for i, (s, w) in enumerate(zip(seqs, wanted)):
            start = L - len(s) if left else 0
            assert ids[i, start:start + len(s)].tolist() == s.tolist()
            assert mask[i].sum() == len(s) and pos[i, start:start + len(s)].tolist() == list(range(len(s)))
        assert rows.tolist() == [0, 0, 2, 2, 2]
        assert [int(ids[r, c + 1]) for r, c in zip(rows, cols)] == [6, 7, 13, 10, 12]  # position k-1 -> token k
