"""Messages that say the same thing the same way: progress that ended early says `stopped after`, never
`took`; articles; bool flags never read `--no-no-x`; a file with some rows lacking `id` reads the same in
import and eval; a data file not in UTF-8 is named with its line; eval warns when a student learned
another student system prompt."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import pytest

from rltcli.app import main
from stages import commands
from stages.config import flag_names, leaf_fields, opt
from stages.errors import UserError


def cli(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return e.value.code, out, err


def test_progress_ended_early_says_stopped_not_took(capsys):
    from stages.progress import progress

    with pytest.raises(KeyboardInterrupt), progress(total=10, desc="eval", unit="rows") as bar:
        bar.advance(rows=3)
        raise KeyboardInterrupt
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("eval: 3/10 rows (30 %)") and "stopped after " in line and "took" not in line
    with progress(total=2, desc="eval", unit="rows") as bar:
        bar.advance(rows=2)
    (line,) = capsys.readouterr().err.splitlines()
    assert "took " in line and "stopped" not in line


@pytest.mark.parametrize("stop_at,word", [(4, "stopped after "), (10, "took ")])
def test_training_progress_stopped_before_max_steps_says_so(capsys, stop_at, word):
    from transformers import TrainerState

    from stages.progress import training_progress

    cb, state = training_progress("distill (student)", metric="loss"), TrainerState()
    state.max_steps, state.global_step, state.is_world_process_zero = 10, 0, True
    cb.on_train_begin(None, state, None)
    state.global_step = stop_at
    cb.on_step_end(None, state, None)
    cb.on_train_end(None, state, None)  # a graceful stop ends training too, before max_steps
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"distill (student): {stop_at}/10 steps") and word in line
    assert ("took" in line) == (stop_at == 10)


def test_articles():
    from stages.progress import with_article

    assert [with_article(w) for w in ("eval", "traces", "dataset", "output", "checkpoint")] == \
        ["an eval", "a traces", "a dataset", "an output", "a checkpoint"]


def test_an_artifact_of_the_wrong_kind_reads_with_its_article(tmp_path, capsys):
    from tests.unit.cli.test_did_you_mean import _eval_run

    _eval_run(tmp_path / "ev", ["m"])
    code, _, err = cli(capsys, "data", "decontaminate", tmp_path / "ev", "--against", tmp_path / "ev", "--out",
                       tmp_path / "o")
    assert code == 2 and "is an eval artifact;" in err


def test_no_flag_reads_no_no():
    for name in commands.COMMANDS:
        for key, f, tp in leaf_fields(commands.config_class(name)):
            if f.metadata.get("flag"):
                assert "--no-no-" not in flag_names(key, f, tp)[0], (name, key)
    from stages.commands.distill import DistillConfig

    f = next(g for k, g, _ in leaf_fields(DistillConfig) if k == "no_explanation")
    assert flag_names("no_explanation", f, bool) == ["--no-explanation/--with-explanation"]


def test_rows_lacking_id_read_alike_in_import_and_eval(tmp_path):
    from stages.artifacts.read import read_rows
    from stages.artifacts.schemas import EVAL_REQUIRED
    from stages.commands.data import ImportConfig, import_

    src = tmp_path / "mine.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "a", "question": "1+1?", "answer": "2"}, {"question": "2+2?", "answer": "4"},
        {"id": None, "question": "3+3?", "answer": "6"}]))
    imported = read_rows(import_(ImportConfig(src=str(src), out=str(tmp_path / "imp"))), "dataset",
                         required=EVAL_REQUIRED)
    direct = read_rows(src, "dataset", required=EVAL_REQUIRED)  # what eval reads from the file itself
    assert [r["id"] for r in imported] == [r["id"] for r in direct]
    assert direct[0]["id"] == "a" and all(r["id"] for r in direct) and len({r["id"] for r in direct}) == 3


@pytest.mark.parametrize("suffix,text", [
    (".jsonl", b'{"question": "1+1?", "answer": "2"}\n{"question": "caf\xe9?", "answer": "4"}\n'),
    (".csv", b"question,answer\n1+1?,2\ncaf\xe9?,4\n"),
])
def test_a_data_file_not_in_utf8_is_named_with_its_line(capsys, tmp_path, suffix, text):
    src = tmp_path / f"mine{suffix}"
    src.write_bytes(text)
    for argv in (["data", "import", src, "--out", tmp_path / "imp"],
                 ["eval", "--model", tmp_path / "m", "--data", src, "--out", tmp_path / "ev"]):
        code, _, err = cli(capsys, *argv)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"{src} is not UTF-8 text (line {2 if suffix == '.jsonl' else 3}, byte 0xe9): save it as UTF-8" in err


def test_eval_warns_in_one_line_for_a_student_of_another_prompt(tmp_path, caplog):
    from stages.artifacts.writer import ArtifactWriter
    from stages.commands.evaluate import EvalConfig, warn_other_prompt
    from stages.method.settings import PromptsConfig

    @dataclass
    class Trained:
        out: str = opt("", "out", hash=False)
        role: str = opt("student", "role")
        prompts: PromptsConfig = field(default_factory=lambda: PromptsConfig(student_system="Solve the question."))

    with ArtifactWriter(tmp_path / "student", "checkpoint", Trained()) as w:
        w.finish(rows=0)
    with caplog.at_level(logging.WARNING, logger="stages"):
        warn_other_prompt(EvalConfig(models=[str(tmp_path / "student")]), str(tmp_path / "student"))
        (record,) = caplog.records
        assert "another student system prompt" in record.getMessage() and "'Solve the question.'" in \
            record.getMessage() and "\n" not in record.getMessage()
        caplog.clear()
        same = EvalConfig(models=[str(tmp_path / "student")], prompts=PromptsConfig(student_system="Solve the question."))
        warn_other_prompt(same, str(tmp_path / "student"))
        assert not caplog.records
    with pytest.raises(UserError):
        raise UserError("x")
