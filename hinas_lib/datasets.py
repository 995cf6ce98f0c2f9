"""Datasets of (degraded, clean) pairs, for any :class:`~hinas_lib.tasks.Task`.

* :class:`PatchDataset`: random training patches. Sample ``i`` uses image
  ``i % len(images)`` at a random position, optionally rescaled, and one of
  the 8 flips/rotations (the authors' 4 rotations x mirror); the task degrades
  the clean patch (noise, bicubic downscaling, ...).
* :class:`EvalDataset`: whole images with the task's deterministic evaluation
  degradation (noise seeded by the image name, exact bicubic LR).

Randomness comes from ``torch`` (the ``generator`` attribute, or the global
RNG when it is None); :mod:`hinas_lib.streams` seeds it per sample.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

import torch.nn.functional as F

from .data import to_channels

RESCALE_PROB = 0.5  # the authors' RandomRescaleCrop rescales half the samples


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th of the 8 flips/rotations (k in 0..7) of the last two dims:
    rotate by ``k % 4`` quarter turns, then mirror left-right when ``k >= 4``."""
    if not 0 <= k < 8:
        raise ValueError(f"dihedral index must be in 0..7, got {k}")
    y = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(y, dims=(-1,)) if k >= 4 else y


def undo_dihedral(y: torch.Tensor, k: int) -> torch.Tensor:
    """The inverse of :func:`dihedral`: ``undo_dihedral(dihedral(x, k), k) == x``."""
    if not 0 <= k < 8:
        raise ValueError(f"dihedral index must be in 0..7, got {k}")
    y = torch.flip(y, dims=(-1,)) if k >= 4 else y
    return torch.rot90(y, -(k % 4), dims=(-2, -1))


def _as_tensors(images: Sequence[np.ndarray], names: Sequence[str], channels: int) -> List[torch.Tensor]:
    if len(images) != len(names):
        raise ValueError(f"got {len(images)} images but {len(names)} names")
    if not images:
        raise ValueError("no images given")
    return [torch.from_numpy(np.ascontiguousarray(
        np.atleast_3d(to_channels(im, channels, source=f"image {n!r}")).transpose(2, 0, 1)))
        for im, n in zip(images, names)]


class PatchDataset(Dataset):
    """Random training pairs ``(lq, gt)`` of a task.

    Args:
        images, names: the clean pictures (HxW or HxWx3 arrays) and their names.
        task: a :class:`~hinas_lib.tasks.Task`; it sets the channels, the target
            patch side (``task.gt_crop(crop)``) and the degradation.
        crop: side of the *input* patch (for SR the low-resolution side).
        augment: a random flip/rotation per patch.
        length: the virtual epoch length (default 32 patches per image).
        rescale: ``(low, high)``: half the patches are the image rescaled by a
            factor uniform in that range (bicubic, antialiased), as the authors'
            denoising data; done on a window of ``crop / factor`` pixels, not the
            whole image, which is the same picture up to the filter's border.
    """

    def __init__(self, images: Sequence[np.ndarray], names: Sequence[str], task, crop: int, *,
                 augment: bool = True, length: Optional[int] = None,
                 generator: Optional[torch.Generator] = None, rescale: Optional[Tuple[float, float]] = None):
        if crop < 1:
            raise ValueError(f"crop must be >= 1, got {crop}")
        self.task, self.crop = task, int(crop)
        self.gt_crop = task.gt_crop(self.crop)
        self.names = list(names)
        self.images = _as_tensors(images, names, task.channels)
        for name, im in zip(self.names, self.images):
            h, w = im.shape[-2:]
            if h < self.gt_crop or w < self.gt_crop:
                what = f"{self.gt_crop}x{self.gt_crop} crop" + (
                    f" (input {self.crop} x scale {task.scale})" if task.scale > 1 else "")
                raise ValueError(f"image {name!r} is {h}x{w}, smaller than the {what}")
        self.augment, self.rescale = augment, rescale
        self.length = int(length) if length is not None else 32 * len(self.images)
        self.generator = generator

    def __len__(self) -> int:
        return self.length

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.generator))

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} samples")
        img = self.images[index % len(self.images)]
        h, w = img.shape[-2:]
        side = self.gt_crop
        if self.rescale is not None and float(torch.rand((), generator=self.generator)) < RESCALE_PROB:
            lo, hi = self.rescale
            factor = lo + (hi - lo) * float(torch.rand((), generator=self.generator))
            side = min(h, w, max(1, round(self.gt_crop / factor)))  # the window that becomes the patch
        top, left = self._randint(h - side + 1), self._randint(w - side + 1)
        patch = img[:, top:top + side, left:left + side]
        if side != self.gt_crop:
            patch = F.interpolate(patch[None], size=(self.gt_crop, self.gt_crop), mode="bicubic",
                                  antialias=True, align_corners=False)[0].clamp(0, 1)
        if self.augment:
            patch = dihedral(patch, self._randint(8))
        patch = patch.contiguous()
        return self.task.degrade(patch, self.generator), patch


class EvalDataset(Dataset):
    """Whole images with the task's deterministic degradation: ``(lq, gt, name)``.

    ``level`` overrides the task's evaluation level (e.g. another noise sigma).
    Images differ in size: use batch size 1.
    """

    def __init__(self, images: Sequence[np.ndarray], names: Sequence[str], task, *, level=None):
        self.task, self.level = task, level
        self.names = list(names)
        self.images = _as_tensors(images, names, task.channels)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor, str]:
        name = self.names[index]
        lq, gt = self.task.eval_pair(self.images[index], name, self.level)
        return lq, gt, name


__all__ = ["PatchDataset", "EvalDataset", "dihedral"]
