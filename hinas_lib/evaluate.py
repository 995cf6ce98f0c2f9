"""Evaluation tables and restoring image files with a trained model.

The task decides the conventions (:mod:`hinas_lib.tasks`): denoising is
measured on the grey (or RGB) image as is; SR on the Y channel (BT.601) with
``scale`` border pixels shaved, as SR papers do. Every table also shows the
degraded input and the task's classical baseline (scikit-image non-local means
for denoising, bicubic for SR). Inference goes through
:func:`hinas_lib.inference.tiled_forward`, so any image size fits in memory.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from . import data
from .config import Config
from .inference import tiled_forward
from .metrics import psnr, ssim
from .network import load_model
from .tasks import get_task


# ---------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------

def run_model(net, img_tensor: torch.Tensor, cfg: Config, tile: int = 0) -> torch.Tensor:
    """(C,H,W) in -> (C,H',W') out, clamped to [0,1], on CPU."""
    net.eval()
    # the image stays on the CPU; tiles go to the network's device one at a time
    out = tiled_forward(net, img_tensor.unsqueeze(0), tile=tile, scale=get_task(cfg).scale, out_device="cpu")
    return out.float().clamp(0, 1)[0].cpu()


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------

def evaluate(net, cfg: Config, images: Sequence, *, level=None, sigma: Optional[float] = None, tile: int = 0,
             with_baseline: bool = True, progress: bool = True, keep_images: bool = False,
             bm3d: bool = False) -> Dict:
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

    Returns:
        ``{"task", "level_name", <level_name>, "baseline", "labels", "metric", "images", "mean"}``.
    """
    task = get_task(cfg)
    if bm3d and "bm3d" not in task.extra_baselines:
        raise ValueError(f"bm3d: BM3D is a denoising baseline; this model is for {task.name}")
    level = task.level(sigma if level is None else level)
    ds = task.eval_dataset(images, level)
    kw = task.metric_kwargs
    rows: List[Dict] = []
    kept = []
    for inp, target, name in tqdm(ds, desc="eval", disable=not progress):
        cands = {"input": task.input_view(inp), "ours": run_model(net, inp, cfg, tile=tile)}
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
           "labels": {"input": task.input_label, "baseline": task.baseline_label, "bm3d": "BM3D", "ours": "HiNAS"},
           # the baseline is the input itself (bicubic SR): tables show it once
           "baseline_is_input": task.baseline_is_input,
           "metric": task.metric_label, "images": rows, "mean": mean}
    if keep_images:
        res["restored"] = kept
    return res


def format_table(res: Dict) -> str:
    """The result of :func:`evaluate` as a plain-text table (PSNR / SSIM per image and the mean)."""
    label = res["labels"]
    cols = [c for c in ("input", "baseline", "bm3d", "ours") if f"{c}_psnr" in res["mean"]
            and not (c == "baseline" and res.get("baseline_is_input"))]
    head = f"{'image':<24}" + "".join(f"{label[c] + ' PSNR/SSIM':>22}" for c in cols)
    lines = [head, "-" * len(head)]
    for r in res["images"] + [{"image": "MEAN", **res["mean"]}]:
        lines.append(f"{r['image'][:24]:<24}" +
                     "".join(f"{r[c + '_psnr']:>13.2f} / {r[c + '_ssim']:.4f}" for c in cols))
    return "\n".join(lines)


def restore_file(model_path: str | Path, src: str | Path, dst: str | Path, *, device: Optional[str] = None,
                 tile: int = 512, convert: bool = False) -> Dict:
    """Apply a trained model to an image file and write the result."""
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
    out = run_model(net, data.to_tensor(img), cfg, tile=tile)
    data.save_image(dst, data.to_numpy(out))
    return {"input_shape": list(img.shape), "output_shape": list(out.shape), "task": cfg.task.task}
