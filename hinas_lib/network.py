"""The discrete network a genotype describes, trained from scratch.

Same design as the supernet, with one node per layer: stem -> for each layer a
fixed cell at the path's width (1x1 routers where the width changes) -> 1x1
projection back to F plus a long skip from the stem -> task head.
"""
from __future__ import annotations

import torch
from torch import nn

from .cells import FixedCell
from .config import Config
from .genotype import Genotype
from .ops import count_params, router
from .supernet import make_head


class HiNASNet(nn.Module):
    def __init__(self, genotype: Genotype, cfg: Config, filters: int | None = None):
        super().__init__()
        self.genotype = genotype
        self.cfg = cfg
        F0 = cfg.train.filters if filters is None else filters
        act = cfg.space.activation
        # widths come from the genotype's own factors, so a genotype is self-contained
        widths = [max(1, int(round(F0 * w))) for w in genotype.width_factors]
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
        self.head = make_head(cfg, F0)

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
