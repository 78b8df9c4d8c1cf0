"""A model directory naming code of its own (`auto_map`) is refused unless trust_remote_code: transformers
would silently load its built-in class instead of the model shipped."""

from __future__ import annotations

import json
import shutil

import pytest

from stages.errors import UserError
from stages.models.loading import check_remote_code, load_model, load_tokenizer


def _with_auto_map(src, dst, name="config.json"):
    shutil.copytree(src, dst)
    cfg = json.loads((dst / name).read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "modeling_mine.MineForCausalLM"}
    (dst / name).write_text(json.dumps(cfg))
    return dst


@pytest.mark.parametrize("name", ["config.json", "tokenizer_config.json"])
def test_auto_map_is_refused_unless_trusted(tiny_plain, tmp_path, name):
    model = _with_auto_map(tiny_plain, tmp_path / "mine", name)
    for load in (load_tokenizer, lambda p: load_model(p, device="cpu")):
        with pytest.raises(UserError, match=rf"its {name} names code of its own \(auto_map: AutoModelForCausalLM\)"
                                            r", which runs only with --trust-remote-code"):
            load(str(model))
    check_remote_code(str(model), trust_remote_code=True)  # asked for: the loader may run it
    check_remote_code(str(tiny_plain), trust_remote_code=False)  # no auto_map: nothing to refuse


def test_eval_refuses_it_in_one_line_before_generating(tiny_plain, synth_test, tmp_path, capsys):
    from tests.unit.cli.test_did_you_mean import one_line

    model = _with_auto_map(tiny_plain, tmp_path / "mine")
    err = one_line(capsys, "eval", "--model", model, "--data", synth_test, "--out", tmp_path / "ev",
                   "engine.device=cpu")
    assert "names code of its own" in err and not (tmp_path / "ev").exists()
