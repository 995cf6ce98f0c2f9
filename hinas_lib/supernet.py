"""The HiNAS supernet: search cells on a layer x width grid.

Architecture parameters:

* ``alpha`` (inner space): softmax over primitives per cell edge. Its shape
  depends on ``space.alpha_sharing``: ``layer`` (LWAS, the paper's choice)
  ``(L, E, O)``; ``tied`` (one for the whole net, DARTS-style) ``(1, E, O)``;
  ``cell`` (one per grid node) ``(L, S, E, O)``.
* ``beta`` (outer space): ``(L, S, 3)``, softmax over the lower/keep/raise
  moves *out of* each node of the previous layer (transition probabilities, as
  in Auto-DeepLab), masked where a move is impossible.

Cell sharing (``space.cell_sharing=True``, HiNAS): a node first merges the
width-matched inputs of all its incoming paths, each weighted by its move's
beta, and runs one cell. Without it (Auto-DeepLab style) each incoming path runs its own cell and
the cell outputs are beta-weighted: up to 3x the cell evaluations.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .cells import SearchCell
from .config import Config
from .fused import FusedSearchCell, PerfOptions
from .genotype import edges_per_cell
from .grid import incoming, masked_softmax, move_mask, reachable
from .ops import router
from .tasks import get_task


def _key(l: int, s: int, k: Optional[int] = None) -> str:
    return f"{l}_{s}" if k is None else f"{l}_{s}_{k}"


class SuperNet(nn.Module):
    """The supernet of ``cfg``; ``perf`` chooses how it computes (never what)."""

    def __init__(self, cfg: Config, perf: PerfOptions = PerfOptions()):
        super().__init__()
        self.cfg, self.perf = cfg, perf
        sp = cfg.space
        self.L, self.S = sp.layers, len(sp.width_factors)
        self.widths = sp.widths()
        self.primitives = list(sp.primitives)
        self.E, self.O = edges_per_cell(sp.blocks), len(self.primitives)
        F0 = self.widths[0]
        c_in = cfg.task.channels

        self.stem = nn.Conv2d(c_in, F0, 3, padding=1)
        self.register_buffer("mask", move_mask(self.L, self.S), persistent=False)

        self.nodes = [(l, s) for l in range(self.L) for s in reachable(l, self.S)]
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
                self.cells[_key(l, s, c)] = self._make_cell(c_pp, C, sp)
        # every last-layer node is projected back to F and summed
        self.proj = nn.ModuleDict({str(s): nn.Conv2d(self.widths[s], F0, 1)
                                   for s in reachable(self.L - 1, self.S)})
        self.head = get_task(cfg).head(F0)

        if sp.alpha_sharing == "layer":
            a_shape = (self.L, self.E, self.O)
        elif sp.alpha_sharing == "tied":
            a_shape = (1, self.E, self.O)
        else:
            a_shape = (self.L, self.S, self.E, self.O)
        self.alpha = nn.Parameter(1e-3 * torch.randn(a_shape))
        self.beta = nn.Parameter(1e-3 * torch.randn(self.L, self.S, 3))

    def _make_cell(self, c_pp: int, C: int, sp) -> SearchCell:
        if self.perf.fuse_edges:
            return FusedSearchCell(c_pp, C, C, sp.blocks, self.primitives, act=sp.activation, affine=False,
                                   perf=self.perf)
        return SearchCell(c_pp, C, C, sp.blocks, self.primitives, act=sp.activation, affine=False)

    # ------------------------------------------------------------------
    def _prev_prev_width(self, l: int, s: int) -> int:
        if l - 2 < 0:
            return self.widths[0]  # the stem
        lv = reachable(l - 2, self.S)
        return self.widths[min(s, lv[-1])]

    def arch_parameters(self) -> List[nn.Parameter]:
        return [self.alpha, self.beta]

    def weight_parameters(self) -> List[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def num_weight_params(self) -> int:
        return sum(p.numel() for p in self.weight_parameters())

    def alpha_weights(self) -> torch.Tensor:
        return torch.softmax(self.alpha, dim=-1)

    def beta_weights(self) -> torch.Tensor:
        return masked_softmax(self.beta, self.mask)

    def alpha_for(self, layer: int, level: int, alpha: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The alpha (edges, ops) that the cell of grid node (layer, level) reads:
        its layer's (LWAS), the single shared one (tied) or its own (cell).
        ``alpha`` may be a transform of ``self.alpha`` of the same shape (its softmax)."""
        a = self.alpha if alpha is None else alpha
        return {"layer": lambda: a[layer], "tied": lambda: a[0],
                "cell": lambda: a[layer, level]}[self.cfg.space.alpha_sharing]()

    def _run_cell(self, cell: SearchCell, s0, s1, w, naive: bool):
        if self.cfg.space.checkpoint_cells and self.training and torch.is_grad_enabled():
            return checkpoint(_RecomputeKeepsBNStats(cell), s0, s1, w, naive, use_reentrant=False)
        return cell(s0, s1, w, naive)

    # ------------------------------------------------------------------
    def features(self, x: torch.Tensor, naive: bool = False) -> torch.Tensor:
        aw, bw = self.alpha_weights(), self.beta_weights()
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


class _RecomputeKeepsBNStats:
    """A cell wrapped for ``torch.utils.checkpoint``: the first call is the real
    forward; later calls are backward's recomputation, which must not update the
    BN running statistics a second time, so it restores them afterwards (also
    when checkpoint's early stop aborts the recomputation half way)."""

    def __init__(self, cell: SearchCell):
        self.cell, self.calls = cell, 0

    def __call__(self, s0, s1, w, naive):
        self.calls += 1
        if self.calls == 1:
            return self.cell(s0, s1, w, naive)
        bufs = [b for m in self.cell.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                for b in (m.running_mean, m.running_var, m.num_batches_tracked) if b is not None]
        saved = [b.clone() for b in bufs]
        try:
            return self.cell(s0, s1, w, naive)
        finally:
            with torch.no_grad():
                for b, v in zip(bufs, saved):
                    b.copy_(v)


__all__ = ["SuperNet"]
