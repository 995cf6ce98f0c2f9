"""Evaluation tables and restoring image files with a trained model.

The task decides the conventions (:mod:`hinas_lib.tasks`): denoising is
measured on the grey (or RGB) image as is; SR on the Y channel (BT.601) with
``scale`` border pixels shaved, as SR papers do. Every table also shows the
degraded input and the task's classical baseline (scikit-image non-local means
for denoising, bicubic for SR). Inference goes through
:func:`hinas_lib.inference.tiled_forward`, so any image size fits in memory.
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

from . import data
from .checks import CONFIG_HINT, PATH_TYPES, expect
from .config import Config
from .datasets import dihedral, undo_dihedral
from .deploy import inference_copy, keep_freed_memory
from .inference import as_image_batch, check_tile, net_channels, tiled_forward
from .metrics import psnr, ssim
from .model_files import load_model
from .tasks import get_task
from .zoo import resolve_model


class NonFiniteOutputError(ValueError):
    """The model produced NaN or infinite values: its weights (or the input) are broken."""


# ---------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------

def run_model(net, img_tensor: torch.Tensor, cfg: Config, tile: int = 0, self_ensemble: bool = False
              ) -> torch.Tensor:
    """Apply a network to one image, tile by tile when ``tile`` > 0.

    Args:
        net: the network (any device).
        img_tensor: ``(C, H, W)`` float in [0, 1] (a tensor or numpy array; ``(H, W)`` for
            grey and ``(1, C, H, W)`` are accepted, float64 is converted; integer pixels
            are refused: see :func:`hinas_lib.inference.as_image_batch`).
        cfg: the model's config (task and scale).
        tile: tile side in input pixels; 0 runs the whole image at once.
        self_ensemble: average the outputs on the 8 flips/rotations of the image, each
            turned back (the "x8 self-ensemble" of Timofte et al. 2016 and EDSR+): 8 times
            the time, usually a little more PSNR, since the network is not exactly
            equivariant.

    Returns:
        ``(C, H', W')`` clamped to [0, 1], on the CPU.

    Raises:
        TypeError / ValueError: naming ``img_tensor`` and the shape, channels or dtype
            expected, when the image cannot be converted.
        NonFiniteOutputError: when the network produced NaN or inf (clamping
            would silently turn them into black or white pixels).
    """
    expect(net, torch.nn.Module, "net", "pass the network, e.g. load_model(path)[0]")
    expect(cfg, Config, "cfg", CONFIG_HINT)
    x, _ = as_image_batch(img_tensor, net_channels(net), "img_tensor")
    if x.shape[0] != 1:
        raise ValueError(f"img_tensor: one image (C,H,W) at a time, got a batch of shape {tuple(x.shape)}; "
                         "tiled_forward takes batches")
    net.eval()
    keep_freed_memory()  # activations freed and faulted in again per layer and tile cost half the time
    # the image stays on the CPU; tiles go to the network's device one at a time
    x, scale = x.cpu(), get_task(cfg).scale
    if self_ensemble:
        out = sum(undo_dihedral(tiled_forward(net, dihedral(x, k), tile=tile, scale=scale, out_device="cpu"), k)
                  for k in range(8)) / 8
    else:
        out = tiled_forward(net, x, tile=tile, scale=scale, out_device="cpu")
    if not torch.isfinite(out).all():
        raise NonFiniteOutputError(f"the model produced NaN/inf values{_broken_weights(net)}")
    return out.float().clamp(0, 1)[0].cpu()


def _broken_weights(net) -> str:
    """Why a network's output may be non-finite: its own weights, if they are."""
    if any(not torch.isfinite(p).all() for p in net.parameters()) or \
            any(b.is_floating_point() and not torch.isfinite(b).all() for b in net.buffers()):
        return " because its weights contain NaN/inf: the model file is corrupted"
    return " (the model file may be corrupted)"


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------

