"""The teacher and student views (docs/method.md "Formats"): exact strings and rendering.

Tags are found in text, never by a single token id, so this works both with the
tiny tokenizer (each tag one added, non-special token) and with real tokenizers
(each tag several plain-text tokens).

The views hold the exact strings of docs/method.md whatever the chat template
does with whitespace: the assistant text is rendered with a non-whitespace
sentinel after it, so a template that trims content (`{{ content | trim }}`,
Llama 3) or strips around its tags (`{%- -%}`) cannot eat the prefill's trailing
`\n\n` (transformers' `continue_final_message` then falls back to
`rendered.rstrip()`, huggingface/transformers#35433); the open view is cut right
after the assistant text. A template that does not render the assistant text
verbatim is refused in one line (UserError).
"""

from __future__ import annotations

from stages.errors import UserError

BEGIN_THOUGHT, END_THOUGHT = "<|begin_of_thought|>", "<|end_of_thought|>"
BEGIN_SOLUTION, END_SOLUTION = "<|begin_of_solution|>", "<|end_of_solution|>"
BEGIN_EXPLANATION, END_EXPLANATION = "<|begin_of_explanation|>", "<|end_of_explanation|>"
TAGS = (BEGIN_THOUGHT, END_THOUGHT, BEGIN_SOLUTION, END_SOLUTION, BEGIN_EXPLANATION, END_EXPLANATION)


def teacher_prefill(solution: str) -> str:
    """Assistant prefix of the teacher view; the teacher continues after it."""
    return f"{BEGIN_SOLUTION}{solution}{END_SOLUTION}\n\n{BEGIN_EXPLANATION}\n\n"


def student_assistant(explanation: str, solution: str) -> str:
    """Assistant turn of the student view (the Bespoke-Stratos layout)."""
    return f"{BEGIN_THOUGHT}\n\n{explanation}{END_THOUGHT}\n\n{BEGIN_SOLUTION}{solution}{END_SOLUTION}"


# ----------------------------------------------------------------------------- decoding (one rule)


def special_ids_except_tags(tok) -> set[int]:
    """Ids of the tokenizer's special tokens (eos, pad, chat markers...) other than the six tags."""
    special = set(getattr(tok, "all_special_ids", []) or [])
    special |= {i for i, t in (getattr(tok, "added_tokens_decoder", None) or {}).items()
                if getattr(t, "special", False)}
    tag_ids = {i for i in (tok.convert_tokens_to_ids(t) for t in TAGS) if isinstance(i, int)}
    unk = getattr(tok, "unk_token_id", None)
    return special - (tag_ids - {unk})


def decode_keeping_tags(tok, ids, drop: set[int] | None = None) -> str:
    """Generated token ids -> text: the six tags survive, every other special token is dropped.

    The one decode rule of every engine and stage (generate, eval, teach): it gives the
    same text whether the tokenizer stores the tags as plain text, as non-special added
    tokens, or flags them special (where `skip_special_tokens=True` would drop them and
    every reward would lose its end tag). `drop` = `special_ids_except_tags(tok)`, computed
    once by callers that decode many completions.
    """
    drop = special_ids_except_tags(tok) if drop is None else drop
    return tok.decode([int(i) for i in ids if int(i) not in drop], skip_special_tokens=False)


_warned_missing_tags: set[str] = set()


def warn_if_tags_dropped(text: str, finish_reason: str | None, stop: list[str] | None, log) -> bool:
    """For servers: warn ONCE per process when a completion ended with finish_reason 'stop' but holds
    none of the stop tags (the server likely dropped them as special tokens). Returns whether it looks so."""
    tags = [s for s in (stop or []) if s in TAGS]
    dropped = finish_reason == "stop" and bool(tags) and not any(t in text for t in tags)
    key = ",".join(tags)
    if dropped and key not in _warned_missing_tags:
        _warned_missing_tags.add(key)
        log.warning("the server ended a completion (finish_reason=stop) without %s: it may drop special "
                    "tokens; serve with skip_special_tokens=false so the tags survive", " / ".join(tags))
    return dropped


def split_completion(completion: str) -> tuple[str, bool]:
    """Teacher completion -> (explanation, has end tag). Text after the end tag is dropped."""
    head, sep, _ = completion.partition(END_EXPLANATION)
    return head, bool(sep)


_OPEN = "<|rlt-open-turn|>"  # follows the assistant text while rendering: no template trims it away


