"""Answers as models and people write them (issue 26, Grading 1-3), one table per kind.

Each row: (task, gold, response, extracted, correct): `extracted` is the text the
grader shows and grades, decided by hand from the rules in stages/verify/
(stated.py for answers without a box, choice.py for letters, parse_integer for
thousands separators), not by running the grader.
"""

from __future__ import annotations

import threading

import pytest

from stages import verify
from stages.verify import mathcheck
from stages.verify.extract import BEGIN_SOLUTION, BEGIN_THOUGHT, END_SOLUTION, END_THOUGHT


def sol(text: str, thought: str = "thinking") -> str:
    """A response in the student format."""
    return f"{BEGIN_THOUGHT}\n\n{thought}{END_THOUGHT}\n\n{BEGIN_SOLUTION}{text}{END_SOLUTION}"


# ----------------------------------------------------------------------------- 1. answers without a box

ISSUE_UNBOXED = [
    ("math", "16\\pi", "Final Answer: The final answer is $16\\pi$. I hope it is correct.", "16\\pi", True),
    ("math", "45", "Thus, the number on the card that was removed is \\(45\\).", "45", True),
    ("math", "2", "The answer is: 2", "2", True),
    ("math", "45", "the answer is \\(45\\)", "45", True),
]

UNBOXED = [
    # explicit final-answer statements (math-verify's anchored targets)
    ("math", "24", "We have $(2)(12) = 24$.\nFinal Answer: The final answer is $24$. I hope it is correct.", "24", True),
    ("math", "24", "Final Answer: The final answer is $25$. I hope it is correct.", "25", False),
    ("math", "-\\frac{2}{3}", "Final Answer: The final answer is $-\\frac{2}{3}$. I hope it is correct.",
     "-\\frac{2}{3}", True),
    ("math", "[2,5)", "Final Answer: The final answer is $[2,5)$. I hope it is correct.", "[2,5)", True),
    ("math", "10", "The final answer is $10$", "10", True),
    ("math", "10", "The final answer to this problem is 10 apples", "10", True),
    ("math", "7", "**Answer:** $7$", "7", True),
    ("math", "7", "**Final Answer**\n\nThe answer is\n$$7$$", "7", True),
    ("math", "\\frac{3}{4}", "The answer is: \\frac{3}{4}", "\\frac{3}{4}", True),
    ("math", "0.75", "The answer is: 3/4", "3/4", True),
    ("math", "18", "Adding the two cases gives 6 + 12. The answer is 18.", "18", True),
    ("math", "18", "The answer is 17. I checked it twice.", "17", False),
    ("math", "1234", "The answer is 1,234.", "1,234", True),
    ("math", "50\\%", "The answer is 50%.", "50%", True),
    ("math", "\\{1,2\\}", "The answers are $1$ and $2$.", "1, 2", True),
    ("math", "5", "The answer is $5$.\n\nI hope this helps!", "5", True),  # stated first, pleasantry after
    ("math", "5", "The answer is $x = 5$.", "x = 5", True),
    # a later statement wins over an earlier one
    ("math", "9", "At first the answer seemed to be $8$. Rechecking, the answer is $9$.", "9", True),
    # the concluding sentence (the last sentence, finished)
    ("math", "\\frac{1}{2}", "Therefore, the probability is $\\dfrac{1}{2}$, as required.", "\\dfrac{1}{2}", True),
    ("math", "\\frac{1}{2}", "So the probability is \\frac{1}{2}.", "\\frac{1}{2}", True),
    ("math", "5", "Solving gives $x^2 = 25$, and since $x$ is positive, $x = 5$.", "x = 5", True),
    ("math", "45", "We add the remaining cards, so the missing card is \\(45\\).", "45", True),
    ("math", "3", "Counting the arrangements, there are 3 ways.", "3", True),
    ("math", "45", "Thus the total is\n\n\\[ 45 \\]\n", "45", True),  # display math after a blank line
    ("math", "5", "Therefore,\n\\[\nx = 5\n\\]", "x = 5", True),
    ("math", "2\\sqrt{2}", "So the length of the diagonal is $2\\sqrt{2}$ units.", "2\\sqrt{2}", True),
    ("math", "(1,2)", "The point is $(1, 2)$.", "(1, 2)", True),
    ("math", "2", "2", "2", True),  # a solution part that is only its answer
    ("math", "\\frac{1}{2}", "$\\frac{1}{2}$", "\\frac{1}{2}", True),
    ("math", "18.90", "The total is \\$18.90.", "18.90", True),
    ("math", "2", "The answer depends on whether $n$ is even. Therefore $x = 2$.", "x = 2", True),
    ("math", "45", "To answer this we need the sum $1 + 2 + \\dots + n$. Hence the missing card is \\(45\\).",
     "45", True),
    ("math", "45", "The missing card is \\(44\\).", "44", False),
    # not a concluding sentence: more sentences follow, or the last one is unfinished
    ("math", "5", "So $x = 5$. Let me also think about what happens for other values", "", False),
    ("math", "5", "So $x = 5$. Next we look at the case $y$ odd.", "", False),  # mentions, concludes nothing
    ("math", "7", "She answered 12 questions correctly out of $7$.", "", False),
    ("math", "5", "So there are 5 ways", "", False),
    ("math", "5", "$x = 5$\nwhich is what we wanted to show.", "", False),
    ("math", "5", "I am not sure how to continue.", "", False),
    # integer tasks read the same answer
    ("integer", "45", "Thus, the number on the card that was removed is \\(45\\).", "45", True),
    ("integer", "45", "The answer is: 045", "045", True),
    ("addition", "579", "The answer is 579.", "579", True),
    ("addition", "579", "The answer is 578.", "578", False),
    ("integer", "204", "Final Answer: The final answer is $204$. I hope it is correct.", "204", True),
    # in the student format: only the solution part is read
    ("math", "5", sol("Thus $x = 5$."), "x = 5", True),
    ("math", "5", sol("I could not finish.", thought="the answer is 5"), "", False),
]

