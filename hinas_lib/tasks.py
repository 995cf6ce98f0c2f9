"""Restoration tasks as objects: everything that differs between denoising and
super-resolution, in one place.

A :class:`Task` owns the degradation that makes training pairs and evaluation
pairs, the network's output head, the training loss, the metric conventions
(Y channel, border shave), the classical baseline it is compared with and its
output scale. The rest of the library asks the task and never tests its name.

Adding a task (deblurring, JPEG artefacts, ...) means one subclass here,
registered in :data:`TASKS`, a data script and its tests.
"""
from __future__ import annotations

from typing import Callable, ClassVar, Dict, Optional, Tuple, Type

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import data
from .datasets import EvalDataset, PatchDataset
from .degrade import add_gaussian_noise, bicubic_downscale, bicubic_upscale, modcrop, noise_seed
from .losses import RestorationLoss


class Task:
    """The interface every task implements (see the module docstring).

    Built from a :class:`~hinas_lib.config.TaskConfig` (``cfg``): its
    ``channels``, and the task's own fields (``sigmas``/``sigma_range``/
    ``eval_sigma`` for noise, ``scale`` for SR).
    """

    name: ClassVar[str]
    level_name: ClassVar[str]        # what the task's level is called: "sigma", "scale"
    level_label: ClassVar[str]       # ... for people (widgets, plots)
    level_choices: ClassVar[Optional[Tuple]] = None  # the levels there are, if a fixed set
    default_channels: ClassVar[int]  # 1 grey, 3 RGB
    input_label: ClassVar[str]       # the degraded input in tables ("noisy", "bicubic")
    baseline_label: ClassVar[str]    # the classical method it is compared with
    baseline_is_input: ClassVar[bool] = False  # the baseline is the input itself (bicubic SR)
    pixel_loss: ClassVar[str] = "mse"
    # further classical methods a table may add: name -> fn(lq, level) -> output
    extra_baselines: ClassVar[Dict[str, Callable]] = {}

    def __init__(self, cfg):
        self.cfg = cfg
        self.channels = int(cfg.channels)

    # ---- configuration -------------------------------------------------------
    @classmethod
    def check(cls, cfg) -> Optional[Tuple[str, str]]:
        """``(field, problem)`` if ``cfg`` is not valid for this task, else None."""
        return None

    @property
    def scale(self) -> int:
        """Output pixels per input pixel along each axis."""
        return 1

    def level(self, override: Optional[float] = None):
        """The evaluation level (noise sigma, SR scale), ``override`` if given."""
        raise NotImplementedError

    def describe_level(self, level=None) -> str:
        raise NotImplementedError

    @classmethod
    def level_changes(cls, level) -> Dict:
        """The TaskConfig fields that train and evaluate at ``level``."""
        raise NotImplementedError

    # ---- data ----------------------------------------------------------------
    def gt_crop(self, crop: int) -> int:
        """Side of the target patch for an input patch of side ``crop``."""
        return crop * self.scale

    def degrade(self, gt: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        """A random training degradation of one target patch (C,H,W)."""
        raise NotImplementedError

    def eval_pair(self, gt: torch.Tensor, name: str, level=None) -> Tuple[torch.Tensor, torch.Tensor]:
        """A deterministic ``(lq, gt)`` evaluation pair for a whole image."""
        raise NotImplementedError

    def patch_dataset(self, images, crop: int, *, augment: bool = True, length: Optional[int] = None,
                      rescale: Optional[Tuple[float, float]] = None):
        """Random training pairs from ``(name, array)`` images; ``crop`` is the input patch side
        (``rescale``: see :class:`~hinas_lib.datasets.PatchDataset`)."""
        return PatchDataset([a for _, a in images], [n for n, _ in images], self, crop,
                            augment=augment, length=length, rescale=rescale)

    def eval_dataset(self, images, level=None) -> EvalDataset:
        """Whole-image ``(lq, gt, name)`` triples of ``(name, array)`` images."""
        return EvalDataset([a for _, a in images], [n for n, _ in images], self, level=level)

    # ---- network -------------------------------------------------------------
    def head(self, filters: int) -> nn.Module:
        """The compact design's output head: ``head(features, lq) -> output``."""
        raise NotImplementedError

    def loss(self, ssim_weight: Optional[float] = None) -> RestorationLoss:
        """The training loss (``ssim_weight`` overrides the config's, e.g. for retraining)."""
        w = self.cfg.ssim_weight if ssim_weight is None else ssim_weight
        return RestorationLoss(self.pixel_loss, w, self.cfg.loss_form)

    # ---- the authors' output (hinas_lib.authors) ---------------------------------
    def authors_clf(self, c_in: int) -> nn.Module:
        """The authors' last layer: a 3x3 conv (with bias) to the output channels
        (times scale^2 and a pixel shuffle for SR)."""
        if self.scale == 1:
            return nn.Conv2d(c_in, self.channels, 3, padding=1)
        return nn.Sequential(nn.Conv2d(c_in, self.channels * self.scale ** 2, 3, padding=1),
                             nn.PixelShuffle(self.scale))

    def authors_output(self, lq: torch.Tensor, pred: torch.Tensor, *, supernet: bool) -> torch.Tensor:
        """The authors' residual output from the decoder's ``pred``; their supernet
        also squashes it with a sigmoid (their retraining network does not)."""
        raise NotImplementedError

    # ---- evaluation ----------------------------------------------------------
    @property
    def metric_kwargs(self) -> Dict:
        """``crop_border`` / ``test_y_channel`` for :mod:`hinas_lib.metrics`."""
        return {"crop_border": 0, "test_y_channel": False}

    @property
    def metric_label(self) -> str:
        return "all pixels"  # no border shaved (SR shaves `scale` pixels)

    def input_view(self, lq: torch.Tensor) -> torch.Tensor:
        """The degraded input at the output's size, to score it like an output."""
        return lq.clamp(0, 1)

    def baseline(self, lq: torch.Tensor, level=None) -> torch.Tensor:
        """The classical method's output for one (C,H,W) input."""
        raise NotImplementedError


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
        img = data.to_numpy(lq)
        s = self.level(level) / 255.0
        # skimage's recommended setting for a known noise level (fast mode, h = 0.8 sigma)
        out = denoise_nl_means(img, h=0.8 * s, sigma=s, fast_mode=True, patch_size=5, patch_distance=6,
                               channel_axis=-1 if img.ndim == 3 else None)
        return data.to_tensor(out.astype(np.float32)).clamp(0, 1)


def bm3d_denoise(lq: torch.Tensor, sigma: float) -> torch.Tensor:
    """BM3D (the optional ``bm3d`` package from PyPI) at a known noise level, grey or RGB."""
    try:
        import bm3d  # noqa: PLC0415 (optional dependency)
    except ImportError as e:
        raise ImportError("the BM3D baseline needs the optional 'bm3d' package: pip install bm3d") from e
    img = data.to_numpy(lq).astype(np.float64)
    s = float(sigma) / 255.0
    out = bm3d.bm3d_rgb(img, s) if img.ndim == 3 else bm3d.bm3d(img, s)
    return data.to_tensor(np.asarray(out, dtype=np.float32)).clamp(0, 1)


Denoise.extra_baselines = {"bm3d": bm3d_denoise}

SR_SCALES = (2, 3, 4)


class SuperResolution(Task):
    """Bicubic downscaling by ``scale`` (MATLAB-exact, on 8-bit levels like the
    benchmark LR files); scored on the Y channel with ``scale`` pixels shaved."""

    name = "sr"
    level_name = "scale"
    level_label = "SR scale"
    default_channels = 3
    input_label = "bicubic"
    baseline_label = "bicubic"
    baseline_is_input = True
    pixel_loss = "l1"
    level_choices = SR_SCALES

    @classmethod
    def check(cls, cfg):
        if cfg.scale not in SR_SCALES:
            return "task.scale", f"the pixel-shuffle head supports x2, x3, x4; got {cfg.scale}"
        return None

    @property
    def scale(self) -> int:
        return int(self.cfg.scale)

    def level(self, override=None) -> int:
        if override is not None and int(override) != self.scale:
            raise ValueError(f"this is an x{self.scale} SR task; x{override} was asked for")
        return self.scale

    def describe_level(self, level=None) -> str:
        return f"x{self.level(level)}"

    @classmethod
    def level_changes(cls, level) -> Dict:
        return {"scale": int(level)}

    def degrade(self, gt, generator):
        return bicubic_downscale(gt, self.scale, emulate_uint8=True).contiguous()

    def eval_pair(self, gt, name, level=None):
        hr = modcrop(gt, self.level(level)).contiguous()
        return bicubic_downscale(hr, self.scale, emulate_uint8=True).contiguous(), hr

    def head(self, filters):
        return PixelShuffleHead(filters, self.channels, self.scale)

    def authors_output(self, lq, pred, *, supernet):
        # their supernet upsamples bilinearly and squashes; their retraining network bicubic, no sigmoid
        if supernet:
            return torch.sigmoid(F.interpolate(lq, scale_factor=self.scale, mode="bilinear") + pred)
        return F.interpolate(lq, size=pred.shape[-2:], mode="bicubic") + pred

    @property
    def metric_kwargs(self):
        return {"crop_border": self.scale, "test_y_channel": self.channels == 3}

    @property
    def metric_label(self) -> str:
        return f"Y channel, shave {self.scale}" if self.channels == 3 else f"shave {self.scale}"

    def input_view(self, lq):
        return bicubic_upscale(lq, self.scale).clamp(0, 1)

    def baseline(self, lq, level=None):
        return self.input_view(lq)


# ---------------------------------------------------------------------------
# Output heads of the compact design
# ---------------------------------------------------------------------------

class ResidualHead(nn.Module):
    """Residual learning: the network predicts the noise, output = x - noise."""

    def __init__(self, filters: int, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(filters, channels, 3, padding=1)

    def forward(self, feat, x):
        return x - self.conv(feat)


class PixelShuffleHead(nn.Module):
    """Sub-pixel (pixel-shuffle) upsampling plus a bicubic skip of the LR input,
    so the network learns the high-frequency residual."""

    def __init__(self, filters: int, channels: int, scale: int):
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(filters, channels * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, feat, x):
        up = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return self.shuffle(self.conv(feat)) + up


TASKS: Dict[str, Type[Task]] = {"denoise": Denoise, "sr": SuperResolution}


def task_class(name: str) -> Type[Task]:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {sorted(TASKS)}")
    return TASKS[name]


def get_task(cfg) -> Task:
    """The task object of a :class:`~hinas_lib.config.TaskConfig` (or a whole Config)."""
    inner = getattr(cfg, "task", None)
    if not isinstance(inner, str):  # a whole Config: its task section
        cfg = inner
    return task_class(cfg.task)(cfg)


__all__ = ["Task", "Denoise", "SuperResolution", "TASKS", "SR_SCALES", "task_class", "get_task", "bm3d_denoise",
           "ResidualHead", "PixelShuffleHead"]
