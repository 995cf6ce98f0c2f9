"""Image quality metrics with the BasicSR / reference-MATLAB conventions.

* Images are floats in ``[0, data_range]`` (default ``[0, 1]``): numpy ``HxW`` /
  ``HxWxC`` or torch ``C,H,W`` / ``1,C,H,W``. Nothing is rounded to uint8 here;
  quantise outputs yourself if you want the "saved PNG" numbers.
* ``crop_border`` shaves that many pixels from every side (SR papers shave
  ``scale`` pixels); ``test_y_channel`` evaluates on the BT.601 Y channel of RGB
  inputs (MATLAB ``rgb2ycbcr``), as in SR papers. Grey inputs are used as is.
* SSIM is Wang et al. (2004): 11x11 Gaussian window, sigma 1.5, K1 0.01,
  K2 0.03, 'valid' filtering, mean over channels. scikit-image filters with
  reflection and then drops the 5-pixel border, which is the same 'valid' map,
  so the two agree to float rounding.
"""
from __future__ import annotations

import math
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = Union[np.ndarray, torch.Tensor]

# MATLAB rgb2ycbcr, Y row, for images scaled to [0, 1] (result also in [0, 1]).
_Y_WEIGHTS = (65.481, 128.553, 24.966)
_Y_OFFSET = 16.0


def rgb_to_y(img: ArrayLike) -> ArrayLike:
    """BT.601 luma Y of an RGB image in [0, 1]: numpy ``HxWx3`` -> ``HxW``,
    torch ``(..., 3, H, W)`` -> ``(..., 1, H, W)`` (channel kept for conv nets)."""
    wr, wg, wb = _Y_WEIGHTS
    if isinstance(img, torch.Tensor):
        if img.dim() < 3 or img.shape[-3] != 3:
            raise ValueError(f"rgb_to_y: expected a torch tensor (..., 3, H, W), got shape {tuple(img.shape)}")
        r, g, b = img[..., 0:1, :, :], img[..., 1:2, :, :], img[..., 2:3, :, :]
        return (_Y_OFFSET + wr * r + wg * g + wb * b) / 255.0
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"rgb_to_y: expected a numpy array HxWx3, got shape {img.shape}")
    img = img.astype(np.float64, copy=False)
    return (_Y_OFFSET + img @ np.array(_Y_WEIGHTS)) / 255.0


def _to_hwc(img: ArrayLike, what: str) -> np.ndarray:
    """Any accepted layout -> float64 numpy HxWxC (the one layout the metrics use)."""
    if isinstance(img, torch.Tensor):
        t = img.detach().to("cpu", torch.float64)
        if t.dim() == 4:
            if t.shape[0] != 1:
                raise ValueError(f"{what}: a 4-D tensor must have batch size 1, got shape {tuple(t.shape)}")
            t = t[0]
        if t.dim() == 2:
            t = t.unsqueeze(0)
        if t.dim() != 3:
            raise ValueError(f"{what}: expected a tensor C,H,W or 1,C,H,W, got shape {tuple(img.shape)}")
        return t.permute(1, 2, 0).numpy()
    a = np.asarray(img)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ValueError(f"{what}: expected a numpy array HxW or HxWxC, got shape {a.shape}")
    return a.astype(np.float64, copy=False)


def _prepare(img: ArrayLike, ref: ArrayLike, data_range: float, crop_border: int,
             test_y_channel: bool, what: str):
    """Shared checks, layout, border crop and Y conversion for psnr/ssim."""
    if data_range <= 0:
        raise ValueError(f"{what}: data_range must be > 0, got {data_range}")
    for name, x in (("img", img), ("ref", ref)):
        # uint8 with the default data_range=1 is a classic silent mistake: refuse it.
        is_int = (np.issubdtype(x.dtype, np.integer) if isinstance(x, np.ndarray)
                  else isinstance(x, torch.Tensor) and not x.is_floating_point() and x.dtype != torch.bool)
        if is_int and data_range == 1.0:
            raise ValueError(f"{what}: {name} is {x.dtype}; pass floats in [0, 1] or data_range=255")
    a, b = _to_hwc(img, what), _to_hwc(ref, what)
    if a.shape != b.shape:
        raise ValueError(f"{what}: shape mismatch, img {tuple(np.shape(img))} vs ref {tuple(np.shape(ref))}")
    if crop_border < 0:
        raise ValueError(f"{what}: crop_border must be >= 0, got {crop_border}")
    if crop_border:
        if 2 * crop_border >= min(a.shape[:2]):
            raise ValueError(f"{what}: crop_border {crop_border} leaves nothing of a {a.shape[:2]} image")
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if test_y_channel and a.shape[2] == 3:
        # Y weights assume [0, 1]; rescale around them so any data_range works.
        a = rgb_to_y(a / data_range)[:, :, None] * data_range
        b = rgb_to_y(b / data_range)[:, :, None] * data_range
    return a, b