BOX_WINS = [
    ("math", "6", "The answer is $5$. Final: \\boxed{6}", "6", True),
    ("math", "5", "The answer is $5$. Final: \\boxed{6}", "6", False),
    ("math", "7", "\\boxed{7}\nFinal Answer: The final answer is $8$. I hope it is correct.", "7", True),
    ("math", "8", "\\boxed{7}\nFinal Answer: The final answer is $8$. I hope it is correct.", "7", False),
    ("math", "3", sol("The answer is 4, so \\boxed{3}.", thought="maybe 4"), "3", True),
    ("integer", "17", "The answer is 17. So \\boxed{18}", "18", False),
    # a box in the solution part that is never closed: no answer, whatever the sentence says
    ("math", "5", "The answer is $5$, that is \\boxed{5", "", False),
    ("integer", "17", "The answer is 17. Hence \\boxed{", "", False),
]

CUT_OFF = [
    # a thought never closed
    ("math", "5", f"{BEGIN_THOUGHT}\n\nso the answer is $5$", "", False),
    # a solution opened and never closed: a closed box counts, a sentence does not
    ("math", "5", f"{BEGIN_THOUGHT}t{END_THOUGHT}{BEGIN_SOLUTION}Thus the answer is $5$.", "", False),
    ("math", "5", f"{BEGIN_THOUGHT}t{END_THOUGHT}{BEGIN_SOLUTION}Thus $x = 5$.", "", False),
    ("math", "5", f"{BEGIN_THOUGHT}t{END_THOUGHT}{BEGIN_SOLUTION}Thus \\boxed{{5}} and then", "5", True),
    ("integer", "12", f"{BEGIN_SOLUTION}The answer is 1", "", False),
]

CASES_1 = ISSUE_UNBOXED + UNBOXED + BOX_WINS + CUT_OFF


# ----------------------------------------------------------------------------- 2. letters as people write them