def _template(tok, messages: list[dict], **kw) -> str:
    if not getattr(tok, "chat_template", None):
        raise UserError(f"tokenizer {getattr(tok, 'name_or_path', '')!r} has no chat template")
    try:
        return tok.apply_chat_template(messages, tokenize=False, **kw)
    except Exception as e:  # the template's own raise_exception (jinja2.TemplateError) or a malformed template
        if not (type(e).__module__.startswith("jinja2") or isinstance(e, ValueError)):
            raise
        name = getattr(tok, "name_or_path", "") or "the tokenizer"
        raise UserError(f"the chat template of {name} cannot render a system, user, assistant chat: "
                        f"{str(e).splitlines()[0][:200]}") from None


def _verbatim_error(tok) -> UserError:
    return UserError(f"the chat template of {getattr(tok, 'name_or_path', '') or 'the tokenizer'} does not render "
                     "the assistant text verbatim (it rewrites message content); the views need it as is")


def _render_open(tok, messages: list[dict]) -> str:
    """The chat up to and including the last (assistant) message's text, exactly: the model continues it."""
    text = messages[-1]["content"]
    rendered = _template(tok, [*messages[:-1], {**messages[-1], "content": text + _OPEN}])
    at = rendered.rfind(text + _OPEN)
    if at < 0:
        raise _verbatim_error(tok)
    return rendered[:at + len(text)]


def _render_closed(tok, messages: list[dict]) -> str:
    """The whole chat; its last (assistant) message's text must appear in it verbatim."""
    rendered = _template(tok, messages)
    if messages[-1]["content"] not in rendered:
        raise _verbatim_error(tok)
    return rendered


def check_template(tok, name: str = "") -> None:
    """Refuse, before any model loads, a chat template that cannot render the views exactly (UserError).
    Renders both views and the warm-up split of a probe row whose texts end in whitespace."""
    try:
        teacher_example(tok, "s", "q", "a\n\n", "e\n\n")
        student_example(tok, "s", "q", "a\n\n", "e\n\n")
    except UserError as e:
        raise UserError(f"{name}: {e}" if name and name not in str(e) else str(e)) from None


def _chat(system: str, question: str, assistant: str | None = None) -> list[dict]:
    msgs = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    if assistant is not None:
        msgs.append({"role": "assistant", "content": assistant})
    return msgs


def teacher_view(tok, system: str, question: str, solution: str, explanation: str = "") -> str:
    """Rendered teacher view: chat up to the prefill, followed by `explanation`."""
    return _render_open(tok, _chat(system, question, teacher_prefill(solution) + explanation))


def student_view(tok, system: str, question: str, solution: str, explanation: str) -> str:
    """Rendered student view: the whole chat with the student assistant turn."""
    return _render_closed(tok, _chat(system, question, student_assistant(explanation, solution)))


def student_prompt(tok, system: str, question: str) -> str:
    """What a student sees before answering (eval and distill prompts)."""
    return _template(tok, _chat(system, question), add_generation_prompt=True)


def split_prompt_completion(full: str, prompt: str) -> tuple[str, str]:
    """(prompt, completion) where completion is what `full` adds after `prompt`."""
    if not full.startswith(prompt):
        raise UserError("the chat template renders the prompt differently inside the full "
                        "conversation; cannot separate prompt and completion")
    return prompt, full[len(prompt):]


def student_example(tok, system: str, question: str, solution: str, explanation: str | None) -> tuple[str, str]:
    """Student SFT example as (prompt, completion) text; `explanation=None` = solution only."""
    if explanation is None:
        full = _render_closed(tok, _chat(system, question, f"{BEGIN_SOLUTION}{solution}{END_SOLUTION}"))
    else:
        full = student_view(tok, system, question, solution, explanation)
    return split_prompt_completion(full, student_prompt(tok, system, question))


def teacher_example(tok, system: str, question: str, solution: str, explanation: str) -> tuple[str, str]:
    """Teacher warm-up example: prompt ends with the prefill; completion = explanation + end tag."""
    full = _render_closed(tok, _chat(system, question, teacher_prefill(solution) + explanation + END_EXPLANATION))
    return split_prompt_completion(full, teacher_view(tok, system, question, solution))


def parse_stratos(value: str) -> tuple[str, str] | None:
    """Assistant value of the Bespoke-Stratos layout -> (reasoning_trace, solution), or None."""
    try:
        t0 = value.index(BEGIN_THOUGHT) + len(BEGIN_THOUGHT)
        t1 = value.index(END_THOUGHT, t0)
        s0 = value.index(BEGIN_SOLUTION, t1) + len(BEGIN_SOLUTION)
        s1 = value.index(END_SOLUTION, s0)
    except ValueError:
        return None
    return value[t0:t1].strip("\n"), value[s0:s1].strip()
