"""Random architectures from the search space: the baseline every search must beat.

A genotype drawn here is what the derivation could have produced, drawn
uniformly: per layer (LWAS: one cell per layer) and block, two distinct inputs
among the earlier states, each with one non-``none`` op; and a width path drawn
uniformly from every legal path (:func:`hinas_lib.grid.all_paths`). This is the
random-sampling baseline of Li & Talwalkar (2019) and Yu et al. (2020) for the
HiNAS space.
"""
from __future__ import annotations

import random
from typing import Sequence

from .genotype import Genotype
from .grid import DEFAULT_WIDTH_FACTORS, all_paths


def random_genotype(rng: random.Random, layers: int, blocks: int, primitives: Sequence[str],
                    width_factors: Sequence[float] = DEFAULT_WIDTH_FACTORS) -> Genotype:
    """A genotype drawn uniformly from the space (``rng`` makes it reproducible)."""
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng: expected random.Random, got {type(rng).__name__}")
    ops = [p for p in primitives if p != "none"]  # primitives keeps its order: never a set()
    if not ops:
        raise ValueError("primitives: need at least one op other than 'none'")
    cells = []
    for _ in range(layers):
        cell = []
        for i in range(blocks):
            inputs = sorted(rng.sample(range(2 + i), 2))
            cell.append(tuple((rng.choice(ops), j) for j in inputs))
        cells.append(tuple(cell))
    path = rng.choice(all_paths(layers, len(width_factors)))
    return Genotype(cells=tuple(cells), path=tuple(path), width_factors=tuple(width_factors))


__all__ = ["random_genotype"]
