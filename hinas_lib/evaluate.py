"""Evaluation and inference: metrics tables, baselines, tiled inference, restore.

Conventions: denoising is measured on the grey (or RGB) image as is; SR on
the Y channel (BT.601) with ``scale`` border pixels shaved, as SR papers do.
Every table also shows the degraded input and a classical baseline
(scikit-image non-local means for denoising, bicubic for SR).
"""
from __future__ import annotations

import errno
import numbers
import os
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from . import data, streams
from .checks import CONFIG_HINT, PATH_TYPES, expect
from .config import Config
from .degrade import bicubic_upscale
from .metrics import psnr, ssim
from .inference import receptive_radius, tiled_forward  # noqa: F401 (re-exported)


class NonFiniteOutputError(ValueError):
    """The model produced NaN or infinite values: its weights (or the input) are broken."""


def metric_kwargs(cfg: Config) -> Dict:
    if cfg.task.task == "sr":
        return {"crop_border": cfg.task.scale, "test_y_channel": cfg.task.channels == 3}
    return {"crop_border": 0, "test_y_channel": False}


# ---------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------

def to_tensor(img: np.ndarray) -> torch.Tensor:
    a = img[None] if img.ndim == 2 else np.transpose(img, (2, 0, 1))
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def run_model(net, img_tensor: torch.Tensor, cfg: Config, tile: int = 0) -> torch.Tensor:
    """Apply a network to one image, tile by tile when ``tile`` > 0.

    Args:
        net: the network (any device).
        img_tensor: ``(C, H, W)`` float in [0, 1], on the CPU.
        cfg: the model's config (task and scale).
        tile: tile side in input pixels; 0 runs the whole image at once.

    Returns:
        ``(C, H', W')`` clamped to [0, 1], on the CPU.

    Raises:
        NonFiniteOutputError: when the network produced NaN or inf (clamping
            would silently turn them into black or white pixels).
    """
    scale = cfg.task.scale if cfg.task.task == "sr" else 1
    net.eval()
    # the image stays on the CPU; tiles go to the network's device one at a time
    out = tiled_forward(net, img_tensor.unsqueeze(0), tile=tile, scale=scale, out_device="cpu")
    if not torch.isfinite(out).all():
        raise NonFiniteOutputError(f"the model produced NaN/inf values{_broken_weights(net)}")
    return out.float().clamp(0, 1)[0].cpu()


def _broken_weights(net) -> str:
    """Why a network's output may be non-finite: its own weights, if they are."""
    if any(not torch.isfinite(p).all() for p in net.parameters()) or \
            any(b.is_floating_point() and not torch.isfinite(b).all() for b in net.buffers()):
        return " because its weights contain NaN/inf: the model file is corrupted"
    return " (the model file may be corrupted)"


def baseline(inp: torch.Tensor, cfg: Config, sigma: float) -> torch.Tensor:
    """Non-local means (denoising, known sigma) or bicubic upscaling (SR)."""
    if cfg.task.task == "sr":
        return bicubic_upscale(inp, cfg.task.scale).clamp(0, 1)
    from skimage.restoration import denoise_nl_means
    img = streams.stack_to_numpy(inp)
    s = sigma / 255.0
    # skimage's recommended setting for a known noise level (fast mode, h = 0.8 sigma)
    out = denoise_nl_means(img, h=0.8 * s, sigma=s, fast_mode=True, patch_size=5, patch_distance=6,
                           channel_axis=-1 if img.ndim == 3 else None)
    return to_tensor(out.astype(np.float32)).clamp(0, 1)


def bm3d_denoise(inp: torch.Tensor, sigma: float) -> torch.Tensor:
    """BM3D (the ``bm3d`` package from PyPI, optional) at a known noise level, grey or RGB."""
    try:
        import bm3d
    except ImportError as e:
        raise ImportError("the BM3D baseline needs the optional 'bm3d' package: pip install bm3d") from e
    img = streams.stack_to_numpy(inp).astype(np.float64)
    s = sigma / 255.0
    out = bm3d.bm3d_rgb(img, s) if img.ndim == 3 else bm3d.bm3d(img, s)
    return to_tensor(np.asarray(out, dtype=np.float32)).clamp(0, 1)


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------

