"""The compact design's discrete network, and :func:`build_network`, which builds
the network of the design a config asks for (:mod:`hinas_lib.designs`).

:class:`CompactNet` is the compact supernet's design with one node per layer:
stem -> for each layer a fixed cell at the path's width (1x1 routers where the
width changes) -> 1x1 projection back to F plus a long skip from the stem -> the
task's head. The authors' retraining network is :class:`hinas_lib.authors.AuthorsNet`.
A trained network's file (``model.pt``) is written and read by :mod:`hinas_lib.model_files`.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from . import authors  # noqa: F401 (registers the authors' design)
from .cells import FixedCell
from .config import Config
from .designs import get_design, register_classes
from .genotype import Genotype
from .grid import channel_widths
from .ops import count_params, router
from .tasks import get_task


class CompactNet(nn.Module):
    """The compact design's network of ``genotype`` (F = ``filters`` or ``cfg.train.filters``)."""

    def __init__(self, genotype: Genotype, cfg: Config, filters: int | None = None):
        super().__init__()
        if cfg.space.style != "compact":
            raise ValueError(f"CompactNet is the compact design; space.style is {cfg.space.style!r}: "
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


HiNASNet = CompactNet  # its earlier name, kept for saved notebooks and user code

register_classes("compact", network=CompactNet)


def build_network(genotype: Genotype, cfg: Config, filters: Optional[int] = None) -> nn.Module:
    """The retraining network of ``cfg.space.style``'s design for ``genotype``."""
    return get_design(cfg.space.style).network(genotype, cfg, filters)


__all__ = ["CompactNet", "HiNASNet", "build_network"]
