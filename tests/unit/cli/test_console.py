"""The console: rlt's lines plain and unwrapped, library logs and warnings off unless --verbose, progress displays."""

from __future__ import annotations

import logging
import os
import warnings
from types import SimpleNamespace

import pytest

from rltcli import common


@pytest.fixture
def clean_logging(monkeypatch):
    """Restore the root logger, the warning filters and the environment after each test."""
    for key in (*common.QUIET_ENV, common.VERBOSE_ENV):
        monkeypatch.delenv(key, raising=False)
    root, stages = logging.getLogger(), logging.getLogger("stages")
    saved = (root.level, list(root.handlers), stages.level)
    with warnings.catch_warnings():
        yield
    root.setLevel(saved[0])
    root.handlers[:] = saved[1]
    stages.setLevel(saved[2])


def test_quiet_by_default(clean_logging, capsys):
    common.setup_logging()
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "error" and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"
    logging.getLogger("stages.demo").info("wrote %d rows to %s", 3, "x" * 150)
    logging.getLogger("stages.demo").warning("a problem")
    logging.getLogger("trl.trainer").warning("library chatter")
    warnings.warn("deprecated thing", FutureWarning, stacklevel=1)
    err = capsys.readouterr().err.splitlines()
    assert err == ["wrote 3 rows to " + "x" * 150, "warning: a problem"]  # one line each, never wrapped


def test_verbose_shows_library_logs_and_is_inherited(clean_logging, capsys):
    common.setup_logging(verbose=True)
    assert os.environ[common.VERBOSE_ENV] == "1" and "TRANSFORMERS_VERBOSITY" not in os.environ
    logging.getLogger("trl.trainer").warning("library chatter")
    logging.getLogger("stages.demo").debug("step 3 loss=1.2")
    assert capsys.readouterr().err.splitlines() == ["warning: [trl.trainer] library chatter", "step 3 loss=1.2"]


def test_training_progress_shows_steps_rates_and_the_key_metric(capsys):
    from stages.progress import training_progress

    cb = training_progress("distill (student)", metric="loss")
    state = SimpleNamespace(is_world_process_zero=True, max_steps=4, global_step=1, num_input_tokens_seen=100)
    cb.on_train_begin(None, state, None)  # resumed at step 1
    for step in (2, 3, 4):
        state.global_step, state.num_input_tokens_seen = step, 100 * step
        cb.on_step_end(None, state, None)
        cb.on_log(None, state, None, logs={"loss": 2.0 / step})
    cb.on_train_end(None, state, None)
    err = capsys.readouterr().err
    assert "distill (student)" in err and "4/4" in err and "steps/s" in err and "tok/s" in err and "loss=0.5" in err


def test_training_progress_is_closed_when_training_raises(capsys):
    """Ctrl-C or an error skips on_train_end: the display must still end (and be written once)."""
    from stages.progress import close_training_progress, training_progress

    cb = training_progress("teach", metric="reward")
    state = SimpleNamespace(is_world_process_zero=True, max_steps=10, global_step=0, num_input_tokens_seen=0)
    cb.on_train_begin(None, state, None)
    state.global_step = 3
    cb.on_step_end(None, state, None)
    trainer = SimpleNamespace(callback_handler=SimpleNamespace(callbacks=[object(), cb]))
    close_training_progress(trainer)
    assert "3/10" in capsys.readouterr().err
    close_training_progress(trainer)  # a second close (after on_train_end) is harmless
    assert capsys.readouterr().err == ""


def test_off_a_terminal_progress_prints_a_plain_line_at_a_steady_interval(capsys, monkeypatch):
    """A cluster log shows progress during a long run: one line every RLT_PROGRESS_SECONDS, with rate and ETA."""
    import time

    from stages.progress import progress

    monkeypatch.setenv("RLT_PROGRESS_SECONDS", "0.1")
    with progress(total=10, desc="generate", unit="rows", done=2) as bar:  # resumed: 2 rows were done before
        for _ in range(4):
            time.sleep(0.12)
            bar.advance(rows=2, tokens=50)
        during = capsys.readouterr().err.splitlines()
    after = capsys.readouterr().err.splitlines()
    assert len(during) >= 2, during  # lines came while the run went on, not only at its end
    assert all(line.startswith("generate: ") and "rows/s" in line and "eta " in line for line in during), during
    assert after == [after[0]] and after[0].startswith("generate: 10/10 rows (100 %)") and "took" in after[0]


def test_a_bad_progress_interval_is_one_line(clean_logging, capsys, monkeypatch):
    from tests.unit.cli.test_cli import cli

    monkeypatch.setenv("RLT_PROGRESS_SECONDS", "soon")
    code, _, err = cli(capsys, "data", "synth", "--out", "x", "--print-config")
    assert code == 2 and err.startswith("rlt: error: RLT_PROGRESS_SECONDS must be a number") and err.count("\n") == 1


def test_each_warning_once_and_other_ranks_quiet(clean_logging, capsys, monkeypatch):
    common.setup_logging()
    for _ in range(3):
        logging.getLogger("somelib.download").error("hub error")  # errors are never merged
        logging.getLogger("transformers.models").warning("same warning")
        logging.getLogger("stages.demo").warning("same stage warning")
    err = capsys.readouterr().err.splitlines()
    assert err.count("warning: same stage warning") == 1 and len([e for e in err if "hub error" in e]) == 3
    monkeypatch.setenv("RANK", "1")
    common.setup_logging()
    logging.getLogger("stages.demo").info("rank 1 line")
    logging.getLogger("stages.demo").warning("rank 1 warning")
    assert capsys.readouterr().err == ""
