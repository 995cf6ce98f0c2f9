"""Inference on images of any size: tiles with enough context to be exact.

A restoration network is a stack of convolutions, so each output pixel depends
only on the input pixels within its *receptive radius* ``r``. Running the
network on a tile with ``r`` pixels of real image context on every side and
keeping only the tile's centre therefore gives exactly the whole-image result
(at the image border whole-image inference zero-pads, and so does a tile that
touches the border). Peak memory is that of one tile, whatever the image size.

When a network sees further than ``max_overlap`` (e.g. a very large dilation),
tiles are run with ``max_overlap`` of context and their outputs overlap by that
much and are blended with linear ramps, so there is no visible seam; the
result is then close to, not equal to, the whole-image one.
"""
from __future__ import annotations

import weakref
from typing import Callable, Optional, Tuple

import numpy as np
import torch

_RADIUS_CACHE: "weakref.WeakKeyDictionary[torch.nn.Module, int]" = weakref.WeakKeyDictionary()
MAX_PROBE = 513
MIN_TILE = 32  # smaller tiles are mostly context: thousands of forward passes for one photograph


def net_channels(net) -> Optional[int]:
    """The input channels a network takes: its config's, else its first convolution's."""
    ch = getattr(getattr(getattr(net, "cfg", None), "task", None), "channels", None)
    if isinstance(ch, int):
        return ch
    if isinstance(net, torch.nn.Module):
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                return m.in_channels
    return None