ISSUE_LETTERS = [
    ("choice", "B", "ANSWER: b", "B", True),
    ("choice", "D", "d", "D", True),
    ("choice", "B", "b. 4", "B", True),
    ("choice", "B", "I would pick B — a safe choice.", "B", True),
    ("choice", "B", "选项 (B) $3.3\\mathrm{MeV}$。", "B", True),
]

LETTERS = [
    # English cues, either case
    ("choice", "A", "Answer: a", "A", True),
    ("choice", "C", "My final answer: c", "C", True),
    ("choice", "D", "Final answer: d", "D", True),
    ("choice", "A", "so the answer would be (a).", "A", True),
    ("choice", "B", "After checking, my choice is B.", "B", True),
    ("choice", "D", "I'd go with (d).", "D", True),
    ("choice", "C", "We choose c.", "C", True),
    ("choice", "B", "I'll opt for b, since it conserves charge.", "B", True),
    ("choice", "B", "(b) is the correct answer.", "B", True),
    ("choice", "C", "So, hence (c).", "C", True),
    ("choice", "B", "The answer is **b**", "B", True),
    # a whole reply that is only a letter, an option label opening it
    ("choice", "A", "a", "A", True),
    ("choice", "C", "(c)", "C", True),
    ("choice", "B", "**b**", "B", True),
    ("choice", "C", " c. ", "C", True),
    ("choice", "C", "c) 42 J, because the work is force times distance.", "C", True),
    ("choice", "D", sol("d"), "D", True),
    # other languages
    ("choice", "C", "La bonne réponse est (c).", "C", True),
    ("choice", "A", "Réponse : a", "A", True),
    ("choice", "B", "la respuesta correcta es la B", "B", True),
    ("choice", "D", "Respuesta: d", "D", True),
    ("choice", "C", "A resposta correta é a letra C.", "C", True),
    ("choice", "B", "La risposta corretta è b.", "B", True),
    ("choice", "D", "Die Antwort lautet d.", "D", True),
    ("choice", "C", "Die richtige Antwort ist C.", "C", True),
    ("choice", "B", "Het antwoord is B.", "B", True),
    ("choice", "B", "Ответ: B", "B", True),
    ("choice", "B", "答案是：b", "B", True),
    ("choice", "C", "答案：Ｃ", "C", True),  # full-width letter and colon
    ("choice", "B", "答案为（Ｂ）。", "B", True),
    ("choice", "C", "综上，故选C。", "C", True),
    ("choice", "D", "我选择 D。", "D", True),
    ("choice", "D", "选项B错误，正确答案是D。", "D", True),  # option B called wrong, D stated
    ("choice", "B", "正解は B です。", "B", True),
    ("choice", "C", "정답은 c", "C", True),
    ("choice", "C", "答：C", "C", True),
    ("choice", "B", "答案是B项。", "B", True),
    ("choice", "C", "所以答案选 C", "C", True),
    ("choice", "B", "Je choisis la réponse b.", "B", True),
    ("choice", "B", "Escolho a alternativa b.", "B", True),
    ("choice", "C", "Ich wähle C.", "C", True),
    ("choice", "C", "Cevap: C", "C", True),
    ("choice", "B", "Odpowiedź: b", "B", True),
    ("choice", "D", "The answer, I believe, is D.", "D", True),
    ("choice", "B", "answer is b because the spin is conserved", "B", True),
    # the last statement decides, in any language
    ("choice", "C", "Answer: b. Wait, the units are wrong; the answer is c.", "C", True),
    ("choice", "B", "Answer: b. Wait, the units are wrong; the answer is c.", "C", False),
]

