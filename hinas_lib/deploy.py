"""A trained network made ready for inference only, and the memory behaviour inference wants.

* :func:`inference_copy`: a copy in eval mode with every BatchNorm that directly follows a
  convolution folded into that convolution (one op instead of two; equal outputs up to float32
  rounding) and, on the CPU, in channels_last (NHWC), where oneDNN's depthwise and dilated
  kernels are fastest, and for the compact design on the CPU the planned forward pass of
  :mod:`hinas_lib.inference_plan` (fused oneDNN primitives, fewer passes over memory). The
  original network is left as it was (it may still be trained).
* :func:`keep_freed_memory`: glibc returns large freed buffers to the kernel, and a forward pass
  frees and reallocates its activations layer after layer, tile after tile, so every one of them
  is page-faulted in again: measured on an 800x600 restore, half the time was system time.
  Keeping freed memory in the process removes that (at the cost of a higher resident size).
"""
from __future__ import annotations

import copy
import ctypes
import ctypes.util
import sys

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .inference_plan import plan_for_inference

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_kept = False


def keep_freed_memory() -> bool:
    """Make this process keep memory it frees for reuse instead of returning it to the kernel
    (glibc: large blocks from the heap rather than one mmap each, and no trimming). A process
    setting, idempotent; True when it applies (Linux with glibc), False elsewhere (no-op)."""
    global _kept
    if _kept:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = (mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
          and mallopt(_M_TOP_PAD, 64 << 20) == 1)
    _kept = ok
    return ok


def fold_batchnorm_(net: nn.Module) -> int:
    """Fold, in place, every eval-mode BatchNorm2d that directly follows a Conv2d inside an
    ``nn.Sequential`` into that conv (the BN becomes an Identity). Returns how many were folded."""
    n = 0
    for m in net.modules():
        if not isinstance(m, nn.Sequential):
            continue
        for i in range(len(m) - 1):
            conv, bn = m[i], m[i + 1]
            if (type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d and bn.track_running_stats
                    and bn.running_mean is not None):
                m[i] = fuse_conv_bn_eval(conv.eval(), bn.eval())
                m[i + 1] = nn.Identity()
                n += 1
    return n


def inference_copy(net: nn.Module, plan: bool = True) -> nn.Module:
    """An eval-mode copy of ``net`` with its BatchNorms folded (:func:`fold_batchnorm_`) and, on
    the CPU, its weights in channels_last. Gradients are off for every parameter. With ``plan``
    (the default), a compact network on the CPU comes back as
    :class:`hinas_lib.inference_plan.PlannedCompactNet` (the same function, faster); anything
    the plan does not cover comes back as the eager copy."""
    out = copy.deepcopy(net).eval()
    fold_batchnorm_(out)
    for p in out.parameters():
        p.requires_grad_(False)
    try:
        on_cpu = next(out.parameters()).device.type == "cpu"
    except StopIteration:
        on_cpu = True
    if on_cpu:
        out = out.to(memory_format=torch.channels_last)
        if plan:
            out = plan_for_inference(out)
    return out


__all__ = ["inference_copy", "fold_batchnorm_", "keep_freed_memory"]
