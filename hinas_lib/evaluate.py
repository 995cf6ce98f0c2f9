"""Evaluation and inference: metrics tables, baselines, tiled inference, restore.

Conventions: denoising is measured on the grey (or RGB) image as is; SR on
the Y channel (BT.601) with ``scale`` border pixels shaved, as SR papers do.
Every table also shows the degraded input and a classical baseline
(scikit-image non-local means for denoising, bicubic for SR).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from . import data, streams
from .config import Config
from .degrade import bicubic_upscale
from .metrics import psnr, ssim
from .inference import receptive_radius, tiled_forward  # noqa: F401 (re-exported)


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
    """(C,H,W) in -> (C,H',W') out, clamped to [0,1], on CPU."""
    scale = cfg.task.scale if cfg.task.task == "sr" else 1
    net.eval()
    # the image stays on the CPU; tiles go to the network's device one at a time
    out = tiled_forward(net, img_tensor.unsqueeze(0), tile=tile, scale=scale, out_device="cpu")
    return out.float().clamp(0, 1)[0].cpu()


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
    if bm3d and cfg.task.task != "denoise":
        raise ValueError("bm3d: BM3D is a denoising baseline; this model is for " + cfg.task.task)
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
                 tile: int = 512, convert: bool = False) -> Dict:
    """Apply a trained model to an image file and write the result."""
    from .train import load_model
    net, cfg, _ = load_model(model_path, device)
    c = cfg.task.channels
    img = data.load_image(src, channels=None)
    have = 1 if img.ndim == 2 else img.shape[2]
    if have != c:
        if not convert:
            kind = {1: "grey (1 channel)", 3: "RGB (3 channels)"}
            raise ValueError(f"{src}: the model expects {kind[c]} images but the file is {kind.get(have, have)}; "
                             "pass --convert to convert it")
        img = data.load_image(src, channels=c)
    out = run_model(net, to_tensor(img), cfg, tile=tile)
    data.save_image(dst, streams.stack_to_numpy(out))
    return {"input_shape": list(img.shape), "output_shape": list(out.shape), "task": cfg.task.task}