def evaluate(net, cfg: Config, images: Sequence, *, level=None, sigma: Optional[float] = None, tile: int = 0,
             with_baseline: bool = True, progress: bool = True, keep_images: bool = False,
             bm3d: bool = False, self_ensemble: bool = False, inputs: Optional[Sequence] = None) -> Dict:
    """Per-image and mean PSNR/SSIM for the degraded input, the baseline and the model.

    Args:
        net, cfg: the trained network and its config (the task decides the
            degradation, the metric conventions and the baseline).
        images: ``(name, array)`` pairs of clean images.
        level: evaluate at another level than the model's (e.g. another noise
            sigma); ``sigma`` is the same for denoising.
        tile: tiled inference with this tile size (0 = whole images).
        with_baseline: add the task's classical baseline (NLM, bicubic).
        keep_images: also return the images (``res["restored"]``).
        bm3d: add BM3D (denoising; needs ``pip install bm3d``; seconds per image).
        self_ensemble: the model's output averaged over the 8 flips/rotations
            (:func:`run_model`); ``res["self_ensemble"]`` records it.
        inputs: paired data: the real degraded input of each image (arrays, e.g. from
            :func:`~hinas_lib.datasets.match_inputs`) instead of the task's synthetic one;
            ``level`` then says what they are at (it drives the baseline only) and
            ``res["paired"]`` is True.

    Returns:
        ``{"task", "level_name", <level_name>, "baseline", "labels", "metric", "images", "mean"}``.
    """
    expect(cfg, Config, "cfg", CONFIG_HINT)
    task = get_task(cfg)
    if bm3d and "bm3d" not in task.extra_baselines:
        raise ValueError(f"bm3d: BM3D is a denoising baseline; this model is for {task.name}")
    _check_eval_args(net, images, sigma if level is None else level, tile)
    expect(self_ensemble, bool, "self_ensemble")
    level = task.level(sigma if level is None else level)
    if inputs is not None and len(inputs) != len(images):
        raise ValueError(f"inputs: {len(inputs)} degraded inputs for {len(images)} images")
    ds = task.eval_dataset(images, level, inputs=inputs)
    kw = task.metric_kwargs
    rows: List[Dict] = []
    kept = []
    for inp, target, name in tqdm(ds, desc="eval", disable=not progress):
        cands = {"input": task.input_view(inp),
                 "ours": run_model(net, inp, cfg, tile=tile, self_ensemble=self_ensemble)}
        if with_baseline:
            cands["baseline"] = task.baseline(inp, level)
        if bm3d:
            cands["bm3d"] = task.extra_baselines["bm3d"](inp, level)
        row = {"image": name}
        for k, v in cands.items():
            row[f"{k}_psnr"] = psnr(v, target, **kw)
            row[f"{k}_ssim"] = ssim(v, target, **kw)
        rows.append(row)
        if keep_images:
            kept.append({"name": name, "target": target, **cands})
    keys = [k for k in rows[0] if k != "image"]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    res = {"task": task.name, "level_name": task.level_name, task.level_name: level,
           "baseline": task.baseline_label if with_baseline else None,
           "labels": {"input": task.input_label, "baseline": task.baseline_label, "bm3d": "BM3D",
                      "ours": "HiNAS x8" if self_ensemble else "HiNAS"},
           # the baseline is the input itself (bicubic SR): tables show it once
           "baseline_is_input": task.baseline_is_input,
           "metric": task.metric_label, "images": rows, "mean": mean, "self_ensemble": self_ensemble,
           "paired": inputs is not None}
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
        if min(item[1].shape[:2]) < 1:
            raise ValueError(f"images[{i}] ({item[0]!r}): empty image of shape {tuple(item[1].shape)}")
    expect(sigma, (numbers.Real, type(None)), "sigma")
    expect(tile, numbers.Integral, "tile")
    check_tile(tile)


def format_table(res: Dict, name_width: int = 24) -> str:
    """The result of :func:`evaluate` as a plain-text table (PSNR / SSIM per image and the mean);
    ``name_width``: the width of the image-name column (names are cut to it)."""
    label = res["labels"]
    cols = [c for c in ("input", "baseline", "bm3d", "ours") if f"{c}_psnr" in res["mean"]
            and not (c == "baseline" and res.get("baseline_is_input"))]
    head = f"{'image':<{name_width}}" + "".join(f"{label[c] + ' PSNR/SSIM':>22}" for c in cols)
    lines = [head, "-" * len(head)]
    for r in res["images"] + [{"image": "MEAN", **res["mean"]}]:
        lines.append(f"{r['image'][:name_width]:<{name_width}}" +
                     "".join(f"{r[c + '_psnr']:>13.2f} / {r[c + '_ssim']:.4f}" for c in cols))
    return "\n".join(lines)


def restore_file(model_path: str | Path, src: str | Path, dst: str | Path, *, device: Optional[str] = None,
                 tile: int = 512, convert: bool = False, overwrite_input: bool = False,
                 self_ensemble: bool = False, background=None) -> Dict:
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
        self_ensemble: average over the 8 flips/rotations (8x the time; :func:`run_model`).
        background: composite a transparent image over this colour (``"white"``,
            ``"#808080"``, ``(r, g, b)``); without it such an image is refused.

    Returns:
        ``{'input_shape', 'output_shape', 'task'}``.
    """
    for value, name in ((model_path, "model_path"), (src, "src"), (dst, "dst")):
        expect(value, PATH_TYPES, name)
    expect(tile, numbers.Integral, "tile")
    check_tile(tile)
    expect(self_ensemble, bool, "self_ensemble")
    src, dst = Path(src), Path(dst)
    model_path = resolve_model(model_path)  # a wrong model name fails first; loading comes last
    check_output_path(dst, src=src, overwrite_input=overwrite_input)
    img = data.load_image(src, channels=None, background=background)
    net, cfg, _ = load_model(model_path, device)
    net = inference_copy(net)  # BN folded, NHWC: the same output, faster
    c = cfg.task.channels
    have = 1 if img.ndim == 2 else img.shape[2]
    if have != c:
        if not convert:
            kind = {1: "grey (1 channel)", 3: "RGB (3 channels)"}
            raise ValueError(f"{src}: the model expects {kind[c]} images but the file is {kind.get(have, have)}; "
                             "pass --convert to convert it")
        img = data.to_channels(img, c, source=str(src))
    try:
        out = run_model(net, data.to_tensor(img), cfg, tile=tile, self_ensemble=self_ensemble)
    except NonFiniteOutputError as e:
        raise NonFiniteOutputError(f"{model_path}: on {src}, {e}") from None
    data.save_image(dst, data.to_numpy(out))
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
