"""The embedded addition task: unhelpful share, explanation styles."""

import pytest

from stages.method import tasks


def test_unhelpful_share_and_styles():
    rows = tasks.synth_rows(1000, seed=0, split="train", min_digits=2, max_digits=2, unhelpful=0.4)
    styles = [tasks.explanation_style(r["reasoning_trace"], r["question"]) for r in rows]
    assert set(styles) == {"columns", "asserted"}
    assert 0.36 < styles.count("asserted") / len(rows) < 0.44
    same = tasks.synth_rows(1000, seed=0, split="train", min_digits=2, max_digits=2)
    assert [r["question"] for r in rows] == [r["question"] for r in same]  # the share changes traces only
    assert all(tasks.explanation_style(r["reasoning_trace"], r["question"]) == "columns" for r in same)


def test_style_checker_on_hand_written_explanations():
    q = "What is 58 + 67?"
    cols = "ones: 8 + 7 = 15, write 5, carry 1.\ntens: 5 + 6 + 1 = 12, write 2, carry 1.\n" \
           "hundreds: write the carry 1.\nSo 58 + 67 = 125.\n"
    assert tasks.explanation_style(cols, q) == "columns" and tasks.is_helpful("columns")
    assert tasks.explanation_style("Adding the two numbers gives 125.\nSo 58 + 67 = 125.", q) == "asserted"
    wrong = cols.replace("write 2", "write 3")
    assert tasks.explanation_style(wrong, q) == "columns-wrong"
    assert tasks.explanation_style(cols.splitlines()[0], q) == "columns-wrong"  # incomplete
    reversed_ = "\n".join(cols.splitlines()[:3][::-1] + cols.splitlines()[3:])
    assert tasks.explanation_style("Adding the two numbers gives 126.\nSo 58 + 67 = 126.", q) == "asserted-wrong"
    for text in (reversed_, "So 58 + 67 = 125.", "", "The answer is 125."):
        assert tasks.explanation_style(text, q) == "other", text
        assert not tasks.is_helpful(tasks.explanation_style(text, q))
    assert tasks.explanation_style(cols, "What is x?") == "other"


@pytest.mark.parametrize("kw", [{"unhelpful": 1.5}, {"unhelpful": -0.1}, {"style": "detour"}])
def test_bad_share_or_style_raise(kw):
    with pytest.raises(ValueError):
        tasks.synth_rows(10, **kw)


def test_five_digit_sums_with_a_final_carry_have_a_column_name():
    trace = tasks.carry_trace(99999, 1)
    assert trace.splitlines()[-2] == "hundred-thousands: write the carry 1."
    assert tasks.explanation_style(trace, tasks.question_text(99999, 1)) == "columns"
    rows = tasks.synth_rows(200, seed=0, min_digits=5, max_digits=5)
    assert any("write the carry" in r["reasoning_trace"] for r in rows)
    assert tasks.explanation_style("ones: 1 + 1 = 2, write 2.", "What is 123456 + 1?") == "other"
