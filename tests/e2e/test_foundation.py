"""End-to-end: `rlt model tiny` and the views on its tokenizer; bad inputs of the model-free commands.

The model-free data commands are tested in tests/unit/commands/test_data_commands.py."""

import json

import pytest

from stages.artifacts.layout import manifest_path
from stages.method.views import TAGS, student_view, teacher_view
from tests.conftest import rlt

CHECKPOINT_FILES = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                    "tokenizer_config.json", "chat_template.jinja", ".rlt"}  # .rlt/manifest.json


def test_tiny_model_files_and_reload(tiny_teacher):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert {p.name for p in tiny_teacher.iterdir()} == CHECKPOINT_FILES
    tok = AutoTokenizer.from_pretrained(tiny_teacher)
    model = AutoModelForCausalLM.from_pretrained(tiny_teacher)
    assert type(tok).__name__ == "Qwen2Tokenizer"
    assert tok.pad_token_id != tok.eos_token_id and tok.eos_token == "<|im_end|>"
    assert model.generation_config.eos_token_id == tok.eos_token_id
    assert 300_000 < sum(p.numel() for p in model.parameters()) < 1_000_000
    for tag in TAGS:  # one non-special token each, kept by skip_special_tokens decoding
        ids = tok(tag, add_special_tokens=False).input_ids
        assert len(ids) == 1 and tok.decode(ids, skip_special_tokens=True) == tag
    assert json.loads(manifest_path(tiny_teacher).read_text())["kind"] == "checkpoint"


def test_teacher_view_prefill_and_offsets(tiny_teacher):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_teacher)
    text = teacher_view(tok, "sys", "What is 1 + 2?", "1 + 2 = 3.", "")
    assert text.endswith("<|begin_of_solution|>1 + 2 = 3.<|end_of_solution|>\n\n<|begin_of_explanation|>\n\n")
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
    assert tok.decode(enc.input_ids) == text
    pieces = [text[a:b] for a, b in enc.offset_mapping]
    assert "".join(pieces) == text  # offsets tile the text exactly
    full = student_view(tok, "sys", "What is 1 + 2?", "1 + 2 = 3.", "é ✓")
    assert "<|begin_of_thought|>\n\né ✓<|end_of_thought|>\n\n<|begin_of_solution|>" in full
    assert tok.decode(tok(full, add_special_tokens=False).input_ids) == full


def test_plain_tags_are_multi_token(tiny_plain):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_plain)
    assert all(len(tok(t, add_special_tokens=False).input_ids) > 1 for t in TAGS)


def test_student_shares_teacher_tokenizer(tiny_teacher, tiny_student):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert AutoTokenizer.from_pretrained(tiny_teacher).get_vocab() == AutoTokenizer.from_pretrained(tiny_student).get_vocab()
    a = AutoModelForCausalLM.from_pretrained(tiny_teacher).model.embed_tokens.weight
    b = AutoModelForCausalLM.from_pretrained(tiny_student).model.embed_tokens.weight
    assert not a.equal(b)


@pytest.mark.parametrize("args, fragment", [
    (["data", "synth", "--out", "{tmp}/o", "bogus=1"], "unknown key 'bogus'"),
    (["data", "synth", "--out", "{tmp}/o", "n=abc"], "'n' expects an integer"),
    (["data", "synth", "--out", "{tmp}/o", "seed"], "malformed override"),
    (["data", "synth", "--out", "{tmp}/o", "--config", "{tmp}/list.yaml"], "must be a mapping"),
    (["data", "synth", "--out", "{tmp}/o", "--bogus"], "No such option"),
    (["data", "synth", "--out", "{tmp}/file.txt"], "is a file"),
    (["data", "import", "{tmp}/missing.parquet", "--out", "{tmp}/o"], "input not found"),
    (["data", "import", "{tmp}/corrupt.parquet", "--out", "{tmp}/o"], "cannot read"),
    (["data", "import", "{tmp}/file.txt", "--out", "{tmp}/o", "--format", "nope"], "unknown --format"),
    (["inspect", "{tmp}"], "not an rlt artifact"),
    (["data", "compact", "{tmp}/partial"], "incomplete"),
    (["model", "tiny", "--out", "{tmp}/o", "--tokenizer", "{tmp}"], "no tokenizer_config.json"),
])
def test_bad_inputs_exit_2_with_one_line(tmp_path, args, fragment):
    (tmp_path / "list.yaml").write_text("- 1\n")
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "corrupt.parquet").write_bytes(b"PAR1 garbage")
    (tmp_path / "partial").mkdir()
    (tmp_path / "partial" / "part-00000.parquet").write_bytes(b"x")
    proc = rlt(*[a.format(tmp=tmp_path) for a in args])
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()
