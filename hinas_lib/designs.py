"""The network designs, each one object: ``space.style`` names one.

A design is settings that must agree: its supernet and retraining network, the
candidate operations, how alpha/beta start, the loss form, and the search's and the
retraining's schedule and optimiser. Two are registered:

* ``authors``: the function class of hkzhang91/HiNAS (the paper presets; README,
  "Presets and the two designs");
* ``compact``: our lighter variant for CPUs (the tiny preset, demo, course, zoo).

The settings live here; the presets (:mod:`hinas_lib.config`) start from them and a
config may still change any one. The classes are registered by the modules that
define them (:mod:`hinas_lib.authors`, :mod:`hinas_lib.supernet`,
:mod:`hinas_lib.network`), as ``ops.register_op`` does for operations: this module
sits below them, beside the config, and imports no network code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from .ops import AUTHORS_PRIMITIVES


@dataclass
class Design:
    """One network design and the settings made for it.

    Attributes:
        name: the ``space.style`` that selects it.
        primitives: its candidate operations (``space.primitives`` of its presets); None:
            every registered operation (``ops.PRIMITIVES`` when the config is made).
        arch_init: how alpha/beta start (``space.arch_init``).
        loss_form: ``task.loss_form``.
        search, train: the ``SearchConfig`` / ``TrainConfig`` fields of its recipe
            (schedule, optimiser, selection, ...); the rest are the dataclass defaults.
        one_cell_per_node: it always shares one cell per node (``space.cell_sharing``).
        reads_every_width: its head reads every width level of the last layer.
        aux_skip: its supernet takes DARTS-'s auxiliary skip (``search.aux_skip``).
        supernet, network: the classes, ``cls(cfg, perf)`` and ``cls(genotype, cfg, filters)``;
            set once :mod:`hinas_lib.supernet` / :mod:`hinas_lib.network` (which build them) are imported.
    """

    name: str
    primitives: Optional[Tuple[str, ...]]
    arch_init: str
    loss_form: str
    search: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    one_cell_per_node: bool = False
    reads_every_width: bool = False
    aux_skip: bool = False
    supernet: Optional[type] = None
    network: Optional[type] = None


DESIGNS: Dict[str, Design] = {
    # the authors' search and retraining recipe (hkzhang91/HiNAS, configs/dn/BSD500_3c4n and
    # configs/sr/DIV2K_2c3n, one_stage_nas/config/defaults.py); the README lists what differs
    "authors": Design(
        name="authors",
        primitives=tuple(AUTHORS_PRIMITIVES), arch_init="ones", loss_form="authors",
        search=dict(epochs=100, warmup_epochs=20, w_lr=0.025, w_lr_min=0.001, w_momentum=0.9,
                    w_weight_decay=3e-4, grad_clip=0.0, a_lr=1e-3, a_weight_decay=1e-3, a_betas=(0.9, 0.999),
                    w_lr_schedule="poly_cosine", lr_t_max=10, lr_power=0.9, select="best",
                    select_by="ssim_psnr", select_from=60, crop=64),
        train=dict(optimizer="sgd", lr=0.05, lr_min=0.0, schedule="poly", lr_power=0.9, momentum=0.9,
                   weight_decay=4e-5, bias_lr_factor=2.0, bias_weight_decay=0.0, grad_clip_value=5.0,
                   ssim_weight=0.6, epochs=600, steps_per_epoch=1000, val_every=1, val_from=450,
                   select_by="ssim_psnr", crop=64),
        one_cell_per_node=True, reads_every_width=True),
    # the dataclass defaults: SGD + cosine for the search's weights, Adam + cosine to retrain
    "compact": Design(
        name="compact", primitives=None, arch_init="random", loss_form="compact",
        search=dict(w_lr_schedule="cosine"), train=dict(optimizer="adam", schedule="cosine"), aux_skip=True),
}

STYLES = tuple(DESIGNS)


def get_design(style: str) -> Design:
    """The design ``space.style`` names."""
    if style not in DESIGNS:
        raise ValueError(f"space.style: must be one of {STYLES}, got {style!r}")
    return DESIGNS[style]


def register_classes(style: str, *, supernet: Optional[type] = None, network: Optional[type] = None) -> None:
    """Called by the module that defines a design's supernet or network class."""
    d = get_design(style)
    if supernet is not None:
        d.supernet = supernet
    if network is not None:
        d.network = network


__all__ = ["Design", "DESIGNS", "STYLES", "get_design", "register_classes"]
