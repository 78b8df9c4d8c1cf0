"""`rlt distill --preset paper` without a model: the teacher warm-up recipe is picked by role."""

from stages.commands import distill
from stages.config import resolve


def test_paper_preset_picks_the_teacher_recipe_by_role():
    teacher = resolve(distill.DistillConfig, preset=distill.PRESETS["paper"], options={"role": "teacher"})
    distill.apply_role_preset(teacher)
    assert (teacher.lr, teacher.warmup_ratio, teacher.weight_decay, teacher.global_batch) == (1e-5, 0.05, 1e-4, 16)
    assert teacher.trl == {"adam_beta1": 0.9, "adam_beta2": 0.95, "max_grad_norm": 1.0}
    student = distill.apply_role_preset(resolve(distill.DistillConfig, preset=distill.PRESETS["paper"]))
    assert (student.warmup_ratio, student.global_batch, student.max_length, student.epochs) == (0.1, 96, 16384, 3.0)
    mine = resolve(distill.DistillConfig, preset=distill.PRESETS["paper"], options={"role": "teacher"},
                   overrides=["global_batch=32"])
    assert distill.apply_role_preset(mine).global_batch == 32  # an explicit choice wins


def test_the_resolved_config_is_the_one_the_stage_records():
    """`rlt run` compares a finished output with the resolved config: it must already hold the warm-up recipe."""
    from stages.commands import make_config
    from stages.config import config_hash

    cfg = make_config("distill", preset="paper", options={"model": "m", "data": "d", "out": "o", "role": "teacher"})
    assert (cfg.warmup_ratio, cfg.weight_decay, cfg.global_batch) == (0.05, 1e-4, 16)
    recorded = config_hash(cfg)
    assert config_hash(distill.apply_role_preset(cfg)) == recorded  # the stage applying it again changes nothing