def evaluate(net, cfg: Config, images: Sequence, *, sigma: Optional[float] = None, tile: int = 0,
             with_baseline: bool = True, progress: bool = True, keep_images: bool = False,
             bm3d: bool = False) -> Dict:
    """Per-image and mean PSNR/SSIM for the degraded input, the baseline and the model.

    ``bm3d=True`` (denoising only) adds a ``bm3d`` column; it needs ``pip install bm3d``
    and takes seconds per image.
    """
    expect(cfg, Config, "cfg", CONFIG_HINT)
    if bm3d and cfg.task.task != "denoise":
        raise ValueError("bm3d: BM3D is a denoising baseline; this model is for " + cfg.task.task)
    _check_eval_args(net, images, sigma, tile)
    sigma = cfg.task.eval_sigma if sigma is None else float(sigma)
    ds = streams.eval_dataset(images, cfg, sigma=sigma)
    kw = metric_kwargs(cfg)
    rows: List[Dict] = []
    kept = []
    for inp, target, name in tqdm(ds, desc="eval", disable=not progress):
        ours = run_model(net, inp, cfg, tile=tile)
        cands = {"input": bicubic_upscale(inp, cfg.task.scale).clamp(0, 1) if cfg.task.task == "sr" else inp.clamp(0, 1),
                 "ours": ours}
        if with_baseline:
            cands["baseline"] = baseline(inp, cfg, sigma)
        if bm3d:
            cands["bm3d"] = bm3d_denoise(inp, sigma)
        row = {"image": name}
        for k, v in cands.items():
            row[f"{k}_psnr"] = psnr(v, target, **kw)
            row[f"{k}_ssim"] = ssim(v, target, **kw)
        rows.append(row)
        if keep_images:
            kept.append({"name": name, "target": target, **cands})
    keys = [k for k in rows[0] if k != "image"]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    res = {"task": cfg.task.task, "sigma": sigma if cfg.task.task == "denoise" else None,
           "scale": cfg.task.scale if cfg.task.task == "sr" else None,
           "baseline": ("bicubic" if cfg.task.task == "sr" else "non-local means") if with_baseline else None,
           "metric": "Y channel, shave %d" % cfg.task.scale if cfg.task.task == "sr" and cfg.task.channels == 3
           else "full image", "images": rows, "mean": mean}
    if keep_images:
        res["restored"] = kept
    return res


def _check_eval_args(net, images, sigma, tile) -> None:
    """TypeError/ValueError naming the argument, before anything runs."""
    expect(net, torch.nn.Module, "net", "pass the network, e.g. load_model(path)[0]")
    expect(images, (list, tuple), "images", "pass a list of (name, image array) pairs")
    if not images:
        raise ValueError("images: the list is empty; nothing to evaluate")
    for i, item in enumerate(images):
        ok = isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[1], (np.ndarray, torch.Tensor))
        if not ok:
            raise TypeError(f"images[{i}]: expected a (name, image array) pair, got {type(item).__name__}")
    expect(sigma, (numbers.Real, type(None)), "sigma")
    expect(tile, numbers.Integral, "tile")
    if tile < 0:
        raise ValueError(f"tile: must be >= 0 (0 = the whole image at once), got {tile}")


def format_table(res: Dict) -> str:
    cols = [c for c in ("input", "baseline", "bm3d", "ours") if f"{c}_psnr" in res["mean"]]
    label = {"input": "noisy" if res["task"] == "denoise" else "bicubic-in",
             "baseline": "NLM" if res["task"] == "denoise" else "bicubic", "bm3d": "BM3D", "ours": "HiNAS"}
    if res["task"] == "sr":
        label["input"] = "bicubic"
        cols = [c for c in cols if c != "baseline"]  # bicubic input == bicubic baseline
    head = f"{'image':<24}" + "".join(f"{label[c] + ' PSNR/SSIM':>22}" for c in cols)
    lines = [head, "-" * len(head)]
    for r in res["images"] + [{"image": "MEAN", **res["mean"]}]:
        lines.append(f"{r['image'][:24]:<24}" +
                     "".join(f"{r[c + '_psnr']:>13.2f} / {r[c + '_ssim']:.4f}" for c in cols))
    return "\n".join(lines)


