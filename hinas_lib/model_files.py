"""A trained network's file, ``model.pt``: its config, genotype, width and weights
(tensors and plain data only, so ``torch.load(weights_only=True)`` reads it), written
atomically and read back, by path, run folder or zoo name, into the network it describes.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional, Tuple

from torch import nn

from .checkpoint import CheckpointError, atomic_save, load_checkpoint
from .checks import MAX_FILTERS
from .config import Config, ConfigError
from .genotype import Genotype, GenotypeError
from .network import build_network
from .runfiles import MODEL_FILE
from .runtime import pick_device
from .tasks import get_task
from .zoo import resolve_model

MODEL_FORMAT = 1
MODEL_NAME = MODEL_FILE  # (the name scripts import)


def model_checkpoint(net: nn.Module, cfg: Config, genotype: Genotype, metrics: Dict,
                     filters: Optional[int] = None) -> Dict:
    """The content of a ``model.pt``: config, genotype, filters, weights, metrics."""
    return {"kind": "model", "format": MODEL_FORMAT, "config": cfg.to_dict(), "genotype": genotype.to_dict(),
            "filters": cfg.train.filters if filters is None else int(filters),
            "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "metrics": json.dumps(metrics)}


def save_model(path: str | Path, net: nn.Module, cfg: Config, genotype: Genotype, metrics: Dict) -> None:
    """Write ``model.pt`` atomically (a crash leaves the previous file intact)."""
    atomic_save(model_checkpoint(net, cfg, genotype, metrics), path)


def load_model(path: str | Path, device: Optional[str] = None, *, task: Optional[str] = None,
               scale: Optional[int] = None) -> Tuple[nn.Module, Config, Dict]:
    """Rebuild a trained network from its self-describing checkpoint.

    Args:
        path: a ``model.pt``, a folder holding one, or a zoo name (``denoise-s30``).
        device: where to put it (default: CUDA when available).
        task, scale: refuse a model made for another task or SR scale.

    Returns:
        ``(net, config, checkpoint dict)``, the network in eval mode.
    """
    path = resolve_model(path)
    ckpt = load_checkpoint(path, kind="model")
    for key, kind in (("config", dict), ("genotype", dict), ("state_dict", dict)):
        if not isinstance(ckpt.get(key), kind):
            what = "has no" if key not in ckpt else f"has a {type(ckpt[key]).__name__} as its"
            raise CheckpointError(f"{path}: {what} {key!r} entry; not a complete hinas model.pt "
                                  "(damaged, or written by something else)")
    try:
        cfg = Config.from_dict(ckpt["config"])
    except ConfigError as e:
        raise CheckpointError(f"{path}: its stored config is invalid ({e})") from None
    if task is not None and task != cfg.task.task:
        raise CheckpointError(f"{path} holds a {cfg.task.task!r} model, but task {task!r} was asked for")
    if scale is not None and get_task(cfg).level_name != "scale":
        raise CheckpointError(f"--scale: {path} is a {cfg.task.task} model; --scale is the SR factor of SR models")
    if scale is not None and scale != get_task(cfg).scale:
        raise CheckpointError(f"{path} is an x{get_task(cfg).scale} model, but x{scale} was asked for")
    filters = ckpt.get("filters")
    if isinstance(filters, bool) or not isinstance(filters, int) or not 1 <= filters <= MAX_FILTERS:
        raise CheckpointError(f"{path}: stores filters={filters!r}, not a width in 1..{MAX_FILTERS} (damaged?)")
    try:
        geno = Genotype.from_dict(ckpt["genotype"])
    except GenotypeError as e:
        raise CheckpointError(f"{path}: its stored genotype is invalid ({e})") from None
    net = build_network(geno, cfg, filters=filters)
    try:
        net.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as e:  # a state_dict of non-tensors raises these
        # torch lists every mismatched tensor (pages of it): name the first and count the rest
        lines = [ln.strip() for ln in str(e).replace(". ", ".\n").splitlines() if "size mismatch" in ln
                 or "Missing key" in ln or "Unexpected key" in ln]
        first = lines[0] if lines else str(e).splitlines()[0]
        more = f"; {len(lines) - 1} more" if len(lines) > 1 else ""
        raise CheckpointError(f"{path}: weights do not match the stored genotype/config ({first[:300]}{more})") from None
    net = net.to(pick_device(device)).eval()
    return net, cfg, ckpt


__all__ = ["MODEL_FORMAT", "MODEL_NAME", "model_checkpoint", "save_model", "load_model"]
