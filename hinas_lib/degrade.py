"""Degradations: additive white Gaussian noise and MATLAB-compatible bicubic resizing.

* Noise: ``sigma`` is on the 0-255 scale for images in [0, 1] (the papers'
  convention), no clipping by default (DnCNN / HiNAS train on unclipped noise).
  :func:`noise_seed` gives each evaluation image a fixed seed from its name, via
  ``zlib.crc32`` (stable across runs and processes, unlike ``hash()``).
* :func:`imresize` reproduces MATLAB ``imresize(img, scale, 'bicubic')``: cubic
  kernel a = -0.5, kernel stretched by 1/scale when downscaling (antialiasing),
  symmetric (mirror) border handling, output size ``ceil(size * scale)``, rows
  first then columns. Each axis is one dense weight-matrix product, so it works
  on numpy and torch (differentiable) alike. MATLAB keeps the intermediate
  image (after the row pass) in the input's class, so uint8 input is rounded
  between passes; integer numpy input does the same here, and float [0, 1]
  input does it with ``emulate_uint8=True``. That reproduces the Set5 LR files
  bit for bit; see ``data_scripts/README.md`` ("Bicubic check").
"""
from __future__ import annotations

import math
import zlib
from fractions import Fraction
from functools import lru_cache
from typing import Callable, Optional, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]


# ----------------------------------------------------------------------------- noise

def add_gaussian_noise(img_tensor: torch.Tensor, sigma: float, *,
                       generator: Optional[torch.Generator] = None, clip: bool = False) -> torch.Tensor:
    """``img + N(0, (sigma/255)^2)`` for a float tensor in [0, 1]; ``clip`` clamps to [0, 1]."""
    if not isinstance(img_tensor, torch.Tensor):
        raise TypeError(f"add_gaussian_noise expects a torch tensor, got {type(img_tensor).__name__}; "
                        "use torch.from_numpy first")
    if not img_tensor.is_floating_point():
        raise TypeError(f"add_gaussian_noise expects a float tensor in [0, 1], got {img_tensor.dtype}")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0 (0-255 scale), got {sigma}")
    noise = torch.randn(img_tensor.shape, generator=generator, dtype=img_tensor.dtype,
                        device=img_tensor.device if generator is None else generator.device)
    out = img_tensor + noise.to(img_tensor.device) * (float(sigma) / 255.0)
    return out.clamp_(0.0, 1.0) if clip else out


def noise_seed(name_or_index: Union[str, int], sigma: float, base_seed: int = 0) -> int:
    """Fixed 31-bit seed for one (image, sigma) pair; 30 and 30.0 give the same seed."""
    key = f"{int(base_seed)}|{name_or_index}|{float(sigma)!r}"
    return zlib.crc32(key.encode("utf-8")) & 0x7FFFFFFF


# ----------------------------------------------------------------------------- bicubic

