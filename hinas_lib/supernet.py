"""The compact design's supernet, :class:`CompactSuperNet`: search cells on a layer x width grid,
and :func:`build_supernet`, which builds the design a config asks for
(:mod:`hinas_lib.designs`).

The architecture parameters (alpha, beta) and what reads them are in
:mod:`hinas_lib.supernet_base`; the authors' design in :mod:`hinas_lib.authors`.

Cell sharing (``space.cell_sharing=True``, HiNAS): a node first merges the
width-matched inputs of all its incoming paths, each weighted by its move's
beta, and runs one cell. Without it (Auto-DeepLab style) each incoming path runs its own cell and
the cell outputs are beta-weighted: up to 3x the cell evaluations.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
from torch import nn

from . import authors  # noqa: F401 (registers the authors' design)
from .config import Config
from .designs import get_design, register_classes
from .fused import PerfOptions, make_search_cell
from .grid import incoming, reachable
from .ops import router
from .supernet_base import SuperNetBase
from .tasks import get_task


def _key(l: int, s: int, k: Optional[int] = None) -> str:
    return f"{l}_{s}" if k is None else f"{l}_{s}_{k}"


class CompactSuperNet(SuperNetBase):
    """The compact design's supernet of ``cfg``; ``perf`` chooses how it computes (never what).

    Node (l, s) runs a cell on the beta-weighted sum of its inputs from layer
    l-1 (width-changing moves through act-1x1-BN routers, keep the identity);
    the cell's older input is the cell output of layer l-2. Every last-layer
    node is projected back to F, summed with the stem (a long skip) and fed to
    the task's head.
    """

    def __init__(self, cfg: Config, perf: PerfOptions = PerfOptions()):
        super().__init__()
        if cfg.space.style != "compact":
            raise ValueError(f"CompactSuperNet is the compact design; space.style is {cfg.space.style!r}: "
                             "use build_supernet(cfg)")
        self._init_space(cfg)
        self.perf = perf
        sp = cfg.space
        F0 = self.widths[0]
        self.stem = nn.Conv2d(cfg.task.channels, F0, 3, padding=1)
        self.routers = nn.ModuleDict()
        self.cells = nn.ModuleDict()
        for l, s in self.nodes:
            C = self.widths[s]
            c_pp = self._prev_prev_width(l, s)
            for src, k in incoming(self.mask, l, s):
                if src != s:  # keep is the identity: same width, nothing to learn
                    self.routers[_key(l, src, k)] = router(self.widths[src], C, affine=False, act=sp.activation)
            n_cells = 1 if sp.cell_sharing else len(incoming(self.mask, l, s))
            for c in range(n_cells):
                self.cells[_key(l, s, c)] = make_search_cell(c_pp, C, sp, perf)
        # every last-layer node is projected back to F and summed
        self.proj = nn.ModuleDict({str(s): nn.Conv2d(self.widths[s], F0, 1)
                                   for s in reachable(self.L - 1, self.S)})
        self.head = get_task(cfg).head(F0)
        self._init_arch(sp.arch_init)

    def _prev_prev_width(self, l: int, s: int) -> int:
        if l - 2 < 0:
            return self.widths[0]  # the stem
        lv = reachable(l - 2, self.S)
        return self.widths[min(s, lv[-1])]

    # ------------------------------------------------------------------
    def features(self, x: torch.Tensor, naive: bool = False) -> torch.Tensor:
        aw, bw = self.edge_weights(), self.beta_weights()
        stem = self.stem(x)
        if self.perf.channels_last:
            # every conv/BN after this inherits NHWC; the 1-channel input would not pass it on
            stem = stem.contiguous(memory_format=torch.channels_last)
        prev: Dict[int, torch.Tensor] = {0: stem}   # layer l-1
        prev2: Dict[int, torch.Tensor] = {0: stem}  # layer l-2
        for l in range(self.L):
            cur: Dict[int, torch.Tensor] = {}
            for s in reachable(l, self.S):
                s0 = prev2[min(s, max(prev2))]
                w = self.alpha_for(l, s, aw)
                inputs = []
                for src, k in incoming(self.mask, l, s):
                    key = _key(l, src, k)
                    h = self.routers[key](prev[src]) if key in self.routers else prev[src]
                    inputs.append((bw[l, src, k], h))  # weight of the move (l-1, src) -> (l, s)
                if self.cfg.space.cell_sharing:
                    merged = None
                    for b, h in inputs:
                        term = b * h
                        merged = term if merged is None else merged + term
                    cur[s] = self._run_cell(self.cells[_key(l, s, 0)], s0, merged, w, naive)
                else:
                    out = None
                    for c, (b, h) in enumerate(inputs):
                        term = b * self._run_cell(self.cells[_key(l, s, c)], s0, h, w, naive)
                        out = term if out is None else out + term
                    cur[s] = out
            prev2, prev = prev, cur
        feat = None
        for s, h in prev.items():
            p = self.proj[str(s)](h)
            feat = p if feat is None else feat + p
        return feat + stem  # long skip: cells learn a residual on the stem features

    def forward(self, x: torch.Tensor, naive: bool = False) -> torch.Tensor:
        # callers get the usual contiguous layout whatever layout was used inside
        return self.head(self.features(x, naive), x).contiguous()


SuperNet = CompactSuperNet  # its earlier name, kept for saved notebooks and user code

register_classes("compact", supernet=CompactSuperNet)


def build_supernet(cfg: Config, perf: PerfOptions = PerfOptions()) -> SuperNetBase:
    """The supernet of ``cfg.space.style``'s design: the compact one or the authors'."""
    return get_design(cfg.space.style).supernet(cfg, perf)


__all__ = ["CompactSuperNet", "SuperNet", "build_supernet"]
