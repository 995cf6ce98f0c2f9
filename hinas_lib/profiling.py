"""Time and memory of one search iteration (used by notebook 3 and benchmarks/).

Activation memory is measured as the bytes of all distinct tensors autograd
saves for backward during the forward passes (``saved_tensors_hooks``): the
memory a search step must hold between forward and backward, independent of
allocator caching and of the machine's noise. On CUDA the allocator's peak
(``torch.cuda.max_memory_allocated``) is reported too.
"""
from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from typing import Dict, Optional

import torch

from .config import Config
from .fused import PerfOptions
from .runtime import pick_device, prepare_model
from .search import arch_step, make_optimizers, weight_step
from .supernet import build_supernet
from .tasks import get_task


@contextmanager
def saved_tensor_meter():
    """Counts bytes of distinct storages saved for backward; yields a dict with 'bytes'."""
    seen, out = set(), {"bytes": 0}

    def pack(t):
        try:
            key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        except (RuntimeError, NotImplementedError):
            key = (id(t), t.numel() * t.element_size())
        if key not in seen:
            seen.add(key)
            out["bytes"] += key[1]
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield out


def random_batch(cfg: Config, batch_size: int, crop: int, device, generator=None):
    """(input, target) at the search's shapes, for timing: a random target patch
    of ``task.gt_crop(crop)`` pixels and its degradation by the task."""
    task = get_task(cfg)
    s = task.gt_crop(crop)
    gt = torch.rand(batch_size, task.channels, s, s, generator=generator)
    lq = torch.stack([task.degrade(g, generator) for g in gt])
    return lq.to(device), gt.to(device)


def measure_search_step(cfg: Config, *, batch_size: Optional[int] = None, crop: Optional[int] = None,
                        iters: int = 3, warmup: int = 1, device: Optional[str] = None, amp: str = "none",
                        seed: int = 0, perf: PerfOptions = PerfOptions()) -> Dict:
    """Median seconds per search iteration (architecture step + weight step, each
    forward and backward) and activation memory, for ``cfg``'s supernet."""
    dev = pick_device(device)
    torch.manual_seed(seed)
    b = batch_size or cfg.search.batch_size
    c = crop or cfg.search.crop
    net = prepare_model(build_supernet(cfg, perf), dev).train()
    loss_fn = get_task(cfg).loss()
    w_opt, a_opt = make_optimizers(net, cfg)
    g = torch.Generator().manual_seed(seed)
    xt, yt = random_batch(cfg, b, c, dev, g)
    xv, yv = random_batch(cfg, b, c, dev, g)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times, act = [], 0
    for i in range(warmup + iters):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        with saved_tensor_meter() as m1:
            arch_step(net, a_opt, loss_fn, xv, yv, device=dev, amp=amp)
        with saved_tensor_meter() as m2:
            weight_step(net, w_opt, loss_fn, xt, yt, grad_clip=cfg.search.grad_clip, device=dev, amp=amp)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
        act = max(act, m1["bytes"], m2["bytes"])
    res = {"iter_s_median": statistics.median(times), "iter_s_all": times, "activation_mib": act / 2**20,
           "batch_size": b, "crop": c, "device": str(dev),
           "cell_sharing": cfg.space.cell_sharing, "checkpoint_cells": cfg.space.checkpoint_cells}
    if dev.type == "cuda":
        res["cuda_peak_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
    return res
