"""One decode rule: tags survive whether or not the tokenizer flags them special (stages/method/views.py).

A copy of the tiny teacher whose tokenizer flags the six tags as special tokens
(same weights, same ids; real tokenizers can be configured so) must give the
same explanations, end tags and rows as the original, on every engine path
that runs on a CPU here (hf generate, the teach reward's decoding).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stages.artifacts.read import read_rows
from stages.method import views as formats

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def special_teacher(tiny_teacher, tmp_path_factory) -> Path:
    """tiny_teacher with the six tags flagged special in its tokenizer files."""
    path = tmp_path_factory.mktemp("special") / "teacher"
    shutil.copytree(tiny_teacher, path)
    tok_file = path / "tokenizer.json"
    data = json.loads(tok_file.read_text())
    flagged = [a for a in data["added_tokens"] if a["content"] in formats.TAGS]
    assert len(flagged) == len(formats.TAGS)
    for a in flagged:
        a["special"] = True
    tok_file.write_text(json.dumps(data))
    cfg_file = path / "tokenizer_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["extra_special_tokens"] = [*cfg.get("extra_special_tokens", []), *formats.TAGS]
    cfg_file.write_text(json.dumps(cfg))
    return path


def _tok(path):
    from stages.models.loading import load_tokenizer

    return load_tokenizer(str(path))


def test_the_copy_really_flags_the_tags(special_teacher, tiny_teacher):
    text = f"{formats.BEGIN_EXPLANATION}\n\n1 + 2 = 3{formats.END_EXPLANATION}"
    plain, special = _tok(tiny_teacher), _tok(special_teacher)
    ids = plain(text, add_special_tokens=False)["input_ids"]
    assert special(text, add_special_tokens=False)["input_ids"] == ids
    assert formats.END_EXPLANATION not in special.decode(ids, skip_special_tokens=True)  # what went wrong
    eos = [special.eos_token_id, special.pad_token_id]
    for tok in (plain, special):
        assert formats.decode_keeping_tags(tok, ids + eos) == text


def test_teach_reward_decodes_with_the_rule(special_teacher):
    from stages.commands.teach import RLTRewardFunc

    tok = _tok(special_teacher)
    text = f"carry the one{formats.END_EXPLANATION}"
    ids = tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id, tok.pad_token_id]
    assert RLTRewardFunc(scorer=None, tokenizer=tok).completion_text(ids) == text


def _generate(teacher, data, out):
    from stages.commands.generate import GenerateConfig, run
    from stages.config import resolve

    cfg = resolve(GenerateConfig, options={"teacher": str(teacher), "data": str(data), "out": str(out),
                                           "limit": 8, "num_generations": 4, "temperature": 1.0, "max_new_tokens": 48,
                                           "seed": 3, "engine": {"device": "cpu"}})
    return sorted(read_rows(run(cfg), "traces"), key=lambda r: (r["id"], r["sample"]))


def test_hf_generate_keeps_special_flagged_end_tags(special_teacher, tiny_teacher, synth_train, tmp_path):
    want = _generate(tiny_teacher, synth_train, tmp_path / "plain")
    got = _generate(special_teacher, synth_train, tmp_path / "special")
    assert sum(r["format_ok"] for r in want) > 0  # the sampled teacher does end some explanations
    keys = ("id", "sample", "explanation", "format_ok", "truncated", "text")
    assert [{k: r[k] for k in keys} for r in got] == [{k: r[k] for k in keys} for r in want]