def psnr(img: ArrayLike, ref: ArrayLike, *, data_range: float = 1.0, crop_border: int = 0,
         test_y_channel: bool = False) -> float:
    """PSNR in dB (``inf`` for identical images), MSE over all pixels and channels."""
    a, b = _prepare(img, ref, data_range, crop_border, test_y_channel, "psnr")
    mse = float(np.mean((a - b) ** 2))
    if mse == 0:
        return float("inf")
    return 10.0 * math.log10(data_range ** 2 / mse)


def gaussian_window(window_size: int = 11, sigma: float = 1.5, *, dtype=torch.float64,
                    device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian taps; the 2-D window is their outer product
    (MATLAB ``fspecial('gaussian', 11, 1.5)`` is separable the same way)."""
    if window_size < 1 or window_size % 2 == 0:
        raise ValueError(f"window_size must be a positive odd number, got {window_size}")
    x = torch.arange(window_size, dtype=torch.float64) - (window_size - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float, window_size: int,
              sigma: float, padding: str = "valid") -> torch.Tensor:
    """Per-pixel SSIM of N,C,H,W tensors: the 'valid' region only (N,C,H-w+1,W-w+1),
    or with ``padding="same"`` the whole image, the window zero-padded (the
    authors' training loss does that)."""
    c = x.shape[1]
    g = gaussian_window(window_size, sigma, dtype=x.dtype, device=x.device)
    # Depthwise separable blur: one row pass and one column pass per channel
    # (with zero padding per pass this equals the zero-padded 2-D window).
    kh = g.view(1, 1, window_size, 1).repeat(c, 1, 1, 1)
    kw = g.view(1, 1, 1, window_size).repeat(c, 1, 1, 1)
    p = window_size // 2 if padding == "same" else 0

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kh, padding=(p, 0), groups=c), kw, padding=(0, p), groups=c)

    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mx, my = blur(x), blur(y)
    # Population (biased) moments, as in the reference code.
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * cxy + c2)
    den = (mx * mx + my * my + c1) * (vx + vy + c2)
    return num / den


def _check_window(h: int, w: int, window_size: int, what: str) -> None:
    if h < window_size or w < window_size:
        raise ValueError(f"{what}: image {h}x{w} is smaller than the {window_size}x{window_size} SSIM window")


def ssim(img: ArrayLike, ref: ArrayLike, *, data_range: float = 1.0, crop_border: int = 0,
         test_y_channel: bool = False) -> float:
    """Mean SSIM (Wang et al.), averaged over channels; float64, no gradients."""
    a, b = _prepare(img, ref, data_range, crop_border, test_y_channel, "ssim")
    _check_window(a.shape[0], a.shape[1], 11, "ssim")
    x = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]
    y = torch.from_numpy(np.ascontiguousarray(b.transpose(2, 0, 1)))[None]
    with torch.no_grad():
        m = _ssim_map(x, y, float(data_range), 11, 1.5)
    # Mean per channel, then over channels (equal sizes, so same as the global mean).
    return float(m.mean(dim=(0, 2, 3)).mean())


def ssim_torch(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, window_size: int = 11,
               sigma: float = 1.5, padding: str = "valid") -> torch.Tensor:
    """Differentiable mean SSIM of batched ``N,C,H,W`` tensors (for the -log SSIM loss).

    Same formula as :func:`ssim`, computed in the inputs' dtype on their device;
    ``padding="same"`` averages the zero-padded map over the whole image.
    """
    if padding not in ("valid", "same"):
        raise ValueError(f"ssim_torch: padding must be 'valid' or 'same', got {padding!r}")
    if x.shape != y.shape:
        raise ValueError(f"ssim_torch: shape mismatch, x {tuple(x.shape)} vs y {tuple(y.shape)}")
    if x.dim() != 4:
        raise ValueError(f"ssim_torch: expected N,C,H,W tensors, got shape {tuple(x.shape)}")
    if padding == "valid":
        _check_window(x.shape[2], x.shape[3], window_size, "ssim_torch")
    return _ssim_map(x, y, float(data_range), window_size, sigma, padding).mean()
