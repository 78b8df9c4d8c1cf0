"""Config resolution: precedence, typing, unknown keys, malformed input."""

from dataclasses import dataclass

import pytest

from stages.config import config_hash, leaf_fields, opt, resolve
from stages.errors import UserError
from stages.method.settings import PromptsConfig, RewardConfig, with_teacher_temperature


@dataclass
class Demo:
    out: str = opt("", "output", hash=False)
    seed: int = opt(0, "seed")
    lr: float = opt(1e-3, "lr")
    flag: bool = opt(False, "flag")
    name: str | None = opt(None, "optional")
    tags: list[str] = opt(list, "list")
    trl: dict = opt(dict, "pass-through")
    reward: RewardConfig = opt(RewardConfig, "reward")
    prompts: PromptsConfig = opt(PromptsConfig, "prompts")


def test_defaults_are_the_paper_values():
    cfg = resolve(Demo)
    assert (cfg.reward.kl_coef, cfg.reward.alpha, cfg.reward.format_penalty) == (3.0, 0.01, -1.0)
    assert (cfg.reward.teacher_temperature, cfg.reward.student_temperature) == (None, 0.7)  # None: tied to sampling
    assert with_teacher_temperature(cfg.reward, None).teacher_temperature == 0.7
    assert with_teacher_temperature(cfg.reward, 1.3).teacher_temperature == 1.3
    assert with_teacher_temperature(RewardConfig(teacher_temperature=0.5), 1.3).teacher_temperature == 0.5


def test_precedence_preset_file_override_option(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("seed: 2\nlr: 0.5\nreward:\n  kl_coef: 1\n")
    cfg = resolve(Demo, file=f, overrides=["seed=3", "reward.alpha=0.5"], preset={"seed": 1, "flag": True},
                  options={"seed": 4, "name": None})
    assert cfg.seed == 4 and cfg.lr == 0.5 and cfg.flag is True
    assert cfg.reward.kl_coef == 1.0 and isinstance(cfg.reward.kl_coef, float) and cfg.reward.alpha == 0.5
    assert resolve(Demo, file=f, overrides=["seed=3"]).seed == 3


def test_typed_overrides():
    cfg = resolve(Demo, overrides=["flag=true", "name=none", "tags=a,b", "trl.beta=0.1",
                                   "prompts.student_system=Think: then answer", "lr=2"])
    assert cfg.flag is True and cfg.name is None and cfg.tags == ["a", "b"]
    assert cfg.trl == {"beta": 0.1} and cfg.prompts.student_system == "Think: then answer"
    assert cfg.lr == 2.0 and isinstance(cfg.lr, float)


@pytest.mark.parametrize("override, fragment", [
    ("sede=1", "unknown key 'sede'"),
    ("reward.kl_coeff=1", "unknown key 'reward.kl_coeff'"),
    ("seed=abc", "'seed' expects an integer"),
    ("flag=maybe", "'flag' expects true/false"),
    ("seed.x=1", "'seed' has no sub-keys"),
])
def test_bad_keys_and_types(override, fragment):
    with pytest.raises(UserError, match="config: ") as e:
        resolve(Demo, overrides=[override])
    assert fragment in str(e.value)
    assert "\n" not in str(e.value)


def test_unknown_key_lists_valid_names():
    with pytest.raises(UserError) as e:
        resolve(Demo, overrides=["reward.kl_coeff=1"])
    assert "kl_coef" in str(e.value) and "alpha" in str(e.value)


def test_all_problems_in_one_error(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("seed: x\nbogus: 1\nreward: {nope: 2}\n")
    with pytest.raises(UserError) as e:
        resolve(Demo, file=f)
    msg = str(e.value)
    assert "'seed'" in msg and "'bogus'" in msg and "'reward.nope'" in msg


@pytest.mark.parametrize("text, fragment", [
    ("- a\n- b\n", "must be a mapping"),
    ("a: [1\n", "not valid YAML"),
])
def test_bad_yaml_files(tmp_path, text, fragment):
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(UserError, match=fragment):
        resolve(Demo, file=f)


def test_missing_file_and_malformed_override(tmp_path):
    with pytest.raises(UserError, match="not found"):
        resolve(Demo, file=tmp_path / "nope.yaml")
    for bad in ("seed", "=3", "a b=1"):
        with pytest.raises(UserError, match="malformed override"):
            resolve(Demo, overrides=[bad])


def test_yaml_is_safe_loaded(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(UserError, match="not valid YAML"):
        resolve(Demo, file=f)


def test_hash_ignores_output_path_only():
    a, b = resolve(Demo, options={"out": "x"}), resolve(Demo, options={"out": "y"})
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash(resolve(Demo, overrides=["reward.alpha=0.02"]))


def test_leaf_fields_walks_nested_configs():
    keys = [k for k, _, _ in leaf_fields(Demo)]
    assert {"reward.kl_coef", "prompts.teacher_system", "seed", "trl"} <= set(keys) and "reward" not in keys
    assert len(keys) == len(set(keys)) == 7 + len(leaf_fields(RewardConfig)) + len(leaf_fields(PromptsConfig))