def as_image_batch(x, channels: Optional[int] = None, name: str = "x") -> Tuple[torch.Tensor, int]:
    """``x`` as an ``(N, C, H, W)`` float tensor, and the number of dims it came with.

    Accepted: a tensor or numpy array of float pixels in [0, 1], ``(H, W)`` (grey),
    ``(C, H, W)`` or ``(N, C, H, W)``; float64 becomes float32. Integer pixels
    (uint8, ...) are refused rather than guessed at: scale them to [0, 1] first
    (``x / 255``, or :func:`hinas_lib.data.to_channels`).

    Raises:
        TypeError: not a tensor/array, or not float pixels (naming ``name`` and the dtype).
        ValueError: a meta tensor, the wrong number of dims, an empty image, or not the
            ``channels`` the network takes.
    """
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{name}: expected float pixels in [0, 1], got a numpy array of {x.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor or numpy array (N,C,H,W), (C,H,W) or (H,W), "
                        f"got {type(x).__name__}")
    if x.is_meta:
        raise ValueError(f"{name}: a meta tensor holds no pixels; create it on the CPU or a GPU")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected float pixels in [0, 1], got {str(x.dtype).replace('torch.', '')}; "
                        "scale integer images first (e.g. x.float() / 255)")
    if x.dtype == torch.float64:
        x = x.float()
    dims = x.dim()
    if dims == 2:
        x = x[None, None]
    elif dims == 3:
        x = x[None]
    elif dims != 4:
        raise ValueError(f"{name}: expected (N,C,H,W), (C,H,W) or (H,W), got shape {tuple(x.shape)}")
    if x.shape[-1] == 0 or x.shape[-2] == 0 or x.shape[0] == 0:
        raise ValueError(f"{name}: empty image batch of shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        kind = {1: "grey (1 channel)", 3: "RGB (3 channels)"}.get(channels, f"{channels} channels")
        hint = ("; it looks like H x W x C: put the channels first (data.to_tensor does)"
                if dims in (3, 4) and x.shape[-1] == channels else "")
        raise ValueError(f"{name}: the network takes {kind} images (N,C,H,W with C={channels}), got shape "
                         f"{tuple(x.shape) if dims == 4 else tuple(x.shape[1:])}{hint}")
    return x, dims


def check_tile(tile: int) -> None:
    """The one rule for a tile size: 0 (the whole image at once) or at least ``MIN_TILE``."""
    if tile < 0 or 0 < tile < MIN_TILE:
        raise ValueError(f"tile: 0 (the whole image at once) or at least {MIN_TILE} pixels, got {tile}")


def receptive_radius(net: torch.nn.Module, channels: int, probe: int = 65) -> Optional[int]:
    """How far (in input pixels) an output pixel sees: the gradient of one
    output pixel w.r.t. a random input, in eval mode. ``None`` when it reaches
    the border of a ``MAX_PROBE``-pixel probe (e.g. global pooling).

    Gradients are switched on here whatever the caller's mode, so this works
    inside ``torch.no_grad()`` (inference) too. Cached per network object.
    """
    cached = _RADIUS_CACHE.get(net)
    if cached is not None:
        return cached
    was = net.training
    net.eval()
    try:
        p = next(net.parameters())
        gen = torch.Generator().manual_seed(0)
        with torch.enable_grad():
            while True:
                # random, not zero, input: no activation sits exactly at a kink
                x = torch.rand(1, channels, probe, probe, generator=gen).to(p.device, p.dtype)
                x.requires_grad_(True)
                out = net(x)
                s = out.shape[-1] // probe  # SR outputs are larger
                c = probe // 2
                out[0, :, c * s, c * s].sum().backward()
                g = x.grad[0].abs().sum(0)
                ys, xs = torch.nonzero(g, as_tuple=True)
                r = int(max((ys - c).abs().max(), (xs - c).abs().max())) if len(ys) else 0
                if r < c:
                    break
                if probe >= MAX_PROBE:
                    return None
                probe = min(2 * probe + 1, MAX_PROBE)
    finally:
        net.train(was)
    _RADIUS_CACHE[net] = r
    return r


def _ramp(n: int, lo_blend: int, hi_blend: int, device) -> torch.Tensor:
    """Weights along one axis of a tile output: rising over the first ``lo_blend``
    pixels and falling over the last ``hi_blend``, 1 in between (never 0)."""
    w = torch.ones(n, device=device)
    if lo_blend:
        w[:lo_blend] = torch.arange(1, lo_blend + 1, device=device) / (lo_blend + 1)
    if hi_blend:
        w[n - hi_blend:] = torch.arange(hi_blend, 0, -1, device=device) / (hi_blend + 1)
    return w


@torch.no_grad()
def tiled_forward(net: Callable, x: torch.Tensor, tile: int = 512, overlap: Optional[int] = None,
                  scale: int = 1, *, max_overlap: int = 128, out_device: Optional[torch.device] = None
                  ) -> torch.Tensor:
    """``net(x)`` for ``x`` (N,C,H,W) computed tile by tile.

    Args:
        net: the network (call it in eval mode for deterministic results).
        x: the input batch; it may live on the CPU while ``net`` is on a GPU:
            each tile is moved to the network's device on its own.
        tile: the largest tile side in input pixels; ``0`` (or an image no larger
            than a tile) runs the whole image at once. The image is cut into the
            fewest tiles of at most this side, all of near-equal size (few distinct
            shapes: buffers and oneDNN primitives are reused from tile to tile).
        overlap: context pixels on every side of a tile. Default: the
            network's receptive radius (exact result), capped at ``max_overlap``.
        scale: output pixels per input pixel (the SR factor; 1 for denoising).
        max_overlap: the most context the default takes; beyond it tiles are
            blended (see the module docstring).
        out_device: where the output is assembled (default: ``x``'s device),
            so a large output need not fit on the GPU.

    Returns:
        (N, C_out, H * scale, W * scale), as ``net(x)``; a ``(C, H, W)`` or ``(H, W)``
        input (see :func:`as_image_batch`) gives ``(C_out, H', W')``.
    """
    check_tile(tile)
    x, dims = as_image_batch(x, net_channels(net))
    out = _tiled(net, x, tile, overlap, scale, max_overlap, out_device)
    return out if dims == 4 else out[0]


def _tiled(net, x, tile, overlap, scale, max_overlap, out_device) -> torch.Tensor:
    H, W = x.shape[-2:]
    try:
        dev = next(net.parameters()).device
    except (AttributeError, StopIteration):
        dev = x.device
    out_device = torch.device(out_device) if out_device is not None else x.device
    if tile == 0 or (H <= tile and W <= tile):
        return net(x.to(dev)).to(out_device)
    blend = 0
    if overlap is None:
        r = receptive_radius(net, x.shape[1])
        overlap = max_overlap if r is None or r > max_overlap else r
        blend = overlap if r is None or r > max_overlap else 0
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    out = weight = None
    # the fewest tiles of at most `tile` a side, of near-equal size: no thin strip at the edge
    # (mostly context) and few distinct shapes
    ty, tx = -(-H // -(-H // tile)), -(-W // -(-W // tile))
    boxes = []
    for y0 in range(0, H, ty):
        for x0 in range(0, W, tx):
            y1, x1 = min(y0 + ty, H), min(x0 + tx, W)
            py0, px0 = max(0, y0 - overlap), max(0, x0 - overlap)
            py1, px1 = min(H, y1 + overlap), min(W, x1 + overlap)
            boxes.append((y0, x0, y1, x1, py0, px0, py1, px1))
    # the largest tiles (context on every side) first: later, smaller tiles fit in the memory
    # they freed, so the process grows less (measured: 30% fewer page faults in a restore)
    boxes.sort(key=lambda b: -(b[6] - b[4]) * (b[7] - b[5]))
    for y0, x0, y1, x1, py0, px0, py1, px1 in boxes:
        o = net(x[..., py0:py1, px0:px1].to(dev)).to(out_device)
        if out is None:
            out = torch.zeros(x.shape[0], o.shape[1], H * scale, W * scale, dtype=o.dtype, device=out_device)
        if not blend:
            # keep the centre: every kept pixel had its whole receptive field
            cy, cx = (y0 - py0) * scale, (x0 - px0) * scale
            out[..., y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
                o[..., cy:cy + (y1 - y0) * scale, cx:cx + (x1 - x0) * scale]
            continue
        # blend: keep the centre plus half the context band, ramped, and normalise
        if weight is None:
            weight = torch.zeros(1, 1, H * scale, W * scale, device=out_device)
        h2 = blend // 2
        ky0, kx0 = max(py0, y0 - h2), max(px0, x0 - h2)
        ky1, kx1 = min(py1, y1 + h2), min(px1, x1 + h2)
        part = o[..., (ky0 - py0) * scale:(ky1 - py0) * scale, (kx0 - px0) * scale:(kx1 - px0) * scale]
        wy = _ramp(part.shape[-2], (y0 - ky0) * scale, (ky1 - y1) * scale, out_device)
        wx = _ramp(part.shape[-1], (x0 - kx0) * scale, (kx1 - x1) * scale, out_device)
        w = (wy[:, None] * wx[None, :])[None, None]
        out[..., ky0 * scale:ky1 * scale, kx0 * scale:kx1 * scale] += part * w
        weight[..., ky0 * scale:ky1 * scale, kx0 * scale:kx1 * scale] += w
    if weight is not None:
        out /= weight
    return out


__all__ = ["as_image_batch", "net_channels", "check_tile", "receptive_radius", "tiled_forward", "MAX_PROBE", "MIN_TILE"]
