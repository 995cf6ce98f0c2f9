"""Training losses of HiNAS: a pixel loss (MSE or L1, the task's choice:
:meth:`hinas_lib.tasks.Task.loss`) plus ``w`` times a log-SSIM term, in one of two
forms (``task.loss_form``, each design's own):

* ``compact``: ``pixel + w * -log((1 + SSIM) / 2)``, SSIM over the valid window
  positions; (1 + SSIM)/2 maps SSIM from [-1, 1] into [0, 1] so the log stays
  finite; ``w = 0`` skips SSIM;
* ``authors`` (hkzhang91/HiNAS): ``(pixel + w * -log10(SSIM)) / 2``, SSIM averaged
  over the zero-padded image (``padding="same"``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .metrics import ssim_torch


LOSS_FORMS = ("compact", "authors")


class RestorationLoss(nn.Module):
    """pixel loss + w * log-SSIM term (see the module docstring for the two forms)."""

    def __init__(self, pixel: str = "mse", ssim_weight: float = 1.0, form: str = "compact"):
        super().__init__()
        if pixel not in ("mse", "l1"):
            raise ValueError(f"pixel loss must be 'mse' or 'l1', got {pixel!r}")
        if form not in LOSS_FORMS:
            raise ValueError(f"loss form must be one of {LOSS_FORMS}, got {form!r}")
        self.pixel, self.ssim_weight, self.form = pixel, ssim_weight, form

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # in float32 even under autocast: SSIM's variances are differences of means, which
        # bf16/fp16 convolutions round below zero, and the log then turns them into NaN
        with torch.autocast(pred.device.type, enabled=False):
            return self._loss(pred.float(), target.float())

    def _loss(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pix = F.mse_loss(pred, target) if self.pixel == "mse" else F.l1_loss(pred, target)
        if self.form == "authors":
            s = ssim_torch(pred, target, data_range=1.0, padding="same")
            return (pix + self.ssim_weight * -torch.log10(s)) / 2
        if self.ssim_weight == 0:
            return pix
        s = ssim_torch(pred, target, data_range=1.0)
        return pix + self.ssim_weight * -torch.log((1.0 + s).clamp_min(1e-8) / 2.0)
