"""Grading kinds, one table of (task, gold, response, verdict) per kind (stages/verify/).

Kinds: which answer is graded (the last box opened in the solution part), golds
(every published form parses before generation), numbers (exact vs relative
tolerance), letters (only stated answers). Each row was decided by hand from
the rule, not by running the grader.
"""

from __future__ import annotations

import pytest

from stages import verify
from stages.method.views import BEGIN_SOLUTION, BEGIN_THOUGHT, END_SOLUTION, END_THOUGHT


def sol(text: str, thought: str = "thinking") -> str:
    """A response in the student format."""
    return f"{BEGIN_THOUGHT}\n\n{thought}{END_THOUGHT}\n\n{BEGIN_SOLUTION}{text}{END_SOLUTION}"


WHICH_ANSWER = [
    # inputs once graded wrongly
    ("math", "7", "First attempt gives \\boxed{8}. That is wrong; correcting, the answer is \\boxed{7}.", True),
    ("math", "8", "First attempt gives \\boxed{8}. That is wrong; correcting, the answer is \\boxed{7}.", False),
    ("math", "5", "Maybe \\boxed{5}? No, that drops a case. Redo: the final answer is \\boxed{", False),
    ("math", "5", "Maybe \\boxed{5}? No. The final answer is \\boxed{\\frac{10}{", False),
    ("math", "\\{1,2\\}", "\\boxed{1} and \\boxed{2}", False),  # boxes are never merged into a set
    ("math", "2", "\\boxed{1} and \\boxed{2}", True),
    ("math", "3", sol("so \\boxed{3}", thought="maybe \\boxed{4}"), True),
    ("math", "4", sol("so \\boxed{3}", thought="maybe \\boxed{4}"), False),  # the thought is not graded
    ("math", "4", f"{BEGIN_THOUGHT}\n\nmaybe \\boxed{{4}}, let me check", False),  # cut off in the thought
    ("math", "4", sol("The answer is 4."), True),  # no box: the stated answer (stages/verify/stated.py)
    ("math", "4", "", False),
    ("math", "\\frac{1}{2}", "\\fbox{\\frac{1}{2}}", True),
    ("math", "\\{1,2\\}", "\\boxed{\\{1, 2\\}}", True),  # escaped braces inside a box
    ("integer", "17", "\\boxed{17} then \\boxed{", False),
    ("integer", "17", sol("\\boxed{3} then \\boxed{17}"), True),
]

GOLDS = [
    # MATH-500 golds as published
    ("math", "\\$18.90", "The total is \\boxed{18.90}.", True),
    ("math", "\\$18.90", "\\boxed{\\$18.90}", True),
    ("math", "\\$18.90", "\\boxed{18.91}", False),
    ("math", "\\$36", "\\boxed{36}", True),
    ("math", "\\$32,\\!348", "\\boxed{32348}", True),
    ("math", "\\$32,\\!348", "\\boxed{\\$32,348}", True),
    ("math", "\\$32,\\!348", "\\boxed{32347}", False),
    ("math", "10,\\!080", "\\boxed{10080}", True),
    ("math", "11,\\! 111,\\! 111,\\! 100", "\\boxed{11111111100}", True),
    ("math", "11,\\! 111,\\! 111,\\! 100", "\\boxed{1111111110}", False),
    ("math", "1{,}000", "\\boxed{1000}", True),
    ("math", "5.4 \\text{ cents}", "\\boxed{5.4}", True),
    ("math", "864 \\mbox{ inches}^2", "\\boxed{864}", True),
    ("math", "30^\\circ", "\\boxed{30}", True),
    ("math", "30^\\circ", "\\boxed{60^\\circ}", False),
    ("math", "10\\%", "\\boxed{10}", True),
    ("math", "\\dfrac{13}{6}", "\\boxed{\\frac{13}{6}}", True),
    ("math", "\\frac 59", "\\boxed{\\frac{5}{9}}", True),
    ("math", "\\text{(C)}", "\\boxed{\\text{C}}", True),
    ("math", "\\text{even}", "\\boxed{\\text{odd}}", False),
    ("math", "\\text{Navin}", "\\boxed{\\text{Navin}}", True),
    ("math", "(3,4]", "\\boxed{(3,4]}", True),
    ("math", "(3,4]", "\\boxed{[3,4]}", False),
    ("math", "\\left( 3, \\frac{\\pi}{2} \\right)", "\\boxed{(3, \\frac{\\pi}{2})}", True),
    ("math", "x=5", "\\boxed{5}", True),
    ("math", "3 \\pm 2 \\sqrt{2}", "\\boxed{3 + 2\\sqrt{2}, 3 - 2\\sqrt{2}}", True),
    ("math", "\\begin{pmatrix} -1/3 \\\\ 2/3 \\end{pmatrix}",
     "\\boxed{\\begin{pmatrix} -\\frac{1}{3} \\\\ \\frac{2}{3} \\end{pmatrix}}", True),
    ("math", "6 - 5i", "\\boxed{6+5i}", False),
    ("math", "The answer is $\\boxed{3}$", "\\boxed{3}", True),  # a gold written as a sentence
    # AIME golds
    ("integer", "070", "\\boxed{70}", True),
    ("integer", "70", "\\boxed{070}", True),
    ("integer", "70", "\\boxed{71}", False),
    ("integer", "204", "\\boxed{\\$204}", True),
    # GPQA golds
    ("choice", "(B)", "\\boxed{B}", True),
    ("choice", "\\text{B}", "Answer: B", True),
]

