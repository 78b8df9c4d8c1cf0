"""The views are the exact strings of docs/method.md whatever the chat template does with whitespace.

Each template below is a real-world shape written for this test; the expected strings are written
by hand from the template (not by `apply_chat_template`), then compared as strings with the teacher
view, the student view, the warm-up split, the prompts `rlt generate` sends its engine, the traces
it writes, and the views the reward renders. A template that rewrites message content is refused
in one line before any model loads.
"""

from __future__ import annotations

import json
import shutil

import pytest

from stages.method import views
from tests.conftest import ONE_THREAD, rlt

BT, ET, BS, ES = views.BEGIN_THOUGHT, views.END_THOUGHT, views.BEGIN_SOLUTION, views.END_SOLUTION
BE, EE = views.BEGIN_EXPLANATION, views.END_EXPLANATION

# Qwen2.5 / ChatML: content verbatim between the role line and <|im_end|>.
CHATML = ("{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")
# Llama 3: every message's content trimmed (what made continue_final_message drop the prefill's "\n\n").
LLAMA3 = ("{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + "
          "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}"
          "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}")
# Jinja whitespace control around every tag, its own separators, and content trimmed on the left too.
CONTROL = """{%- for message in messages -%}
    {%- if message['role'] == 'system' -%}
        [SYS] {{- message['content'] | trim -}} [/SYS]
    {%- else -%}
        {{- '\\n### ' + message['role'] | upper + ':\\n' -}}
        {{- message['content'] | trim -}}
        {{- '\\n### END\\n' -}}
    {%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '\\n### ASSISTANT:\\n' -}}{%- endif -%}"""

TEMPLATES = {"chatml": CHATML, "llama3_trim": LLAMA3, "whitespace_control": CONTROL}


def expected(name: str, system: str, user: str, assistant: str, closed: bool) -> str:
    """The rendered chat, written by hand for each template: closed = the whole conversation,
    else up to the end of the assistant text."""
    if name == "chatml":
        head = f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
        tail = "<|im_end|>\n"
    elif name == "llama3_trim":
        head = (f"<|start_header_id|>system<|end_header_id|>\n\n{system.strip()}<|eot_id|>"
                f"<|start_header_id|>user<|end_header_id|>\n\n{user.strip()}<|eot_id|>"
                "<|start_header_id|>assistant<|end_header_id|>\n\n")
        tail = "<|eot_id|>"
    else:
        head = f"[SYS]{system.strip()}[/SYS]\n### USER:\n{user.strip()}\n### END\n\n### ASSISTANT:\n"
        tail = "\n### END\n"
    return head + assistant + (tail if closed else "")


SYSTEM, STUDENT_SYSTEM = "Explain the solution.", "Solve the question."
Q, SOL = "What is 17 + 25?  ", "17 + 25 = 42. The answer is \\boxed{42}."
EXPL = "ones: 7 + 5 = 12, write 2 carry 1.\ntens: 1 + 2 + 1 = 4.\n\n"  # ends in whitespace on purpose


@pytest.fixture(scope="module", params=sorted(TEMPLATES))
def templated(request, tiny_teacher, tmp_path_factory):
    """(template name, a copy of the tiny teacher whose chat template is that one)."""
    name = request.param
    out = tmp_path_factory.mktemp("tmpl") / name
    shutil.copytree(tiny_teacher, out)
    (out / "chat_template.jinja").write_text(TEMPLATES[name])
    return name, out


def _tok(path):
    from stages.models.loading import load_tokenizer

    return load_tokenizer(str(path))


def test_views_and_warmup_split_are_the_exact_strings(templated):
    name, path = templated
    tok = _tok(path)
    prefill = f"{BS}{SOL}{ES}\n\n{BE}\n\n"
    assert views.teacher_view(tok, SYSTEM, Q, SOL) == expected(name, SYSTEM, Q, prefill, closed=False)
    assert views.teacher_view(tok, SYSTEM, Q, SOL, EXPL) == expected(name, SYSTEM, Q, prefill + EXPL, closed=False)
    student = f"{BT}\n\n{EXPL}{ET}\n\n{BS}{SOL}{ES}"
    assert views.student_view(tok, STUDENT_SYSTEM, Q, SOL, EXPL) == expected(name, STUDENT_SYSTEM, Q, student, True)
    prompt, completion = views.teacher_example(tok, SYSTEM, Q, SOL, EXPL)
    assert prompt == expected(name, SYSTEM, Q, prefill, closed=False)  # the warm-up prompt ends with "\n\n"
    assert prompt + completion == expected(name, SYSTEM, Q, prefill + EXPL + EE, closed=True)
    assert completion.startswith(EXPL + EE)  # the target is the explanation, not "\n\n" + explanation
    views.check_template(tok, str(path))


