"""Config dataclasses, presets, YAML round trip and validation messages."""
import dataclasses

import pytest

from hinas_lib.config import (Config, ConfigError, DataConfig, SearchConfig, SpaceConfig,
                              TaskConfig, TrainConfig, get_preset, load_config)
from hinas_lib.ops import PRIMITIVES


# ---------------------------------------------------------------- presets
def test_tiny_preset_is_small_and_denoise_by_default():
    cfg = get_preset("tiny")
    assert cfg.name == "tiny"
    assert cfg.task.task == "denoise" and cfg.task.channels == 1
    assert cfg.space.layers == 2 and cfg.space.blocks == 2 and cfg.space.filters == 8
    assert cfg.search.warmup_epochs <= cfg.search.epochs


def test_paper_denoise_preset_values():
    cfg = get_preset("paper-denoise")
    assert cfg.name == "paper-denoise"
    assert cfg.task.task == "denoise" and cfg.task.channels == 1
    sp = cfg.space
    assert (sp.layers, sp.blocks, sp.filters) == (3, 4, 10)
    assert sp.width_factors == (1.0, 1.5, 2.0)
    assert sp.widths() == [10, 15, 20]
    assert sp.alpha_sharing == "layer" and sp.cell_sharing is True
    assert cfg.search.batch_size == 6 and cfg.search.crop == 64
    assert cfg.train.filters == 20


def test_paper_sr_preset_values():
    cfg = get_preset("paper-sr")
    assert cfg.name == "paper-sr"
    assert cfg.task.task == "sr" and cfg.task.channels == 3 and cfg.task.scale == 4
    sp = cfg.space
    assert (sp.layers, sp.blocks, sp.filters) == (2, 3, 8)
    assert sp.width_factors == (1.0, 1.5, 2.0)
    assert cfg.search.batch_size == 24 and cfg.search.crop == 64
    assert cfg.train.filters == 16


def test_tiny_sr_variant_with_scale():
    cfg = get_preset("tiny", task="sr", scale=3)
    assert cfg.task.task == "sr" and cfg.task.scale == 3 and cfg.task.channels == 3
    assert cfg.name == "tiny"


def test_paper_sr_other_scale_and_task_mismatch():
    assert get_preset("paper-sr", scale=2).task.scale == 2
    with pytest.raises(ConfigError, match="task.task"):
        get_preset("paper-denoise", task="sr")
    with pytest.raises(ConfigError, match="task.task"):
        get_preset("paper-sr", task="denoise")


def test_unknown_preset_rejected():
    with pytest.raises(ConfigError, match="preset.*no-such-preset"):
        get_preset("no-such-preset")


def test_preset_sr_scale_5_rejected():
    with pytest.raises(ConfigError, match="task.scale"):
        get_preset("tiny", task="sr", scale=5)


# ---------------------------------------------------------------- YAML
@pytest.mark.parametrize("name,task,scale", [("tiny", None, None), ("tiny", "sr", 3),
                                             ("paper-denoise", None, None), ("paper-sr", None, None)])
def test_yaml_round_trip(tmp_path, name, task, scale):
    cfg = get_preset(name, task=task, scale=scale)
    p = tmp_path / "cfg.yaml"
    text = cfg.to_yaml(p)
    assert p.read_text() == text
    back = Config.from_yaml(p)
    assert back == cfg
    assert back.to_dict() == cfg.to_dict()
    # tuples stay tuples after the round trip
    assert isinstance(back.space.width_factors, tuple) and isinstance(back.space.primitives, tuple)


def test_yaml_round_trip_with_sigma_range(tmp_path):
    cfg = get_preset("tiny").replace(task={"sigma_range": [5, 50], "sigmas": [15, 25]})
    assert cfg.task.sigma_range == (5.0, 50.0) and cfg.task.sigmas == (15.0, 25.0)
    p = tmp_path / "c.yaml"
    cfg.to_yaml(p)
    assert Config.from_yaml(p) == cfg


