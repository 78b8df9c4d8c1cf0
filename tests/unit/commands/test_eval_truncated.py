"""Eval passes the engine's cut-off to the checker (stages/commands/evaluate.py): a response cut by
max_new_tokens has no answer but a closed box, whether it is tagged or not, when generated and when
re-graded from its saved `truncated` column."""

from __future__ import annotations

import pytest

from stages.commands import evaluate
from stages.engines.base import Completion

ITEM = {"id": "q", "question": "What is 2 + 2?", "answer": "4", "task": "math", "source": "math500"}

# (response, finished, correct)
CASES = [
    ("The answer is 4.", True, True),            # untagged, stated, finished: an answer
    ("The answer is 4.", False, False),          # untagged, stated, cut off: none
    ("So the answer is $4$ and", False, False),
    ("Final Answer: The final answer is $4$.", False, False),
    ("Thus \\boxed{4}", False, True),            # a closed box counts in a cut-off response
    ("Thus \\boxed{4} and then", False, True),
    ("Thus \\boxed{4", False, False),            # an unclosed box: none
    ("Thus \\boxed{4}", True, True),
]


@pytest.mark.parametrize("task,answer", [("math", "4"), ("integer", "4"), ("addition", "4")])
@pytest.mark.parametrize("response,finished,correct", CASES)
def test_cut_off_rule_holds_for_untagged_responses(task, answer, response, finished, correct):
    item = {**ITEM, "task": task, "answer": answer}
    row = evaluate.eval_row(item, "m", 0, Completion(text=response, tokens=5, finished=finished), timeout=5)
    assert row["truncated"] is (not finished)
    assert row["correct"] is correct
    if not correct:
        assert row["extracted"] == ""
    regraded = evaluate.grade({k: v for k, v in row.items() if k not in ("extracted", "correct")}, 5)
    assert (regraded["correct"], regraded["extracted"]) == (row["correct"], row["extracted"])
