"""The discrete network a genotype describes, and its self-describing checkpoint.

:func:`build_network` builds the design the config asks for: the compact
:class:`HiNASNet` (here) or the authors' retraining network
(:class:`hinas_lib.authors.AuthorsNet`). The compact one is the supernet's
design with one node per layer: stem -> for each layer a fixed cell at the
path's width (1x1 routers where the width changes) -> 1x1 projection back to F
plus a long skip from the stem -> the task's head.

A trained network is stored as ``model.pt``: its config, genotype and weights
(tensors and plain data only, so ``torch.load(weights_only=True)`` reads it).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from . import authors  # noqa: F401 (registers the authors' design)
from .cells import FixedCell
from .checkpoint import CheckpointError, atomic_save, load_checkpoint
from .checks import MAX_FILTERS
from .config import Config, ConfigError
from .designs import get_design, register_classes
from .genotype import Genotype, GenotypeError
from .grid import channel_widths
from .ops import count_params, router
from .runfiles import MODEL_FILE
from .runtime import pick_device
from .tasks import get_task
from .zoo import resolve_model

MODEL_FORMAT = 1
MODEL_NAME = MODEL_FILE  # (the name scripts import)


class HiNASNet(nn.Module):
    """The compact design's network of ``genotype`` (F = ``filters`` or ``cfg.train.filters``)."""

    def __init__(self, genotype: Genotype, cfg: Config, filters: int | None = None):
        super().__init__()
        if cfg.space.style != "compact":
            raise ValueError(f"HiNASNet is the compact design; space.style is {cfg.space.style!r}: "
                             "use build_network(genotype, cfg)")
        self.genotype = genotype
        self.cfg = cfg
        F0 = cfg.train.filters if filters is None else filters
        act = cfg.space.activation
        # widths come from the genotype's own factors, so a genotype is self-contained
        widths = channel_widths(F0, genotype.width_factors)
        self.widths = [widths[s] for s in genotype.path]
        self.stem = nn.Conv2d(cfg.task.channels, F0, 3, padding=1)
        self.routers = nn.ModuleList()
        self.cells = nn.ModuleList()
        c_prev2, c_prev = F0, F0
        for l, C in enumerate(self.widths):
            self.routers.append(nn.Identity() if c_prev == C else router(c_prev, C, affine=True, act=act))
            self.cells.append(FixedCell(c_prev2, C, C, genotype.cells[l], act=act, affine=True))
            c_prev2, c_prev = c_prev, C
        self.proj = nn.Conv2d(c_prev, F0, 1)
        self.head = get_task(cfg).head(F0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.stem(x)
        prev2, prev = stem, stem
        for rt, cell in zip(self.routers, self.cells):
            prev2, prev = prev, cell(prev2, rt(prev))
        return self.proj(prev) + stem

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x), x)

    def num_params(self) -> int:
        return count_params(self)


register_classes("compact", network=HiNASNet)


def build_network(genotype: Genotype, cfg: Config, filters: Optional[int] = None) -> nn.Module:
    """The retraining network of ``cfg.space.style``'s design for ``genotype``."""
    return get_design(cfg.space.style).network(genotype, cfg, filters)


# ---------------------------------------------------------------------------
# model.pt
# ---------------------------------------------------------------------------

def model_checkpoint(net: HiNASNet, cfg: Config, genotype: Genotype, metrics: Dict,
                     filters: Optional[int] = None) -> Dict:
    """The content of a ``model.pt``: config, genotype, filters, weights, metrics."""
    return {"kind": "model", "format": MODEL_FORMAT, "config": cfg.to_dict(), "genotype": genotype.to_dict(),
            "filters": cfg.train.filters if filters is None else int(filters),
            "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "metrics": json.dumps(metrics)}


def save_model(path: str | Path, net: HiNASNet, cfg: Config, genotype: Genotype, metrics: Dict) -> None:
    """Write ``model.pt`` atomically (a crash leaves the previous file intact)."""
    atomic_save(model_checkpoint(net, cfg, genotype, metrics), path)


def load_model(path: str | Path, device: Optional[str] = None, *, task: Optional[str] = None,
               scale: Optional[int] = None) -> Tuple[HiNASNet, Config, Dict]:
    """Rebuild a trained network from its self-describing checkpoint.

    Args:
        path: a ``model.pt``, a folder holding one, or a zoo name (``denoise-s30``).
        device: where to put it (default: CUDA when available).
        task, scale: refuse a model made for another task or SR scale.

    Returns:
        ``(net, config, checkpoint dict)``, the network in eval mode.
    """
    path = resolve_model(path)
    ckpt = load_checkpoint(path, kind="model")
    for key, kind in (("config", dict), ("genotype", dict), ("state_dict", dict)):
        if not isinstance(ckpt.get(key), kind):
            what = "has no" if key not in ckpt else f"has a {type(ckpt[key]).__name__} as its"
            raise CheckpointError(f"{path}: {what} {key!r} entry; not a complete hinas model.pt "
                                  "(damaged, or written by something else)")
    try:
        cfg = Config.from_dict(ckpt["config"])
    except ConfigError as e:
        raise CheckpointError(f"{path}: its stored config is invalid ({e})") from None
    if task is not None and task != cfg.task.task:
        raise CheckpointError(f"{path} holds a {cfg.task.task!r} model, but task {task!r} was asked for")
    if scale is not None and get_task(cfg).level_name != "scale":
        raise CheckpointError(f"--scale: {path} is a {cfg.task.task} model; --scale is the SR factor of SR models")
    if scale is not None and scale != get_task(cfg).scale:
        raise CheckpointError(f"{path} is an x{get_task(cfg).scale} model, but x{scale} was asked for")
    filters = ckpt.get("filters")
    if isinstance(filters, bool) or not isinstance(filters, int) or not 1 <= filters <= MAX_FILTERS:
        raise CheckpointError(f"{path}: stores filters={filters!r}, not a width in 1..{MAX_FILTERS} (damaged?)")
    try:
        geno = Genotype.from_dict(ckpt["genotype"])
    except GenotypeError as e:
        raise CheckpointError(f"{path}: its stored genotype is invalid ({e})") from None
    net = build_network(geno, cfg, filters=filters)
    try:
        net.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as e:  # a state_dict of non-tensors raises these
        raise CheckpointError(f"{path}: weights do not match the stored genotype/config ({e})") from None
    net = net.to(pick_device(device)).eval()
    return net, cfg, ckpt


__all__ = ["HiNASNet", "build_network", "MODEL_FORMAT", "MODEL_NAME", "model_checkpoint", "save_model", "load_model"]