def test_from_yaml_missing_and_invalid(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        Config.from_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("space: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Config.from_yaml(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        Config.from_yaml(lst)


def test_load_config_prefers_file_and_overrides_scale(tmp_path):
    p = tmp_path / "c.yaml"
    get_preset("tiny", task="sr", scale=2).to_yaml(p)
    cfg = load_config(config_path=str(p), scale=4)
    assert cfg.task.task == "sr" and cfg.task.scale == 4
    with pytest.raises(ConfigError, match="task.task"):
        load_config(config_path=str(p), task="denoise")
    assert load_config() == get_preset("tiny")


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("factory,field_name", [
    (lambda: SpaceConfig(width_factors=(1.0, 2.0, 1.5)), "space.width_factors"),
    (lambda: SpaceConfig(width_factors=(1.0, 1.0)), "space.width_factors"),
    (lambda: SpaceConfig(width_factors=()), "space.width_factors"),
    (lambda: SpaceConfig(width_factors=(-1.0, 1.0)), "space.width_factors"),
    (lambda: SpaceConfig(layers=0), "space.layers"),
    (lambda: SpaceConfig(blocks=0), "space.blocks"),
    (lambda: SpaceConfig(filters=0), "space.filters"),
    (lambda: SpaceConfig(primitives=("conv_3x3", "conv_9x9_unknown")), "space.primitives"),
    (lambda: SpaceConfig(primitives=("conv_3x3", "conv_3x3")), "space.primitives"),
    (lambda: SpaceConfig(primitives=("none",)), "space.primitives"),
    (lambda: SpaceConfig(activation="gelu"), "space.activation"),
    (lambda: SpaceConfig(alpha_sharing="node"), "space.alpha_sharing"),
    (lambda: TaskConfig(task="sr", scale=5), "task.scale"),
    (lambda: TaskConfig(task="deblur"), "task.task"),
    (lambda: TaskConfig(channels=2), "task.channels"),
    (lambda: TaskConfig(sigmas=(300.0,)), "task.sigmas"),
    (lambda: TaskConfig(sigma_range=(50.0, 10.0)), "task.sigma_range"),
    (lambda: SearchConfig(epochs=5, warmup_epochs=6), "search.warmup_epochs"),
    (lambda: SearchConfig(batch_size=0), "search.batch_size"),
    (lambda: TrainConfig(amp="fp8"), "train.amp"),
    (lambda: SearchConfig(amp="fp16"), "search.amp"),
    (lambda: TrainConfig(filters=0), "train.filters"),
    (lambda: DataConfig(val_fraction=1.0), "data.val_fraction"),
])
def test_invalid_values_name_the_field(factory, field_name):
    with pytest.raises(ConfigError) as ei:
        factory()
    assert str(ei.value).startswith(field_name + ":"), str(ei.value)


def test_denoise_ignores_scale():
    # scale is validated only for SR
    assert TaskConfig(task="denoise", scale=5).scale == 5


def test_from_dict_rejects_unknown_section_and_field():
    with pytest.raises(ConfigError, match=r"unknown section.*'optimizer'"):
        Config.from_dict({"optimizer": {"lr": 1}})
    with pytest.raises(ConfigError, match=r"^space: unknown field.*'depth'"):
        Config.from_dict({"space": {"depth": 3}})
    with pytest.raises(ConfigError, match=r"^search: expected a mapping"):
        Config.from_dict({"search": [1, 2]})
    with pytest.raises(ConfigError, match="expected a mapping"):
        Config.from_dict([("space", {})])


def test_from_dict_validates_nested_values():
    with pytest.raises(ConfigError, match=r"^search.warmup_epochs"):
        Config.from_dict({"search": {"epochs": 3, "warmup_epochs": 4}})
    with pytest.raises(ConfigError, match=r"^space.layers"):
        Config.from_dict({"space": {"layers": 0}})
    with pytest.raises(ConfigError, match=r"^task.scale"):
        Config.from_dict({"task": {"task": "sr", "scale": 5}})
    with pytest.raises(ConfigError, match=r"^space.primitives"):
        Config.from_dict({"space": {"primitives": ["none", "bogus_op"]}})


def test_from_dict_empty_sections_take_defaults():
    cfg = Config.from_dict({"name": "x", "space": None})
    assert cfg.name == "x" and cfg.space == SpaceConfig()


def test_wrong_type_in_yaml_names_the_field():
    with pytest.raises(ConfigError, match=r"^search.epochs"):
        Config.from_dict({"search": {"epochs": "ten"}})


# ---------------------------------------------------------------- replace
def test_replace_returns_validated_copy():
    cfg = get_preset("tiny")
    new = cfg.replace(search={"epochs": 3, "warmup_epochs": 1}, space={"alpha_sharing": "cell"}, name="t2")
    assert new.search.epochs == 3 and new.search.warmup_epochs == 1
    assert new.space.alpha_sharing == "cell" and new.name == "t2"
    # the original is untouched, other fields carried over
    assert cfg.search.epochs == 10 and cfg.space.alpha_sharing == "layer" and cfg.name == "tiny"
    assert new.train == cfg.train and new.task == cfg.task
    assert new.space.filters == cfg.space.filters
    with pytest.raises(ConfigError, match=r"^search.warmup_epochs"):
        cfg.replace(search={"epochs": 1})  # warmup 2 > 1
    with pytest.raises(ConfigError, match=r"^space: unknown field"):
        cfg.replace(space={"nope": 1})


def test_replace_unknown_section_is_config_error():
    with pytest.raises(ConfigError):
        get_preset("tiny").replace(optimizer={"lr": 1.0})


def test_widths_rounding():
    sp = SpaceConfig(filters=8)
    assert sp.widths() == [8, 12, 16]
    assert sp.widths(filters=1) == [1, 2, 2]  # round(1.5) = 2 (banker's) and at least 1
    assert dataclasses.is_dataclass(sp)
    assert SpaceConfig().primitives == tuple(PRIMITIVES)