def test_the_reward_renders_the_views_the_teacher_sampled_from(templated):
    from stages.method.reward import _texts, render_batch
    from stages.method.settings import PromptsConfig

    name, path = templated
    tok, prompts = _tok(path), PromptsConfig(teacher_system=SYSTEM, student_system=STUDENT_SYSTEM)
    rows = [{"question": Q, "solution": SOL, "completion": EXPL + EE + " after"},
            {"question": Q, "solution": SOL, "explanation": "x"}]
    for row, expl in zip(rows, (EXPL, "x")):
        x = _texts(tok, tok, prompts, row)
        prefill = f"{BS}{SOL}{ES}\n\n{BE}\n\n"
        assert x.teacher == expected(name, SYSTEM, Q, prefill + expl + EE, closed=False)
        assert x.student == expected(name, STUDENT_SYSTEM, Q, f"{BT}\n\n{expl}{ET}\n\n{BS}{SOL}{ES}", closed=True)
        assert x.explanation == expl
    assert all(v.aligned and v.n_expl > 0 for v in render_batch(tok, tok, prompts, rows))


def test_generate_prompts_the_exact_view_and_writes_exact_traces(templated, synth_train, tmp_path, monkeypatch):
    from stages.artifacts.read import read_rows
    from stages.commands import generate, make_config
    from stages.engines.hf import HFEngine

    name, path = templated
    seen: list[str] = []
    real = HFEngine.generate

    def spy(self, prompts, **kw):
        seen.extend(prompts)
        return real(self, prompts, **kw)

    monkeypatch.setattr(HFEngine, "generate", spy)
    out = tmp_path / "traces"
    cfg = make_config("generate", options={"teacher": str(path), "data": str(synth_train), "out": str(out),
                                           "limit": 3, "max_new_tokens": 6, "temperature": 0.0},
                      overrides=[f"prompts.teacher_system={SYSTEM}", f"prompts.student_system={STUDENT_SYSTEM}",
                                 "engine.device=cpu"])
    generate.run(cfg)
    data = {r["id"]: r for r in read_rows(str(synth_train), "dataset")}
    traces = read_rows(str(out), "traces")
    assert len(traces) == 3 and len(seen) == 3
    for t in traces:
        q, s = data[t["id"]]["question"], data[t["id"]]["solution"]
        assert expected(name, SYSTEM, q, f"{BS}{s}{ES}\n\n{BE}\n\n", closed=False) in seen
        assert t["text"] == expected(name, STUDENT_SYSTEM, q, f"{BT}\n\n{t['explanation']}{ET}\n\n{BS}{s}{ES}", True)


def test_a_template_that_rewrites_content_is_refused_in_one_line(tiny_teacher, synth_train, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_teacher, bad)
    (bad / "chat_template.jinja").write_text(
        "{%- for message in messages %}{{ message['role'] }}: {{ message['content'] | replace('\\n', ' ') }}\n"
        "{%- endfor %}")
    out = tmp_path / "out"
    proc = rlt("generate", "--teacher", bad, "--data", synth_train, "--out", out, "--limit", 2, env=ONE_THREAD)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("rlt: error: ") and "verbatim" in lines[0] and str(bad) in lines[0]
    assert not out.exists()


def test_a_template_that_cannot_render_a_system_turn_is_refused(tiny_teacher):
    from stages.errors import UserError

    tok = _tok(tiny_teacher)
    tok.chat_template = ("{%- for message in messages %}{%- if message['role'] == 'system' %}"
                         "{{ raise_exception('System role not supported') }}{%- endif %}{{ message['content'] }}"
                         "{%- endfor %}")
    with pytest.raises(UserError, match="System role not supported"):
        views.check_template(tok, "gemma-like")
    assert json.dumps(TEMPLATES)  # the shapes above are plain strings (written into model directories)