def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic')."""
    ax = np.abs(x)
    ax2, ax3 = ax ** 2, ax ** 3
    return ((1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
            + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def _exact(scale: float) -> Fraction:
    """Scale as a fraction, so that 1/3 * 255 gives exactly 85 output pixels."""
    frac = Fraction(scale).limit_denominator(1000)
    return frac if abs(float(frac) - scale) < 1e-9 else Fraction(scale)


def output_size(size: int, scale: float) -> int:
    """MATLAB's ``ceil(scale * size)``, computed exactly for k and 1/k."""
    return math.ceil(_exact(scale) * size)


@lru_cache(maxsize=64)
def _weight_matrix(in_len: int, out_len: int, scale: float, antialiasing: bool) -> np.ndarray:
    """Dense (out_len, in_len) float64 matrix of MATLAB's ``contributions``."""
    kernel_width = 4.0
    if scale < 1 and antialiasing:
        # Stretch the kernel so it low-passes before decimating.
        def h(x):
            return scale * _cubic(scale * x)
        kernel_width /= scale
    else:
        h = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    inv = float(1 / _exact(scale))
    # Output pixel x sits at u in input coordinates (1-based, pixel centres).
    u = x * inv + 0.5 * (1 - inv)
    left = np.floor(u - kernel_width / 2)
    taps = int(math.ceil(kernel_width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    w = h(u[:, None] - idx)
    w /= w.sum(axis=1, keepdims=True)
    # Symmetric padding: indices beyond the edges mirror back (edge pixel repeated).
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    src = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    mat = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(mat, (np.repeat(np.arange(out_len), taps), src.ravel()), w.ravel())
    return mat


def _resize_chw(t: torch.Tensor, scale: float, antialiasing: bool,
                post: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> torch.Tensor:
    """Resize the last two dims of a float tensor, rows first like MATLAB.

    ``post`` runs after each pass: MATLAB stores the intermediate image in the
    input's class, so for uint8 it is rounded between the two passes. Without
    that rounding 10-15% of Set5's LR pixels come out 1-2 levels off.
    """
    h, w = t.shape[-2], t.shape[-1]
    oh, ow = output_size(h, scale), output_size(w, scale)
    mh = torch.from_numpy(_weight_matrix(h, oh, float(scale), antialiasing)).to(t.device, t.dtype)
    mw = torch.from_numpy(_weight_matrix(w, ow, float(scale), antialiasing)).to(t.device, t.dtype)
    t = torch.matmul(mh, t)
    if post is not None:
        t = post(t)
    t = torch.matmul(t, mw.T)
    return post(t) if post is not None else t


def _integer_rounder(dtype) -> Callable[[torch.Tensor], torch.Tensor]:
    """Round-and-clip to an integer dtype's range, as MATLAB's integer classes do."""
    info = np.iinfo(dtype)

    def post(t: torch.Tensor) -> torch.Tensor:
        return torch.floor(t + 0.5).clamp_(float(info.min), float(info.max))
    return post


def _resize_as_uint8(t: torch.Tensor, scale: float, antialiasing: bool) -> torch.Tensor:
    """Float [0, 1] 8-bit data -> exactly MATLAB's uint8 result / 255.

    Works on the 0-255 scale in float64: on the [0, 1] scale, ties such as
    100.5 come out as 100.4999... and round the wrong way.
    """
    levels = torch.floor(t.detach().to(torch.float64) * 255.0 + 0.5)
    out = _resize_chw(levels, scale, antialiasing, _integer_rounder(np.uint8))
    return (out / 255.0).to(t.dtype)


def imresize(img: ArrayLike, scale: float, *, antialiasing: bool = True,
             emulate_uint8: bool = False) -> ArrayLike:
    """MATLAB-compatible bicubic resize by ``scale`` (e.g. 1/2, 1/3, 1/4, 2, 3, 4).

    torch: float ``C,H,W`` or ``N,C,H,W`` (computed in the tensor's dtype and
    device; differentiable unless ``emulate_uint8``). numpy: ``HxW`` or ``HxWxC``;
    floats are computed in float64 and returned in the input dtype; integer
    images behave like MATLAB's integer classes (rounded half away from zero and
    clipped after each pass, same dtype out).

    ``emulate_uint8``: for float images in [0, 1] that hold 8-bit data, round to
    the uint8 levels after each pass, giving exactly MATLAB's
    ``imresize(uint8_img)`` / 255 (the benchmark LR files).
    """
    if scale <= 0:
        raise ValueError(f"imresize: scale must be > 0, got {scale}")
    if isinstance(img, torch.Tensor):
        if img.dim() not in (3, 4):
            raise ValueError(f"imresize: expected a tensor C,H,W or N,C,H,W, got shape {tuple(img.shape)}")
        if not img.is_floating_point():
            raise TypeError(f"imresize: expected a float tensor, got {img.dtype}")
        if emulate_uint8:
            return _resize_as_uint8(img, scale, antialiasing)
        return _resize_chw(img, scale, antialiasing)
    a = np.asarray(img)
    if a.ndim not in (2, 3):
        raise ValueError(f"imresize: expected a numpy array HxW or HxWxC, got shape {a.shape}")
    post = None
    if np.issubdtype(a.dtype, np.integer):
        post = _integer_rounder(a.dtype)
    elif emulate_uint8:
        out = _resize_as_uint8(torch.from_numpy(np.atleast_3d(a).transpose(2, 0, 1)), scale, antialiasing)
        out = out.numpy().transpose(1, 2, 0)
        return (out[:, :, 0] if a.ndim == 2 else out).astype(a.dtype, copy=False)
    chw = torch.from_numpy(np.ascontiguousarray(np.atleast_3d(a).transpose(2, 0, 1), dtype=np.float64))
    out = _resize_chw(chw, scale, antialiasing, post).numpy().transpose(1, 2, 0)
    if a.ndim == 2:
        out = out[:, :, 0]
    if np.issubdtype(a.dtype, np.integer):
        return out.astype(a.dtype)
    return out.astype(a.dtype, copy=False) if np.issubdtype(a.dtype, np.floating) else out


def modcrop(img: ArrayLike, scale: int) -> ArrayLike:
    """Crop bottom/right so height and width are multiples of ``scale``.

    numpy ``HxW(xC)`` or torch ``(..., H, W)``.
    """
    if int(scale) != scale or scale < 1:
        raise ValueError(f"modcrop: scale must be a positive integer, got {scale}")
    scale = int(scale)
    if isinstance(img, torch.Tensor):
        h, w = img.shape[-2], img.shape[-1]
        return img[..., : h - h % scale, : w - w % scale]
    h, w = img.shape[0], img.shape[1]
    return img[: h - h % scale, : w - w % scale]


def bicubic_downscale(hr: ArrayLike, scale: int, *, emulate_uint8: bool = False) -> ArrayLike:
    """The standard SR degradation: modcrop, then MATLAB bicubic by ``1/scale``.

    With ``emulate_uint8`` (float 8-bit data) the result equals the benchmark LR files.
    """
    if int(scale) != scale or scale < 1:
        raise ValueError(f"bicubic_downscale: scale must be a positive integer, got {scale}")
    hr = modcrop(hr, scale)
    return imresize(hr, 1.0 / int(scale), emulate_uint8=emulate_uint8)


def bicubic_upscale(lr: ArrayLike, scale: int, *, emulate_uint8: bool = False) -> ArrayLike:
    """MATLAB bicubic upscaling by an integer factor (the 'Bicubic' baseline)."""
    if int(scale) != scale or scale < 1:
        raise ValueError(f"bicubic_upscale: scale must be a positive integer, got {scale}")
    return imresize(lr, float(int(scale)), emulate_uint8=emulate_uint8)
