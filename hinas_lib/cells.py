"""Mixed ops and cells: the search cell (every edge a softmax-weighted mixture)
and the fixed cell a genotype describes.

A cell has two inputs ``s0`` (the older one, from layer l-2) and ``s1`` (the
newer one, layer l-1), then ``B`` blocks: block i sums its incoming edges from
``s0, s1, b_0 .. b_{i-1}``. Two interfaces (``preprocess``):

* compact (our variant): each input is mapped to the cell width ``C`` by a 1x1
  preprocessing conv, and the output is a 1x1 conv over the concatenated
  blocks, back to ``C`` channels;
* the authors': the inputs already have ``C`` channels (the network's routers
  made them so) and the output is the concatenation of the blocks, ``B*C``
  channels.

This file is the straightforward formulation the course teaches; the search
uses a faster cell computing the same function (:mod:`hinas_lib.fused`).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import nn

from .genotype import edge_index
from .ops import Zero, build_op, cat_channels, router

# Activations that carry no parameters may be computed once per input state
# and shared by every op that starts with them (saves compute and memory).
SHAREABLE_ACTS = (nn.LeakyReLU, nn.ReLU)


def same_act(a: nn.Module, b: nn.Module) -> bool:
    return type(a) is type(b) and getattr(a, "negative_slope", None) == getattr(b, "negative_slope", None)


def _leading_act(op: nn.Module) -> Optional[nn.Module]:
    if isinstance(op, nn.Sequential) and len(op) > 0 and isinstance(op[0], SHAREABLE_ACTS):
        return op[0]
    return None


class MixedOp(nn.Module):
    """sum_k softmax(alpha)_k * op_k(x) over the primitives.

    The ``none`` op contributes exactly zero, so it is not run at all; its alpha
    still takes part in the softmax (it competes for weight, as in DARTS).
    """

    def __init__(self, channels: int, primitives: Sequence[str], affine: bool = False, act: str = "leaky_relu"):
        super().__init__()
        self.primitives = list(primitives)
        self.active = [k for k, p in enumerate(self.primitives) if p != "none"]
        self.ops = nn.ModuleList(build_op(self.primitives[k], channels, affine, act) for k in self.active)
        acts = [_leading_act(op) for op in self.ops]
        self.act_fn = next((a for a in acts if a is not None), None)
        # only ops whose leading activation is the shared one may take its output
        self.preact_ok = [a is not None and same_act(a, self.act_fn) for a in acts]
        # op bodies without their leading activation (same modules, plain list so
        # they are not registered twice)
        self._bodies = [nn.Sequential(*list(op)[1:]) if pre else op for op, pre in zip(self.ops, self.preact_ok)]

    def forward(self, x: torch.Tensor, weights: torch.Tensor, x_act: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``weights`` is softmax(alpha) over *all* primitives; ``x_act`` = act(x) if the caller shares it."""
        out = None
        for k, op, body, pre in zip(self.active, self.ops, self._bodies, self.preact_ok):
            y = body(x_act) if pre and x_act is not None else op(x)
            term = y * weights[k]
            # in-place accumulation: `out` is not needed by any backward
            out = term if out is None else out.add_(term)
        return out

    def forward_naive(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """The textbook sum over every primitive, `none` included (for tests)."""
        terms = []
        it = iter(self.ops)
        for k, p in enumerate(self.primitives):
            y = Zero()(x) if p == "none" else next(it)(x)
            terms.append(weights[k] * y)
        return sum(terms)


def _interface(c_prev_prev: int, c_prev: int, channels: int, blocks: int, preprocess: bool, affine: bool,
               act: str):
    """(pre0, pre1, out) of a cell: 1x1 convs (compact) or identities (the authors')."""
    if not preprocess:
        if c_prev_prev != channels or c_prev != channels:
            raise ValueError(f"a cell without preprocessing needs inputs of {channels} channels, "
                             f"got {c_prev_prev} and {c_prev}")
        return nn.Identity(), nn.Identity(), nn.Identity()
    return (router(c_prev_prev, channels, affine, act), router(c_prev, channels, affine, act),
            nn.Conv2d(channels * blocks, channels, 1, bias=False))


class SearchCell(nn.Module):
    """A search cell: one :class:`MixedOp` per edge, edges in :func:`edge_index` order."""

    def __init__(self, c_prev_prev: int, c_prev: int, channels: int, blocks: int,
                 primitives: Sequence[str], act: str = "leaky_relu", affine: bool = False,
                 preprocess: bool = True):
        super().__init__()
        self.blocks = blocks
        self.channels = channels
        self.pre0, self.pre1, out = _interface(c_prev_prev, c_prev, channels, blocks, preprocess, affine, act)
        self.edges = nn.ModuleList(MixedOp(channels, primitives, affine, act) for _ in edge_index(blocks))
        # registered after the edges: saved optimiser states index the parameters in this order
        self.out = out
        self.share_act = any(any(m.preact_ok) for m in self.edges)
        self.act_fn = next((m.act_fn for m in self.edges if m.act_fn is not None), None)

    def forward(self, s0, s1, weights: torch.Tensor, naive: bool = False):
        """``weights``: softmax(alpha) of shape (edges, primitives); ``naive``: the
        textbook sum over every primitive, `none` included."""
        states: List[torch.Tensor] = [self.pre0(s0), self.pre1(s1)]
        acts: List[Optional[torch.Tensor]] = []  # act(state), computed once per state
        e = 0
        for i in range(self.blocks):
            total = None
            for j in range(2 + i):
                if naive:
                    y = self.edges[e].forward_naive(states[j], weights[e])
                else:
                    if self.share_act and len(acts) <= j:
                        acts.append(self.act_fn(states[j]))
                    y = self.edges[e](states[j], weights[e], acts[j] if self.share_act else None)
                total = y if total is None else total + y
                e += 1
            states.append(total)
        return self.out(cat_channels(states[2:]))


class FixedCell(nn.Module):
    """The discrete cell of a genotype (BN affine, as for retraining)."""

    def __init__(self, c_prev_prev: int, c_prev: int, channels: int, cell_genotype,
                 act: str = "leaky_relu", affine: bool = True, preprocess: bool = True):
        super().__init__()
        self.pre0, self.pre1, out = _interface(c_prev_prev, c_prev, channels, len(cell_genotype), preprocess,
                                               affine, act)
        self.inputs = [[idx for _, idx in block] for block in cell_genotype]
        self.ops = nn.ModuleList(
            nn.ModuleList(build_op(op, channels, affine, act) for op, _ in block) for block in cell_genotype
        )
        self.out = out

    def forward(self, s0, s1):
        states = [self.pre0(s0), self.pre1(s1)]
        for ops, idxs in zip(self.ops, self.inputs):
            states.append(sum(op(states[j]) for op, j in zip(ops, idxs)))
        return self.out(cat_channels(states[2:]))


__all__ = ["MixedOp", "SearchCell", "FixedCell", "SHAREABLE_ACTS", "same_act"]
