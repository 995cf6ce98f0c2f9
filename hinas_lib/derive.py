"""Derivation: from continuous (alpha, beta) to a discrete genotype.

* Cells: for every block keep the two incoming edges whose strongest non-`none`
  op has the largest weight, each with that op (DARTS rule).
* Width path: Viterbi over beta (see :mod:`hinas_lib.grid`).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import torch

from .genotype import Genotype, edge_index
from .grid import viterbi


def edge_choices(alpha: torch.Tensor, primitives: Sequence[str]) -> List[Tuple[float, int]]:
    """Per edge of one cell's (edges, ops) logits: (its strength, its op), the op being the one
    other than ``none`` with the largest softmax weight (the earlier op on a tie), the strength
    that weight (softmax over all ops, ``none`` included)."""
    w = torch.softmax(alpha.detach().double().cpu(), dim=-1)
    keep = [k for k, p in enumerate(primitives) if p != "none"]
    out = []
    for e in range(w.shape[0]):
        best_k = max(keep, key=lambda k: (float(w[e, k]), -k))
        out.append((float(w[e, best_k]), best_k))
    return out


def derive_cell(alpha: torch.Tensor, primitives: Sequence[str], blocks: int) -> Tuple[Tuple[Tuple[str, int], ...], ...]:
    """``alpha``: (edges, ops) logits of one cell."""
    choices = edge_choices(alpha, primitives)
    edges = edge_index(blocks)
    cell = []
    for i in range(blocks):
        cands = []
        for e, (b, j) in enumerate(edges):
            if b != i:
                continue
            strength, best_k = choices[e]
            cands.append((strength, -j, primitives[best_k], j))
        cands.sort(reverse=True)  # strongest first; ties prefer the earlier input
        top = sorted(cands[:2], key=lambda c: c[3])
        cell.append(tuple((op, j) for _, _, op, j in top))
    return tuple(cell)


def derive_genotype(net) -> Genotype:
    """The genotype of a :class:`~hinas_lib.supernet.CompactSuperNet` (or anything with
    the same ``alpha_for``, ``beta``, ``mask`` and config): each layer's cell from
    the alpha its node on the Viterbi path reads."""
    sp = net.cfg.space
    path, _ = viterbi(net.beta, net.mask)
    cells: List = [derive_cell(net.alpha_for(l, path[l]), sp.primitives, sp.blocks) for l in range(sp.layers)]
    return Genotype(cells=tuple(cells), path=tuple(path), width_factors=sp.width_factors)
