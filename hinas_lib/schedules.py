"""Learning-rate schedules: one definition each, used by search and retraining."""
from __future__ import annotations

import math


def cosine(t: float, T: float, lr_max: float, lr_min: float) -> float:
    """Cosine annealing from ``lr_max`` at ``t = 0`` to ``lr_min`` at ``t = T``."""
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * t / T))


__all__ = ["cosine"]
