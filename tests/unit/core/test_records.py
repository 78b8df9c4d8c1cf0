"""Records are strict JSON (a non-finite number is null), and training notes which watched value went non-finite."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from stages import records
from stages.training.stopping import WATCHED, FiniteWatch


def test_non_finite_numbers_are_written_as_null():
    value = {"loss": float("nan"), "grad": [float("inf"), -math.inf, 1.5], "np": np.float32("nan"),
             "ok": np.float64(2.0), "nested": {"t": (float("nan"), 3)}, "text": "NaN", "n": 7}
    text = records.dumps(value)
    back = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert back == {"loss": None, "grad": [None, None, 1.5], "np": None, "ok": 2.0,
                    "nested": {"t": [None, 3]}, "text": "NaN", "n": 7}


def test_manifest_with_a_non_finite_value_is_strict_json(tmp_path):
    from stages.artifacts.layout import manifest_path
    from stages.artifacts.writer import ArtifactWriter
    from stages.commands.data import SynthConfig

    cfg = SynthConfig(out=str(tmp_path / "d"), n=2)
    with ArtifactWriter(cfg.out, "dataset", cfg) as w:
        w.write([{"id": "a", "question": "q", "solution": "s"}])
        w.finish({"train_loss": float("nan"), "tokens": [math.inf]})
    m = json.loads(manifest_path(cfg.out).read_text(), parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert m["train_loss"] is None and m["tokens"] == [None]


class _Trainer:
    """The two trainer methods the watch wraps, returning the values given."""

    def __init__(self, loss, norm):
        self.loss, self.norm = loss, norm

    def training_step(self, *a):
        return torch.tensor(self.loss)

    def _get_grad_norm(self, *a, **kw):
        return self.norm


@pytest.mark.parametrize(("loss", "norm", "rewards", "bad"), [
    (1.0, 2.0, [0.5, -3.0], set()),
    (float("nan"), 2.0, [], {"loss"}),
    (1.0, float("inf"), [], {"grad_norm"}),
    (1.0, torch.tensor(float("nan")), [], {"grad_norm"}),
    (1.0, None, [1.0, float("nan")], {"reward"}),
])
def test_watch_names_what_went_non_finite(loss, norm, rewards, bad):
    trainer = _Trainer(loss, norm)
    pending = list(rewards)
    watch = FiniteWatch(lambda: [pending.pop() for _ in range(len(pending))])
    watch.watch(trainer)
    trainer.training_step(None, None)
    trainer._get_grad_norm(None)
    assert {name for name, b in zip(WATCHED, watch.take()) if b} == bad
    assert not any(watch.take())  # each step starts clean