NOT_LETTERS = [
    ("choice", "A", "The answer is a bit subtle.", "", False),
    ("choice", "A", "I think a good idea is to compare the energies first.", "", False),
    ("choice", "A", "I'd pick a safe option.", "", False),
    ("choice", "A", "I choose a different approach here.", "", False),
    ("choice", "A", "Option a is interesting but needs checking.", "", False),
    ("choice", "C", "the answer is c = 3 \\times 10^8 m/s", "", False),  # a symbol in a formula
    ("choice", "B", "The answer is $b^2 - 4ac$.", "", False),
    ("choice", "C", "比较选项C和选项D。", "", False),  # options compared, none stated
    ("choice", "B", "选项B错误。", "", False),  # option B called wrong
    ("choice", "A", "A careful reader sees the trap.", "", False),
    ("choice", "B", "The answer choices are A) 1 and B) 2; let me compute.", "", False),
    ("choice", "B", "the answer is not obvious", "", False),
    ("choice", "D", "Carbon chemistry: Compare Option C with Option D.", "", False),
]

CASES_2 = ISSUE_LETTERS + LETTERS + NOT_LETTERS


# ----------------------------------------------------------------------------- 3. tuples and thousands

ISSUE_TUPLES = [
    ("integer", "12", "\\boxed{1,2}", "1,2", False),
    ("addition", "12", "\\boxed{1,2}", "1,2", False),
    ("integer", "357", "\\boxed{3,5,7}", "3,5,7", False),
    ("addition", "357", "\\boxed{3,5,7}", "3,5,7", False),
]

TUPLES = [
    ("integer", "1234", "\\boxed{1,234}", "1,234", True),
    ("addition", "12345678", "\\boxed{12,345,678}", "12,345,678", True),
    ("integer", "123", "\\boxed{1,23}", "1,23", False),
    ("integer", "1234567", "\\boxed{1234,567}", "1234,567", False),
    ("integer", "12345", "\\boxed{1,2345}", "1,2345", False),
    ("integer", "-1234", "\\boxed{-1,234}", "-1,234", True),
    ("integer", "1234", "\\boxed{1,234.0}", "1,234.0", True),
    ("integer", "1234", "\\boxed{1{,}234}", "1{,}234", True),
    ("integer", "12", "\\boxed{1{,}2}", "1{,}2", False),
    ("integer", "1234", "\\boxed{1\\,234}", "1\\,234", True),
    ("integer", "12", "\\boxed{1\\,2}", "1\\,2", False),
    ("integer", "1234", "\\boxed{1 234}", "1 234", True),
    ("integer", "12", "\\boxed{1 2}", "1 2", False),
    ("integer", "3", "\\boxed{1 2}", "1 2", False),  # a list of numbers is no integer at all
    ("integer", "357", "\\boxed{3, 5, 7}", "3, 5, 7", False),
    ("integer", "5", "\\boxed{3, 5, 7}", "3, 5, 7", False),
    ("addition", "12", "The answer is 1,2.", "1,2", False),
    ("addition", "1234", "The answer is 1,234.", "1,234", True),
    ("integer", "32348", "\\boxed{32,\\!348}", "32,\\!348", True),
    ("integer", "100", "\\boxed{1,00}", "1,00", False),
    ("math", "12", "\\boxed{1,2}", "1,2", False),
    ("math", "1234", "\\boxed{1,234}", "1,234", True),
    ("math", "12345", "\\boxed{12\\,345}", "12\\,345", True),
    ("math", "12345", "\\boxed{12 345}", "12 345", True),
    ("math", "\\$32,\\!348", "\\boxed{32348}", "32348", True),
]

CASES_3 = ISSUE_TUPLES + TUPLES

CASES = CASES_1 + CASES_2 + CASES_3
ISSUE_EXAMPLES = ISSUE_UNBOXED + ISSUE_LETTERS + ISSUE_TUPLES


def test_at_least_forty_cases_beyond_the_issue_examples():
    assert len(CASES) - len(ISSUE_EXAMPLES) >= 40
    for kind in (UNBOXED, BOX_WINS, CUT_OFF, LETTERS, NOT_LETTERS, TUPLES):
        assert len(kind) >= 5


@pytest.mark.parametrize("task,gold,response,extracted,correct", CASES)
def test_extracted_and_verdict(task, gold, response, extracted, correct):
    got = verify.check(task, response, gold)
    assert (got.extracted, got.correct) == (extracted, correct)


