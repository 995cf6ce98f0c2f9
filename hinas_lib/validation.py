"""The validation metric: one definition for search and retraining.

Both report ``val_psnr`` / ``val_ssim`` with the task's conventions (the Y
channel and a ``scale``-pixel border shave for SR, the whole image for
denoising): the search on fixed validation patches, retraining on whole
validation images. Outputs are clamped to [0, 1] before scoring.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

import torch

from . import distributed
from .metrics import psnr, ssim
from .runtime import autocast, to_device


def validate(net: torch.nn.Module, items: Sequence, task, device: torch.device, *, amp: str = "none",
             loss_fn: Optional[Callable] = None, dist: Optional[distributed.DistInfo] = None) -> Dict[str, float]:
    """Mean PSNR / SSIM (and loss) of ``net`` over ``items``.

    Args:
        net: the network; run in eval mode, its mode restored afterwards.
        items: ``(lq, gt, ...)`` tuples, each a batch ``N,C,H,W`` or one image ``C,H,W``.
        task: a :class:`~hinas_lib.tasks.Task` (its ``metric_kwargs``).
        device, amp: where and in which precision to run.
        loss_fn: also report the mean loss over the items as ``val_loss``.
        dist: several processes: the items are split over the ranks and the
            per-item scores put back in order, so every rank gets the
            single-process numbers.

    Returns:
        ``{"val_psnr", "val_ssim"}`` (plus ``"val_loss"``): means over images.
    """
    dist = dist or distributed.DistInfo()
    kw = task.metric_kwargs
    was_training = net.training
    net.eval()
    scores = []  # per item: (loss or None, [psnr per image], [ssim per image])
    with torch.no_grad():
        for item in distributed.shard(items, dist):
            x, y = item[0], item[1]
            if x.dim() == 3:
                x, y = x.unsqueeze(0), y.unsqueeze(0)
            x = to_device(x, device)
            with autocast(device, amp):
                out = net(x)
            out = out.float()
            loss = float(loss_fn(out, to_device(y, device))) if loss_fn is not None else None
            out = out.cpu()
            pairs = list(zip(out.clamp(0, 1), y))
            scores.append((loss, [psnr(o, t, **kw) for o, t in pairs], [ssim(o, t, **kw) for o, t in pairs]))
    net.train(was_training)
    scores = distributed.unshard(scores, len(items), dist)
    ps = [p for _, b, _ in scores for p in b]
    ss = [q for _, _, b in scores for q in b]
    res = {"val_psnr": sum(ps) / len(ps), "val_ssim": sum(ss) / len(ss)}
    if loss_fn is not None:
        res["val_loss"] = sum(l for l, _, _ in scores) / len(scores)
    return res


__all__ = ["validate"]