NUMBERS = [
    ("math", "10^{-30}", "\\boxed{10^{-31}}", False),
    ("math", "10^{-30}", "\\boxed{10^{-30}}", True),
    ("math", "10^{-30}", "\\boxed{1.0\\times 10^{-30}}", True),
    ("math", "1.5\\times10^{-30}", "\\boxed{1.6\\times10^{-30}}", False),
    ("math", "1.5\\times10^{-30}", "\\boxed{1.5e-30}", True),
    ("math", "0.0000001", "\\boxed{0.0000002}", False),
    ("math", "2^{100}", "\\boxed{1267650600228229401496703205377}", False),
    ("math", "2^{100}", "\\boxed{1267650600228229401496703205376}", True),
    ("math", "10^{30}", "\\boxed{10^{30}+1}", False),
    ("math", "1.0\\times10^{30}", "\\boxed{1.001\\times10^{30}}", False),
    ("math", "1.0\\times10^{30}", "\\boxed{1.00001\\times10^{30}}", True),  # within 1e-4 relative
    ("math", "5!", "\\boxed{120}", True),
    ("math", "5!", "\\boxed{121}", False),
    ("math", "\\frac{1}{3}", "\\boxed{0.33333}", True),
    ("math", "\\frac{1}{3}", "\\boxed{0.33}", False),
    ("math", "1.5", "\\boxed{\\frac{3}{2}}", True),
    ("math", "0.09", "\\boxed{\\frac{9}{100}}", True),
    ("math", "\\frac{16}{5}", "\\boxed{3.2}", True),
    ("math", "18.90", "\\boxed{18.9}", True),
    ("math", "\\sqrt{8}", "\\boxed{2\\sqrt{2}}", True),
    ("math", "\\sqrt{8}", "\\boxed{2.8284}", True),
    ("math", "\\sqrt{8}", "\\boxed{2.83}", False),
    ("math", "-5", "\\boxed{5}", False),
    ("math", "0", "\\boxed{0.0}", True),
    ("math", "0", "\\boxed{10^{-12}}", False),
    ("math", "50\\%", "\\boxed{0.5}", True),
    ("math", "50\\%", "\\boxed{0.51}", False),
    ("math", "(10^{-30}, 2)", "\\boxed{(10^{-31}, 2)}", False),
    ("math", "\\{10^{-30}, 2\\}", "\\boxed{\\{2, 10^{-30}\\}}", True),
    ("math", "[10^{-9}, 1]", "\\boxed{[10^{-8}, 1]}", False),
    ("math", "x = 10^{-30}", "\\boxed{x = 10^{-31}}", False),
    ("integer", "70", "\\boxed{70.0}", True),
    ("integer", "70", "\\boxed{\\frac{140}{2}}", True),
    ("integer", "70", "\\boxed{70.5}", False),
    ("integer", "204", "\\boxed{x = 204}", True),
    ("integer", "204", "\\boxed{{204}}", True),
    ("integer", "204", "\\boxed{204 \\text{ minutes}}", True),
    ("integer", "204", "\\boxed{x = 205}", False),
]