@pytest.mark.parametrize("task,gold,response,extracted,correct", UNBOXED)
def test_extracted_is_what_was_graded(task, gold, response, extracted, correct):
    """Grading the extracted text as a box gives the same verdict: it is exactly what was graded."""
    if extracted:
        assert verify.check(task, f"\\boxed{{{extracted}}}", gold).correct is correct


@pytest.mark.parametrize("task,gold", [("math", "5"), ("integer", "5"), ("addition", "5")])
def test_truncated_response_has_no_stated_answer(task, gold):
    stated = "Thus, the answer is $5$."
    assert verify.check(task, stated, gold).correct
    assert verify.check(task, stated, gold, truncated=True) == verify.Check(extracted="", correct=False)
    # a closed box is a finished answer even in a response that hit the token limit
    assert verify.check(task, "\\boxed{5} and then we", gold, truncated=True).correct


def test_final_answer_rules():
    assert verify.final_answer("so \\boxed{3}. The answer is 4.") == "3"
    assert verify.final_answer("so \\boxed{3} then \\boxed{") is None
    assert verify.final_answer("The answer is 4.") == "4"
    assert verify.final_answer("The answer is 4.", truncated=True) is None
    assert verify.final_answer(f"{BEGIN_SOLUTION}The answer is 4.") is None
    assert verify.final_answer("") is None


def test_stated_answers_need_the_main_thread():
    """final_answer runs where it is called (math-verify's alarm needs the main thread); check runs
    it in the grading process, so a thread may grade."""
    errors, got = [], []

    def run():
        got.append(verify.check("integer", "The answer is 17.", "17"))
        try:
            verify.final_answer("The answer is 17.")
        except RuntimeError as e:
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert got == [verify.Check(extracted="17", correct=True)]
    assert errors and "signal.alarm" in str(errors[0])


@pytest.mark.parametrize("text,value", [
    ("1,234", 1234), ("12,345,678", 12345678), ("1{,}234", 1234), ("1\\,234", 1234), ("1 234", 1234),
    ("-1,234", -1234), ("033", 33), ("1,2", None), ("3,5,7", None), ("1,23", None), ("1234,567", None),
    ("12,34,567", None), ("1,234 567", None), ("1,", None),
    # LaTeX spaces separate thousands in the same shape only
    ("1\\ 234", 1234), ("1~234", 1234), ("1\\;234", 1234), ("1\\:234", 1234), ("12\\thinspace 345", 12345),
    ("1~234~567", 1234567), ("1~2", None), ("1\\ 23", None), ("1~2345", None)])
def test_parse_integer_thousands_shape(text, value):
    assert verify.parse_integer(text) == value


@pytest.mark.parametrize("text,normalized", [
    ("32,\\!348", "32348"), ("11,\\! 111,\\! 111,\\! 100", "11111111100"), ("12\\,345", "12345"),
    ("1\\,2", "1\\,2"), ("1,\\!2", "1,2"), ("x^2 100", "x^2 100"),
    ("1\\ 234", "1234"), ("1~234", "1234"), ("10\\;000\\;000", "10000000"), ("1~2", "1~2"), ("x~100", "x~100")])
def test_math_normalize_thousands_shape(text, normalized):
    assert mathcheck.normalize(text) == normalized


@pytest.mark.parametrize("task", ["integer", "math", "addition"])
@pytest.mark.parametrize("answer", ["1\\ 234", "1~234", "1\\;234", "\\text{1\\ 234}", "$1~234$"])
def test_latex_spaces_between_thousands_are_graded_as_the_number(task, answer):
    assert verify.check(task, f"So the total is $\\boxed{{{answer}}}$.", "1234").correct
    assert verify.check(task, f"So the total is $\\boxed{{{answer}}}$.", "1\\ 234").correct  # a gold so written too


def test_grader_version_changed():
    assert verify.GRADER_VERSION == "7"
