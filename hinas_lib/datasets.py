"""Datasets of (degraded, clean) pairs, for any :class:`~hinas_lib.tasks.Task`.

* :class:`PatchDataset`: random training patches. Sample ``i`` uses image
  ``i % len(images)`` at a random position, optionally rescaled, and one of
  the 8 flips/rotations (the authors' 4 rotations x mirror); the task degrades
  the clean patch (noise, bicubic downscaling, ...).
* :class:`EvalDataset`: whole images with the task's deterministic evaluation
  degradation (noise seeded by the image name, exact bicubic LR).
* Paired data: real degraded inputs instead of synthesised ones (a camera's noisy
  shots, files a codec wrote): :func:`match_inputs` reads them from a folder by
  file stem; :class:`PairedPatchDataset` and :class:`PairedEvalDataset` crop and
  serve them beside their clean targets, for any task.

Randomness comes from ``torch`` (the ``generator`` attribute, or the global
RNG when it is None); :mod:`hinas_lib.streams` seeds it per sample.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

import torch.nn.functional as F

from .data import ImageError, list_images, load_image, to_channels

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


def match_inputs(images, folder, channels: int, scale: int = 1) -> List[np.ndarray]:
    """The degraded input of every ``(name, clean)`` image, read from ``folder`` by file stem
    (``bird.png`` pairs with ``bird.jpg``): one array per image, in order.

    Raises ImageError naming the first clean image without an input, an input matched
    twice, or an input whose size is not the clean image's / ``scale`` (the clean image may
    be up to ``scale - 1`` pixels larger, as ``modcrop`` leaves it).
    """
    by_stem = {}
    for path in list_images(folder):
        if path.stem in by_stem:
            raise ImageError(f"{folder}: two inputs named {path.stem!r} ({by_stem[path.stem].name}, {path.name})")
        by_stem[path.stem] = path
    out = []
    for name, clean in images:
        stem = Path(name).stem
        if stem not in by_stem:
            raise ImageError(f"{folder}: no degraded input for clean image {name!r} (expected a file {stem}.*)")
        lq = load_image(by_stem[stem], channels)
        (h, w), (H, W) = lq.shape[:2], clean.shape[:2]
        if not (0 <= H - h * scale < scale and 0 <= W - w * scale < scale):
            want = f"{H}x{W}" if scale == 1 else f"{H // scale}x{W // scale} (x{scale} = {H}x{W})"
            raise ImageError(f"{by_stem[stem]}: input is {h}x{w}, its clean image {name!r} needs {want}")
        out.append(lq)
    return out


def real_inputs(images, folder, task) -> Optional[List[np.ndarray]]:
    """:func:`match_inputs` for ``task`` when ``folder`` is set (a config's
    ``data.train_lq_dir`` / ``test_lq_dir``); None (synthesise) when it is not."""
    return None if folder is None else match_inputs(images, folder, task.channels, task.scale)


def centre_crop_pair(lq: np.ndarray, gt: np.ndarray, size: int, scale: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """The same centre window of an input and its clean image: at most ``size`` target
    pixels a side (0 = whole), the input's side ``scale`` times smaller."""
    if size <= 0:
        return lq, gt[:lq.shape[0] * scale, :lq.shape[1] * scale]
    h, w = lq.shape[:2]
    ch, cw = min(h, size // scale), min(w, size // scale)
    y, x = (h - ch) // 2, (w - cw) // 2
    return lq[y:y + ch, x:x + cw], gt[y * scale:(y + ch) * scale, x * scale:(x + cw) * scale]


class PairedPatchDataset(PatchDataset):
    """Random training pairs cut from real ``(input, clean)`` image pairs: the same window
    of both (``crop`` input pixels, ``crop x scale`` target pixels) and the same flip/rotation.
    No degradation is synthesised and no rescaling is done (it would change the real
    degradation)."""

    def __init__(self, inputs: Sequence[np.ndarray], images: Sequence[np.ndarray], names: Sequence[str], task,
                 crop: int, *, augment: bool = True, length: Optional[int] = None,
                 generator: Optional[torch.Generator] = None):
        super().__init__(images, names, task, crop, augment=augment, length=length, generator=generator)
        self.inputs = _as_tensors(inputs, names, task.channels)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} samples")
        i = index % len(self.images)
        lq_img, gt_img, s = self.inputs[i], self.images[i], self.task.scale
        h, w = lq_img.shape[-2:]
        top, left = self._randint(h - self.crop + 1), self._randint(w - self.crop + 1)
        lq = lq_img[:, top:top + self.crop, left:left + self.crop]
        gt = gt_img[:, top * s:(top + self.crop) * s, left * s:(left + self.crop) * s]
        if self.augment:
            k = self._randint(8)
            lq, gt = dihedral(lq, k), dihedral(gt, k)
        return lq.contiguous(), gt.contiguous()


class PairedEvalDataset(Dataset):
    """Whole real ``(input, clean, name)`` pairs; the clean image is cropped to the input's
    size x scale (the top-left part, as ``modcrop`` does)."""

    def __init__(self, inputs: Sequence[np.ndarray], images: Sequence[np.ndarray], names: Sequence[str], task):
        self.task, self.names = task, list(names)
        self.inputs = _as_tensors(inputs, names, task.channels)
        self.images = _as_tensors(images, names, task.channels)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor, str]:
        lq, s = self.inputs[index], self.task.scale
        h, w = lq.shape[-2:]
        return lq, self.images[index][:, :h * s, :w * s].contiguous(), self.names[index]


__all__ = ["PatchDataset", "EvalDataset", "PairedPatchDataset", "PairedEvalDataset", "match_inputs", "real_inputs",
           "centre_crop_pair", "dihedral"]
