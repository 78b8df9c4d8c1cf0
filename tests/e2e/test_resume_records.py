"""Records that do not depend on a resume: a resumed run's manifest and metrics equal an uninterrupted one's.

Save and logging intervals are chosen not to divide each other (transformers' running loss is not
in its checkpoints, so a resumed run used to average only the steps after the resume). `train_loss`
is also checked against an independent computation: the mean of the per-step losses of a run that
logs every step.
"""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from stages.artifacts.layout import manifest_path, metrics_path
from stages.commands import make_config

TIMING = {"tokens_per_s", "seconds_per_step", "train_seconds", "created", "seconds", "finished", "started",
          "timings", "resumed_from", "train_runtime", "train_tokens_per_second"}


def _interrupt_at(step: int):
    from transformers import TrainerCallback

    class Interrupt(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == step:
                raise KeyboardInterrupt

    return Interrupt()


def _rows(out) -> list[dict]:
    return [{k: v for k, v in json.loads(x).items() if k not in TIMING}
            for x in metrics_path(out).read_text().splitlines()]


def _weights(out) -> dict:
    return load_file(str(out / "model.safetensors"))


def _same_weights(a, b) -> bool:
    import torch

    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


# ----------------------------------------------------------------------------- distill


def _distill_cfg(model, data, out, **kw):
    options = {"model": str(model), "data": str(data), "out": str(out), "device": "cpu", "batch_size": 4,
               "max_steps": 7, "save_steps": 4, "logging_steps": 3, "lr": 3e-3, **kw}
    return make_config("distill", options=options)


def test_distill_manifest_and_metrics_do_not_depend_on_a_resume(tiny_teacher, synth_train, tmp_path, one_thread):
    from stages.commands import distill

    whole, resumed, every = tmp_path / "whole", tmp_path / "resumed", tmp_path / "every"
    distill.run(_distill_cfg(tiny_teacher, synth_train, whole))
    with pytest.raises(KeyboardInterrupt):
        distill.run(_distill_cfg(tiny_teacher, synth_train, resumed), callbacks=(_interrupt_at(6),))
    assert not manifest_path(resumed).exists()
    distill.run(_distill_cfg(tiny_teacher, synth_train, resumed))
    a, b = (json.loads(manifest_path(p).read_text()) for p in (whole, resumed))
    assert b["resumed_from"] == "checkpoint-4" and a["resumed_from"] is None
    assert _same_weights(whole, resumed)
    for key in ("train_loss", "global_step", "tokens_seen", "train_rows", "rows_per_step"):
        assert a[key] == b[key], key
    assert _rows(whole) == _rows(resumed)
    assert [r["step"] for r in _rows(whole) if "loss" in r] == [3, 4, 6, 7]  # every save and the last step

    distill.run(_distill_cfg(tiny_teacher, synth_train, every, logging_steps=1))
    per_step = [r["loss"] for r in _rows(every) if "loss" in r]
    assert len(per_step) == 7 and a["train_loss"] == pytest.approx(sum(per_step) / 7, rel=1e-6)


# ----------------------------------------------------------------------------- teach


TEACH = ["prompts_per_step=2", "num_generations=2", "max_new_tokens=12", "reward_batch_size=8", "save_steps=2",
         "logging_steps=3", "lr=1e-3"]


def _teach_cfg(teacher, student, data, out):
    return make_config("teach", options={"teacher": str(teacher), "student": str(student), "data": str(data),
                                         "out": str(out), "device": "cpu", "max_steps": 5}, overrides=TEACH)


def test_teach_manifest_and_metrics_do_not_depend_on_a_resume(tiny_teacher, tiny_student, synth_train, tmp_path,
                                                              monkeypatch, one_thread):
    from stages.commands import teach

    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    teach.run(_teach_cfg(tiny_teacher, tiny_student, synth_train, whole))
    real = teach.make_trainer

    def interrupted(*a, **kw):
        trainer, fn = real(*a, **kw)
        trainer.add_callback(_interrupt_at(3))
        return trainer, fn

    monkeypatch.setattr(teach, "make_trainer", interrupted)
    with pytest.raises(KeyboardInterrupt):
        teach.run(_teach_cfg(tiny_teacher, tiny_student, synth_train, resumed))
    monkeypatch.setattr(teach, "make_trainer", real)
    teach.run(_teach_cfg(tiny_teacher, tiny_student, synth_train, resumed))
    a, b = (json.loads(manifest_path(p).read_text())["training"] for p in (whole, resumed))
    assert b["resumed_from"] and not a["resumed_from"]
    assert _same_weights(whole, resumed)
    for key in ("train_loss", "global_step", "reward_first_fifth", "reward_last_fifth", "metric_rows"):
        assert a[key] == b[key], key
    rows = _rows(whole)
    assert rows == _rows(resumed) and [r["step"] for r in rows] == [2, 3, 4, 5]
    assert all({"empty", "misaligned", "untagged", "unscorable"} <= set(r) for r in rows)  # logged per step
    steps = [r["step"] for r in rows]
    want = sum(r["loss"] * (s - p) for r, s, p in zip(rows, steps, [0, *steps[:-1]])) / steps[-1]
    assert a["train_loss"] == pytest.approx(want, rel=1e-9, abs=1e-12)
