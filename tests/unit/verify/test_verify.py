"""Answer extraction and checking against hand-written cases (stages/verify.py)."""

from __future__ import annotations

import threading

import pytest

from stages import verify
from stages.errors import UserError
from stages.method.views import BEGIN_SOLUTION, BEGIN_THOUGHT, END_SOLUTION, END_THOUGHT
from stages.verify import mathcheck

MATH_CASES = [
    # (response, gold, correct)
    ("The answer is \\boxed{42}.", "42", True),
    ("\\boxed{41}", "42", False),
    ("so $x = \\boxed{\\frac{1}{2}}$", "\\frac{1}{2}", True),
    ("\\boxed{0.5}", "\\frac{1}{2}", True),
    ("\\boxed{\\dfrac{2}{4}}", "\\frac{1}{2}", True),
    ("\\boxed{\\frac{1}{3}}", "\\frac{1}{2}", False),
    ("\\boxed{\\sqrt{8}}", "2\\sqrt{2}", True),
    ("\\boxed{(x+1)^2}", "x^2+2x+1", True),
    ("\\boxed{x^2+1}", "x^2+2x+1", False),
    ("\\boxed{\\{2, 1\\}}", "\\{1,2\\}", True),
    ("\\boxed{\\{1, 3\\}}", "\\{1,2\\}", False),
    ("\\boxed{(0, 1]}", "(0,1]", True),
    ("\\boxed{[0, 1]}", "(0,1]", False),
    ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}", True),
    ("I am not sure.", "42", False),
    ("", "42", False),
]


@pytest.mark.parametrize("response,gold,correct", MATH_CASES)
def test_math_cases(response, gold, correct):
    assert verify.check("math", response, gold).correct is correct


def test_math_prefers_solution_part_and_reports_extracted():
    response = (f"{BEGIN_THOUGHT}\n\nmaybe \\boxed{{7}}{END_THOUGHT}\n\n"
                f"{BEGIN_SOLUTION}So it is \\boxed{{\\frac{{3}}{{4}}}}.{END_SOLUTION}")
    got = verify.check("math", response, "0.75")
    assert got.correct and got.extracted == "\\frac{3}{4}"
    assert not verify.check("math", response, "7").correct


def test_math_gold_given_in_boxed_form():
    assert verify.check("math", "\\boxed{3}", "The answer is $\\boxed{3}$").correct


def test_math_checks_from_threads():
    """A check runs in the grading process's main thread, so a thread may ask for one; the parsing
    functions below it still refuse threads (math-verify's alarm)."""
    got, errors = [], []
    t = threading.Thread(target=lambda: (got.append(verify.check("math", "\\boxed{1}", "1")),
                                         errors.append(_catch(lambda: mathcheck.parse_answer("1")))))
    t.start()
    t.join()
    assert got == [verify.Check(extracted="1", correct=True)]
    assert isinstance(errors[0], RuntimeError) and "signal.alarm" in str(errors[0])


def _catch(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the test inspects it
        return e
    return None


@pytest.mark.parametrize("text,expected", [
    ("\\boxed{a}", "a"),
    ("\\boxed{\\frac{1}{\\sqrt{2}}} and more", "\\frac{1}{\\sqrt{2}}"),
    ("first \\boxed{1} then \\boxed{ {2} }", "{2}"),
    ("\\fbox{5}", "5"),
    ("unclosed \\boxed{1", None),
    ("none here", None),
])
def test_last_boxed_nested(text, expected):
    assert verify.last_boxed(text) == expected


INTEGER_CASES = [
    ("The answer is \\boxed{579}.", "579", True),
    ("\\boxed{578}", "579", False),
    ("\\boxed{033}", "33", True),          # AIME answers are 000-999
    ("\\boxed{1,234}", "1234", True),
    ("\\boxed{$17$}", "17", True),
    ("\\boxed{\\text{17}}", "17", True),
    ("\\boxed{17.0}", "17", True),
    ("\\boxed{17.5}", "17", False),
    ("\\boxed{x}", "17", False),
    ("\\boxed{3} then \\boxed{17}", "17", True),  # the last box counts
    ("\\boxed{17} then \\boxed{3}", "17", False),
    ("The answer is 17.", "17", True),     # no box: the stated answer (stages/verify/stated.py)
]


@pytest.mark.parametrize("task", ["integer", "addition"])
@pytest.mark.parametrize("response,gold,correct", INTEGER_CASES)
def test_integer_cases(task, response, gold, correct):
    assert verify.check(task, response, gold).correct is correct


def test_integer_extracted_is_the_box_text():
    assert verify.check("addition", "\\boxed{12}", "12").extracted == "12"
    assert verify.check("addition", "no box", "12").extracted == ""


CHOICE_CASES = [
    ("\\boxed{C}", "C", True),
    ("\\boxed{B}", "C", False),
    ("\\boxed{(C)}", "C", True),
    ("\\boxed{\\text{C}}", "C", True),
    ("\\boxed{c}", "C", True),
    ("\\boxed{C) 42 joules}", "C", True),
    ("\\boxed{42}", "C", False),
    ("After all this, the answer is (D).", "D", True),
    ("Answer: B", "B", True),
    ("B", "B", True),
    ("I cannot decide between the options.", "A", False),
    ("", "A", False),
]


@pytest.mark.parametrize("response,gold,correct", CHOICE_CASES)
def test_choice_cases(response, gold, correct):
    assert verify.check("choice", response, gold).correct is correct


def test_choice_extracted_letter():
    assert verify.check("choice", f"{BEGIN_SOLUTION}\\boxed{{(b)}}{END_SOLUTION}", "B").extracted == "B"
    assert verify.check("choice", "no idea", "B").extracted == ""


def test_unknown_task_lists_valid_names():
    with pytest.raises(UserError) as e:
        verify.get_checker("chess")
    for name in ("math", "choice", "integer", "addition"):
        assert name in str(e.value)


def test_bad_gold_is_an_error():
    with pytest.raises(ValueError):
        verify.check_gold("integer", "seven")
    with pytest.raises(ValueError):
        verify.check_gold("choice", "E")
    verify.check_gold("choice", "D")
    verify.check_gold("addition", "123")


def test_gold_from_row():
    assert verify.gold_from_row({"answer": " 5 ", "solution": "\\boxed{6}"}) == "5"
    assert verify.gold_from_row({"answer": None, "solution": "x \\boxed{\\frac{1}{2}}."}) == "\\frac{1}{2}"
    assert verify.gold_from_row({"answer": "", "solution": "no box"}) is None


def test_solution_part():
    assert verify.solution_part(f"think{BEGIN_SOLUTION}body{END_SOLUTION}tail") == "body"
    assert verify.solution_part(f"think{BEGIN_SOLUTION}cut off") == "cut off"
    assert verify.solution_part("plain") == "plain"
