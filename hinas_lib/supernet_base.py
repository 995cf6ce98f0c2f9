"""What every supernet has, whatever its design: the architecture parameters.

* ``alpha`` (inner space): softmax over primitives per cell edge. Its shape
  depends on ``space.alpha_sharing``: ``layer`` (LWAS, the paper's choice)
  ``(L, E, O)``; ``tied`` (one for the whole net, DARTS-style) ``(1, E, O)``;
  ``cell`` (one per grid node) ``(L, S, E, O)``. :meth:`SuperNetBase.alpha_for`
  is the one place that says which alpha a grid node reads.
* ``beta`` (outer space): ``(L, S, 3)``, softmax over the lower/keep/raise
  moves *out of* each node of the previous layer (transition probabilities, as
  in Auto-DeepLab), masked where a move is impossible (:mod:`hinas_lib.grid`).

Initial values: small random numbers (compact design) or, as the authors do,
ones for alpha and beta with -50 on impossible moves (the masked softmax gives
those exactly zero weight either way).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .genotype import edges_per_cell
from .grid import masked_softmax, move_mask, reachable


def alpha_shape(sharing: str, layers: int, levels: int, edges: int, ops: int) -> Tuple[int, ...]:
    """The shape of alpha: one (edges, ops) slice per layer (LWAS, ``"layer"``), one for the
    whole network (``"tied"``) or one per grid node (``"cell"``, unreachable nodes included)."""
    return {"layer": (layers, edges, ops), "tied": (1, edges, ops),
            "cell": (layers, levels, edges, ops)}[sharing]


class SuperNetBase(nn.Module):
    """alpha, beta, the move mask and the helpers every supernet shares.

    Subclasses call :meth:`_init_space` first and :meth:`_init_arch` last in
    their ``__init__`` (alpha and beta are the last parameters registered).
    """

    def _init_space(self, cfg) -> None:
        sp = cfg.space
        self.cfg = cfg
        self.L, self.S = sp.layers, len(sp.width_factors)
        self.widths = sp.widths()
        self.primitives = list(sp.primitives)
        self.E, self.O = edges_per_cell(sp.blocks), len(self.primitives)
        self.register_buffer("mask", move_mask(self.L, self.S), persistent=False)
        self.nodes = [(l, s) for l in range(self.L) for s in reachable(l, self.S)]

    def _init_arch(self, init: str = "random") -> None:
        sp = self.cfg.space
        a_shape = alpha_shape(sp.alpha_sharing, self.L, self.S, self.E, self.O)
        if init == "ones":  # the authors' initial values
            self.alpha = nn.Parameter(torch.ones(a_shape))
            self.beta = nn.Parameter(torch.ones(self.L, self.S, 3).masked_fill(~self.mask, -50.0))
        else:
            self.alpha = nn.Parameter(1e-3 * torch.randn(a_shape))
            self.beta = nn.Parameter(1e-3 * torch.randn(self.L, self.S, 3))

    # ------------------------------------------------------------------
    def arch_parameters(self) -> List[nn.Parameter]:
        return [self.alpha, self.beta]

    def weight_parameters(self) -> List[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def num_weight_params(self) -> int:
        return sum(p.numel() for p in self.weight_parameters())

    def alpha_weights(self) -> torch.Tensor:
        return torch.softmax(self.alpha, dim=-1)

    def edge_weights(self) -> torch.Tensor:
        """The weights the mixed edges compute with: softmax(alpha), plus ``aux_skip`` on
        skip_connect when the search sets one (DARTS-'s auxiliary skip: since that op is the
        identity, ``w_skip + aux`` adds ``aux * x`` to every edge, outside the softmax)."""
        w = self.alpha_weights()
        aux = getattr(self, "aux_skip", 0.0)
        if aux:
            k = self.primitives.index("skip_connect")
            w = w + aux * torch.nn.functional.one_hot(torch.tensor(k), w.shape[-1]).to(w)
        return w

    def beta_weights(self) -> torch.Tensor:
        return masked_softmax(self.beta, self.mask)

    def alpha_for(self, layer: int, level: int, alpha: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The alpha (edges, ops) that the cell of grid node (layer, level) reads:
        its layer's (LWAS), the single shared one (tied) or its own (cell).
        ``alpha`` may be a transform of ``self.alpha`` of the same shape (its softmax)."""
        a = self.alpha if alpha is None else alpha
        mode = self.cfg.space.alpha_sharing
        if mode == "layer":
            return a[layer]
        if mode == "tied":
            return a[0]
        return a[layer, level]

    def alpha_readers(self) -> Dict[Tuple[int, int], int]:
        """{grid node (layer, level): the flat index of the alpha slice its cell reads}, asked from
        :meth:`alpha_for` itself with a stand-in alpha whose every cell-sized slice holds its index."""
        n = int(torch.tensor(self.alpha.shape[:-2]).prod())
        ids = torch.arange(n, dtype=torch.float32).reshape(*self.alpha.shape[:-2], 1, 1).expand(self.alpha.shape)
        return {(l, s): int(self.alpha_for(l, s, ids)[0, 0]) for l, s in self.nodes}

    def _run_cell(self, cell: nn.Module, s0, s1, w, naive: bool):
        if self.cfg.space.checkpoint_cells and self.training and torch.is_grad_enabled():
            return checkpoint(_RecomputeKeepsBNStats(cell), s0, s1, w, naive, use_reentrant=False)
        return cell(s0, s1, w, naive)


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


__all__ = ["SuperNetBase", "alpha_shape"]
