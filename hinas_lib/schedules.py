"""Learning-rate schedules and selection scores: one definition each, used by
search and retraining.

* :func:`cosine`: our default, annealed once from ``lr_max`` to ``lr_min``.
* :func:`poly_cosine`: the authors' search schedule (their
  ``PolyCosineAnnealingLR``): a cosine of period ``2 * t_max`` epochs under a
  polynomial envelope ``(1 - e/E)^power``; stepped at the start of each epoch,
  so epoch ``e`` (1-based) uses ``poly_cosine(e, ...)``.
* :func:`poly`: the authors' retraining schedule (their ``PolynormialLR``),
  stepped at the start of each iteration: iteration ``k`` (1-based) uses
  ``lr (1 - k/K)^power``.

:data:`SEARCH_LR` and :data:`TRAIN_LR` map a config's schedule name
(``search.w_lr_schedule``, ``train.schedule``) to the learning rate of a 0-based
epoch or step; the config accepts exactly their names.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict


def cosine(t: float, T: float, lr_max: float, lr_min: float) -> float:
    """Cosine annealing from ``lr_max`` at ``t = 0`` to ``lr_min`` at ``t = T``."""
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * t / T))


def poly_cosine(e: float, E: float, lr_max: float, lr_min: float, t_max: float, power: float) -> float:
    """The authors' search schedule at epoch ``e`` of ``E``."""
    return lr_min + (lr_max - lr_min) * (1 + math.cos(math.pi * e / t_max)) / 2 * (1 - e / E) ** power


def poly(k: float, K: float, lr_max: float, power: float) -> float:
    """Polynomial decay to 0 at ``k = K``."""
    return lr_max * max(0.0, 1 - k / K) ** power


# search.w_lr_schedule -> lr(search section, 0-based epoch); the authors' poly_cosine is stepped
# at the start of each (1-based) epoch, as theirs
SEARCH_LR: Dict[str, Callable[[Any, int], float]] = {
    "cosine": lambda s, e: cosine(e, s.epochs, s.w_lr, s.w_lr_min),
    "poly_cosine": lambda s, e: poly_cosine(e + 1, s.epochs, s.w_lr, s.w_lr_min, s.lr_t_max, s.lr_power),
}

# train.schedule -> lr(train section, 0-based step, total steps); poly is stepped at the start
# of each (1-based) iteration, as theirs
TRAIN_LR: Dict[str, Callable[[Any, int, int], float]] = {
    "cosine": lambda t, k, K: cosine(k, K, t.lr, t.lr_min),
    "poly": lambda t, k, K: poly(k + 1, K, t.lr, t.lr_power),
    "constant": lambda t, k, K: t.lr,
}


def selection_score(psnr: float, ssim: float, by: str) -> float:
    """How a validated epoch is ranked: PSNR, or the authors' SSIM + PSNR/100."""
    return ssim + psnr / 100 if by == "ssim_psnr" else psnr


__all__ = ["cosine", "poly_cosine", "poly", "selection_score", "SEARCH_LR", "TRAIN_LR"]