LETTERS = [
    # inputs once graded wrongly
    ("choice", "B", "I need to look at each option a bit more carefully before deciding.", False),
    ("choice", "A", "I need to look at each option a bit more carefully before deciding.", False),
    ("choice", "C", "The correct answer is **C. The mass dimension is -1.**", True),
    ("choice", "B", "... the answer is B. 3,4-dimethyl... **Note:** Option D is incorrect because ...", True),
    ("choice", "D", "... the answer is B. 3,4-dimethyl... **Note:** Option D is incorrect because ...", False),
    # stated answers
    ("choice", "C", "\\boxed{C}", True),
    ("choice", "C", "\\boxed{(C)}", True),
    ("choice", "C", "\\boxed{\\text{C}}", True),
    ("choice", "C", "\\boxed{\\textbf{(C)} 42 J}", True),
    ("choice", "C", "Answer: C", True),
    ("choice", "C", "**Answer:** (C)", True),
    ("choice", "C", "Final answer: $\\boxed{C}$", True),
    ("choice", "D", "After all this, the answer is (D).", True),
    ("choice", "A", "The answer is: **A**", True),
    ("choice", "B", "So the correct option is B.", True),
    ("choice", "B", "Therefore:\n\n(B)", True),
    ("choice", "B", "(B) 3,4-dimethylhexane, because the chain is longest.", True),
    ("choice", "B", "B", True),
    ("choice", "C", "After checking each one, (C) is the correct answer.", True),
    ("choice", "C", "Both constraints hold only for the third option, hence (C).", True),
    ("choice", "C", "## Final Answer\n\n**C**", True),
    ("choice", "C", "Answer - C", True),
    ("choice", "B", "The answer is B. I considered (D) too, but it fails. (D) does not conserve charge.", True),
    ("choice", "C", "So option C is correct, since the others fail.", True),
    ("choice", "C", "Option C is incorrect; the answer is D.", False),
    ("choice", "D", "Option C is not correct. D is the answer.", True),
    ("choice", "C", "The answer is B. Wait, re-checking the units, the answer is C.", True),
    ("choice", "B", "The answer is B. Wait, re-checking the units, the answer is C.", False),
    # never an article, a letter in a word, or a discussed option
    ("choice", "A", "This is a hard question; let me think about a few cases.", False),
    ("choice", "A", "A careful reader sees the trap.", False),
    ("choice", "C", "Carbon chemistry: Compare Option C with Option D.", False),
    ("choice", "D", "Option D is incorrect because the charge is not conserved.", False),
    ("choice", "B", "The answer is a bit subtle.", False),
    ("choice", "C", "\\boxed{42}", False),  # a box without a letter is an answer, and not C
    ("choice", "C", "The answer is C, I think. Final: \\boxed{", False),  # cut off in the last box
    ("choice", "C", sol("\\boxed{C}", thought="the answer is B"), True),
    ("choice", "B", sol("\\boxed{C}", thought="the answer is B"), False),
]

CASES = WHICH_ANSWER + GOLDS + NUMBERS + LETTERS


def test_at_least_sixty_cases_beyond_the_issue_examples():
    assert len(CASES) >= 60 + 7


@pytest.mark.parametrize("task,gold,response,correct", CASES)
def test_verdict(task, gold, response, correct):
    assert verify.check(task, response, gold).correct is correct


@pytest.mark.parametrize("task,response,extracted", [
    ("math", "First attempt gives \\boxed{8}. That is wrong; correcting, the answer is \\boxed{7}.", "7"),
    ("math", "Maybe \\boxed{5}? No. Redo: the final answer is \\boxed{", ""),
    ("math", sol("\\boxed{\\frac{3}{4}}", thought="\\boxed{9}"), "\\frac{3}{4}"),
    ("integer", "\\boxed{070}", "070"),
    ("choice", "The correct answer is **C. The mass dimension is -1.**", "C"),
    ("choice", "I need to look at each option a bit more carefully before deciding.", ""),
])
def test_extracted_is_what_was_graded(task, response, extracted):
    gold = {"math": "7", "integer": "70", "choice": "C"}[task]
    assert verify.check(task, response, gold).extracted == extracted


@pytest.mark.parametrize("gold", [
    "\\$18.90", "\\$36", "\\$32,\\!348", "10,\\!080", "1{,}000", "\\text{Navin}", "5.4 \\text{ cents}",
    "90^\\circ", "10\\%", "\\dfrac{33}{100}", "\\frac{270}7\\text{ degrees}", "4210_{5}", "x \\in [-2,7]",
    "\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "(-\\infty, 2) \\cup (3, \\infty)", "p - q",
    "y = 2x + 3", "\\{1\\pm\\sqrt{5},-2\\}", "1 \\text{ and } -5", "6 - 5i", "\\text{(C)}"])
def test_published_math_golds_parse(gold):
    verify.check_gold("math", gold)


@pytest.mark.parametrize("task,gold", [
    ("math", "\\frac{1}{"), ("math", "}{"), ("math", ""), ("math", "\\text{}"), ("math", "x=="),
    ("integer", "seventy"), ("integer", "7.5"), ("choice", "E"), ("choice", "AB"), ("choice", "\\frac{1}{2}")])
def test_unreadable_golds_are_refused(task, gold):
    with pytest.raises(ValueError, match="gold answer"):
        verify.check_gold(task, gold)


def test_relative_tolerance_is_documented_value():
    from stages.verify import mathcheck

    assert mathcheck.REL_TOL == 1e-4
    assert "REL_TOL = 1e-4" in mathcheck.__doc__