def restore_file(model_path: str | Path, src: str | Path, dst: str | Path, *, device: Optional[str] = None,
                 tile: int = 512, convert: bool = False, overwrite_input: bool = False) -> Dict:
    """Apply a trained model to an image file and write the result.

    Everything that can be checked is checked before the model runs: the
    input is read, the output's format, folder and writability are tried, and
    writing over the input itself is refused unless asked for. The output is
    written atomically, so a full disk or a crash never leaves a truncated
    file and never destroys the file it would replace (the input included).

    Args:
        model_path: a ``model.pt``, a folder holding one, or a zoo name.
        src: the input image file.
        dst: the output file (``.png``, ``.jpg``, ``.bmp``, ``.tif``); its folder is created.
        device: where to run (None: CUDA when available).
        tile: tile side for tiled inference (0: the whole image at once).
        convert: convert grey <-> RGB to what the model expects.
        overwrite_input: allow ``dst`` to be ``src`` (the same file, through any link).

    Returns:
        ``{'input_shape', 'output_shape', 'task'}``.
    """
    from .train import load_model
    for value, name in ((model_path, "model_path"), (src, "src"), (dst, "dst")):
        expect(value, PATH_TYPES, name)
    expect(tile, numbers.Integral, "tile")
    if tile < 0:
        raise ValueError(f"tile: must be >= 0 (0 = the whole image at once), got {tile}")
    from .zoo import resolve_model
    src, dst = Path(src), Path(dst)
    model_path = resolve_model(model_path)  # a wrong model name fails first; loading comes last
    check_output_path(dst, src=src, overwrite_input=overwrite_input)
    img = data.load_image(src, channels=None)
    net, cfg, _ = load_model(model_path, device)
    c = cfg.task.channels
    have = 1 if img.ndim == 2 else img.shape[2]
    if have != c:
        if not convert:
            kind = {1: "grey (1 channel)", 3: "RGB (3 channels)"}
            raise ValueError(f"{src}: the model expects {kind[c]} images but the file is {kind.get(have, have)}; "
                             "pass --convert to convert it")
        img = data.to_channels(img, c, source=str(src))
    try:
        out = run_model(net, to_tensor(img), cfg, tile=tile)
    except NonFiniteOutputError as e:
        raise NonFiniteOutputError(f"{model_path}: on {src}, {e}") from None
    data.save_image(dst, streams.stack_to_numpy(out))
    return {"input_shape": list(img.shape), "output_shape": list(out.shape), "task": cfg.task.task}


def check_output_path(dst: str | Path, *, src: Optional[str | Path] = None, overwrite_input: bool = False) -> None:
    """Fail now, not after minutes of inference, if ``dst`` cannot be written.

    Creates ``dst``'s folder when missing and tries writing a temporary file in it.

    Args:
        dst: the output image file.
        src: the input file, to refuse writing over it.
        overwrite_input: allow ``dst`` to be ``src``.

    Raises:
        ImageError: unsupported extension, or ``dst`` is the input.
        OSError: (IsADirectoryError, NotADirectoryError, PermissionError, ...)
            naming the path, when the output cannot be written there.
    """
    dst = Path(dst)
    data.check_output_format(dst)
    if dst.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder; give the output file's name", str(dst))
    if dst.exists() and not dst.is_file():
        # os.replace would swap out a device node or a FIFO (e.g. /dev/null) for a regular file
        raise OSError(errno.EINVAL, "exists and is not a regular file; give another output name", str(dst))
    if src is not None and dst.exists() and Path(src).exists() and os.path.samefile(src, dst):
        if not overwrite_input:
            raise data.ImageError(f"{dst}: this is the input file {src}; writing the result there would "
                                  "replace the original. Choose another output, or pass --overwrite-input "
                                  "(overwrite_input=True) to replace it")
    folder = dst.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where the folder should be
        raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder, so the output cannot go there",
                                 str(folder)) from None
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise type(e)(e.errno, f"cannot write the output in this folder ({e.strerror})", str(folder)) from None
    os.close(fd)
    os.unlink(probe)
