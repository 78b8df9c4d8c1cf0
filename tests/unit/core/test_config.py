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


def test_a_dotted_key_below_a_mapping_option_sets_one_nested_key(tmp_path):
    """`trl.lr_scheduler_kwargs.num_decay_steps=100` nests (as YAML would), keeping the mapping's other keys."""
    f = tmp_path / "c.yaml"
    f.write_text("trl: {lr_scheduler_kwargs: {min_lr_ratio: 0.1}, beta: 0.2}\n")
    cfg = resolve(Demo, file=f, overrides=["trl.lr_scheduler_kwargs.num_decay_steps=100"])
    assert cfg.trl == {"lr_scheduler_kwargs": {"min_lr_ratio": 0.1, "num_decay_steps": 100}, "beta": 0.2}


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


# ----------------------------------------------------------------------------- configs mean what they say


NUMBERS = [("1e-5", 1e-5), ("1E-5", 1e-5), ("1e5", 1e5), (".5", 0.5), ("-1e-3", -1e-3), ("1_000", 1000.0),
           ("+2.5", 2.5), ("3", 3.0)]


@pytest.mark.parametrize("text,value", NUMBERS)
def test_every_number_python_and_yaml_1_2_read_is_a_number(tmp_path, text, value):
    f = tmp_path / "c.yaml"
    f.write_text(f"lr: {text}\ntrl: {{adam_epsilon: {text}}}\nreward: {{kl_coef: {text}}}\n")
    for cfg in (resolve(Demo, overrides=[f"lr={text}", f"trl.adam_epsilon={text}", f"reward.kl_coef={text}"]),
                resolve(Demo, file=f)):
        assert cfg.lr == value and isinstance(cfg.lr, float)
        assert cfg.trl["adam_epsilon"] == value and not isinstance(cfg.trl["adam_epsilon"], str)
        assert cfg.reward.kl_coef == value


def test_yaml_1_2_booleans_and_strings(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("name: yes\nflag: true\n")
    cfg = resolve(Demo, file=f)
    assert cfg.name == "yes" and cfg.flag is True


def test_a_mistyped_key_gets_the_nearest_valid_one():
    with pytest.raises(UserError, match="did you mean 'reward.kl_coef'"):
        resolve(Demo, overrides=["reward.kl_coeff=1"])
    with pytest.raises(UserError, match="did you mean 'reward.alpha'"):
        resolve(Demo, overrides=["alpha=1"])  # a nested key given at the top level
    assert resolve(Demo, overrides=["kl_coef=1"]).reward.kl_coef == 1  # ... unless its flag names it so (--kl-coef)
    with pytest.raises(UserError, match="did you mean 'seed'"):
        resolve(Demo, overrides=["sede=1"])


def test_a_key_of_a_config_file_is_attributed_to_the_file(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("reward:\n  kl_coeff: 3\n")
    with pytest.raises(UserError) as e:
        resolve(Demo, file=f)
    assert f"{f}: unknown key 'reward.kl_coeff' (did you mean 'reward.kl_coef'?" in str(e.value)


def test_an_optional_bool_says_what_it_expects_in_words():
    with pytest.raises(UserError) as e:
        resolve(RewardConfig, overrides=["full_kl=maybe"])
    assert "'full_kl' expects true/false (or null: unset), got 'maybe'" in str(e.value)
    assert resolve(RewardConfig, overrides=["full_kl=null"]).full_kl is None


@dataclass
class Checked:
    out: str = opt("", "output", flag=True, required=True)
    src: str = opt("", "input", arg=True, required=True)
    role: str = opt("a", "role", flag=True, choices=("a", "b"))
    lr: float = opt(1.0, "lr", check=lambda v: None if v > 0 else f"must be above 0, got {v:g}")


def test_values_are_checked_when_the_config_resolves():
    from stages.config import check_required

    with pytest.raises(UserError, match=r"unknown --role 'c' \(valid: a, b\)"):
        resolve(Checked, overrides=["role=c"])
    with pytest.raises(UserError, match="'lr' must be above 0, got -1"):
        resolve(Checked, overrides=["lr=-1"])
    cfg = resolve(Checked)  # required fields are checked once the config is complete
    with pytest.raises(UserError, match="missing argument SRC; missing required option --out"):
        check_required(cfg)


def test_a_preset_named_in_a_file_or_a_key_is_applied(tmp_path):
    from stages.commands import make_config

    f = tmp_path / "c.yaml"
    f.write_text("preset: tiny\nmax_steps: 3\n")
    for cfg in (make_config("distill", file=f, options={"model": "m", "data": "d", "out": "o"}),
                make_config("distill", overrides=["preset=tiny", "max_steps=3"],
                            options={"model": "m", "data": "d", "out": "o"})):
        assert (cfg.preset, cfg.batch_size, cfg.lr, cfg.max_length, cfg.max_steps) == ("tiny", 32, 3e-3, 1024, 3)
    with pytest.raises(UserError, match="unknown --preset 'huge'"):
        make_config("distill", overrides=["preset=huge"], options={"model": "m", "data": "d", "out": "o"})


def test_a_flag_name_is_also_a_key():
    from stages.commands import make_config

    cfg = make_config("generate", overrides=["device=cpu", "batch_size=4"],
                      options={"teacher": "t", "data": "d", "out": "o"})
    assert cfg.engine.device == "cpu" and cfg.engine.batch_size == 4
