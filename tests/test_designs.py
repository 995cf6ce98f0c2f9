"""A design is one object (hinas_lib.designs): its classes, operations, alpha/beta start,
loss form and recipes, looked up by ``space.style``; the presets are made from it."""
from __future__ import annotations

from dataclasses import fields

import pytest

from hinas_lib.config import (Config, ConfigError, SearchConfig, SpaceConfig, TaskConfig, TrainConfig,
                              get_preset)
from hinas_lib.designs import DESIGNS, STYLES, get_design
from hinas_lib.genotype import default_genotype
from hinas_lib.network import build_network
from hinas_lib.ops import PRIMITIVES
from hinas_lib.supernet import build_supernet


def _defaults(cls):
    return {f.name: getattr(cls(), f.name) for f in fields(cls)}


def test_every_design_has_its_classes_and_the_builders_look_them_up():
    assert set(STYLES) == set(DESIGNS) == {"authors", "compact"}
    for style in STYLES:
        d = get_design(style)
        assert d.name == style and d.supernet is not None and d.network is not None
    for preset in ("tiny", "paper-denoise"):
        cfg = get_preset(preset)
        small = cfg.replace(space={"layers": 3, "blocks": 2, "filters": 4}, train={"filters": 4})
        d = get_design(small.space.style)
        assert type(build_supernet(small)) is d.supernet
        geno = default_genotype(small.space.layers, small.space.blocks, small.space.width_factors)
        assert type(build_network(geno, small)) is d.network


def test_the_compact_design_is_the_dataclass_defaults():
    d = get_design("compact")
    space, search, train = _defaults(SpaceConfig), _defaults(SearchConfig), _defaults(TrainConfig)
    assert d.primitives is None and space["primitives"] == tuple(PRIMITIVES)
    assert (space["style"], space["arch_init"], TaskConfig().loss_form) == ("compact", d.arch_init, d.loss_form)
    assert {k: search[k] for k in d.search} == dict(d.search)
    assert {k: train[k] for k in d.train} == dict(d.train)


@pytest.mark.parametrize("preset", ["paper-denoise", "paper-sr"])
def test_the_paper_presets_are_the_authors_design(preset):
    cfg, d = get_preset(preset), get_design("authors")
    assert cfg.space.style == d.name and cfg.space.primitives == d.primitives
    assert (cfg.space.arch_init, cfg.task.loss_form) == (d.arch_init, d.loss_form)
    search, train = cfg.to_dict()["search"], cfg.to_dict()["train"]
    for k, v in d.search.items():
        assert search[k] == (list(v) if isinstance(v, tuple) else v), k
    for k, v in d.train.items():
        assert train[k] == v, k


def test_a_design_rule_names_the_field():
    with pytest.raises(ConfigError, match="space.cell_sharing: the 'authors' design always shares one cell"):
        SpaceConfig(style="authors", cell_sharing=False)
    with pytest.raises(ConfigError, match="space.style: must be one of"):
        SpaceConfig(style="wide")
    # a config file keeps every field: one written before the registry loads as it was
    cfg = get_preset("paper-sr")
    assert Config.from_dict(cfg.to_dict()) == cfg
