"""Grey or colour denoising of additive white Gaussian noise (the paper's BSD500 task)."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch

from .. import data
from ..degrade import add_gaussian_noise, noise_seed
from .base import ResidualHead, Task, register_task


@register_task
class Denoise(Task):
    """Additive white Gaussian noise, sigma on the 0-255 scale, unclipped (as
    DnCNN and HiNAS train). Training sigma per patch from ``sigmas`` (the
    authors draw one of {30, 50, 70}), or uniform in ``sigma_range`` (blind)."""

    name = "denoise"
    level_name = "sigma"
    level_label = "noise sigma (0-255)"
    default_channels = 1
    input_label = "noisy"
    baseline_label = "NLM"
    pixel_loss = "mse"
    level_flag = "--sigma"
    course_entry = "denoise-s30"
    report_title = "Grey denoising (PSNR dB / SSIM, whole image)"
    report_columns = (("input", "noisy"), ("baseline", "NLM (skimage)"), ("bm3d", "BM3D"))
    report_ours = (("ours", "HiNAS (ours)"), ("ours_x8", "HiNAS x8 self-ensemble"))
    # the DnCNN authors' README, quoted in ../shared/README.md; not measured here
    published_note = ("Published, on BSD68 (quoted, not measured here): sigma 15: BM3D 31.07, DnCNN-S 31.73; "
                      "sigma 25: BM3D 28.57, DnCNN-S 29.23; sigma 50: BM3D 25.62, DnCNN-S 26.23")

    def level(self, override=None) -> float:
        return float(self.cfg.eval_sigma if override is None else override)

    def describe_level(self, level=None) -> str:
        return f"sigma={self.level(level):g}"

    @classmethod
    def level_changes(cls, level) -> Dict:
        # sigma_range wins over sigmas when set: a blind config would stay blind
        return {"sigmas": [float(level)], "sigma_range": None, "eval_sigma": float(level)}

    def draw_sigma(self, generator: Optional[torch.Generator]) -> float:
        if self.cfg.sigma_range is not None:
            lo, hi = self.cfg.sigma_range
            return lo + (hi - lo) * float(torch.rand((), generator=generator))
        sig = self.cfg.sigmas
        return float(sig[int(torch.randint(len(sig), (1,), generator=generator))])

    def degrade(self, gt, generator):
        return add_gaussian_noise(gt, self.draw_sigma(generator), generator=generator)

    def eval_pair(self, gt, name, level=None):
        sigma = self.level(level)
        g = torch.Generator().manual_seed(noise_seed(name, sigma))
        return add_gaussian_noise(gt, sigma, generator=g), gt

    def head(self, filters):
        return ResidualHead(filters, self.channels)

    def authors_output(self, lq, pred, *, supernet):
        out = lq - pred
        return torch.sigmoid(out) if supernet else out

    def baseline(self, lq, level=None):
        from skimage.restoration import denoise_nl_means  # noqa: PLC0415 (slow import, used rarely)
        img = noisy_array(lq)
        s = self.level(level) / 255.0
        # skimage's recommended setting for a known noise level (fast mode, h = 0.8 sigma)
        out = denoise_nl_means(img, h=0.8 * s, sigma=s, fast_mode=True, patch_size=5, patch_distance=6,
                               channel_axis=-1 if img.ndim == 3 else None)
        return data.to_tensor(out.astype(np.float32)).clamp(0, 1)


def noisy_array(lq: torch.Tensor) -> np.ndarray:
    """The noisy (C,H,W) tensor as the HxW or HxWxC float64 array a baseline denoises: *not*
    clamped to [0, 1], so that a baseline sees the noisy image the network sees. Clamping
    biases the noise where the image is dark or bright (its mean there is no longer 0), which
    a method told the noise is Gaussian at sigma cannot undo: given a clamped input, BM3D
    scored 0.38 dB less on Set12 at sigma 50 (1.1 dB less on the cameraman) and 0.93 dB
    less at sigma 70."""
    return data.to_numpy(lq, clamp=False).astype(np.float64)


def bm3d_denoise(lq: torch.Tensor, sigma: float) -> torch.Tensor:
    """BM3D (the optional ``bm3d`` package from PyPI) at a known noise level, grey or RGB."""
    try:
        import bm3d  # noqa: PLC0415 (optional dependency)
    except ImportError as e:
        raise ImportError("the BM3D baseline needs the optional 'bm3d' package: pip install bm3d") from e
    img = noisy_array(lq)
    s = float(sigma) / 255.0
    out = bm3d.bm3d_rgb(img, s) if img.ndim == 3 else bm3d.bm3d(img, s)
    return data.to_tensor(np.asarray(out, dtype=np.float32)).clamp(0, 1)


Denoise.extra_baselines = {"bm3d": bm3d_denoise}
