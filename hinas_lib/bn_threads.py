"""Training-mode BatchNorm on the CPU that does not slow down with more threads.

torch's channels_last (NHWC) BatchNorm kernels run *slower* on 2 threads than on 1 when the
channel count is not a multiple of the vector width (16 floats with AVX-512): measured on a
Xeon (torch 2.13), (6, 20, 64, 64), forward + backward 0.9 ms on 1 thread, 2.9 ms on 2. The
search cells' fused BNs have E x C channels (C = 10, 15, 20, ... in the paper presets), so at 2
threads BatchNorm was a third of the search step. Here such BNs run on one thread (switching
the thread count costs nothing measurable); the others, and NCHW ones, as torch runs them.
Same kernels, same numbers (up to the order of the reduction over threads). The thread count is
a process setting: another Python thread running torch ops at that moment would run them on
one thread too (slower, never wrong); the library runs its steps on one Python thread.
"""
from __future__ import annotations

import contextlib
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

VECTOR = 16  # floats per AVX-512 register: widths that are multiples of it keep torch's fast kernel


def _slow_on_threads(x: torch.Tensor) -> bool:
    """Would torch's BN kernel on ``x`` be slower on this many threads than on one?"""
    return (x.device.type == "cpu" and x.dim() == 4 and x.shape[1] % VECTOR != 0
            and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
            and torch.get_num_threads() > 1)


@contextlib.contextmanager
def one_thread_if_slow(x: torch.Tensor):
    """Run the block on one intra-op thread when ``x``'s BN would be slower on more."""
    n = torch.get_num_threads() if _slow_on_threads(x) else 1
    if n > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if n > 1:
            torch.set_num_threads(n)


def bn_forward(x, gamma, beta, rm, rv, factor: float, eps: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``torch.native_batch_norm`` in training mode: (output, batch mean, batch invstd)."""
    with one_thread_if_slow(x):
        return torch.native_batch_norm(x, gamma, beta, rm, rv, True, factor, eps)


def bn_backward(grad, x, gamma, mean, invstd, eps: float, mask) -> Tuple[Optional[torch.Tensor], ...]:
    """``native_batch_norm_backward`` (training mode): (grad input, grad weight, grad bias) as ``mask`` asks.
    ``grad`` is put in ``x``'s NHWC layout first: mixed layouts fall off torch's fast kernels."""
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        grad = grad.contiguous(memory_format=torch.channels_last)
    with one_thread_if_slow(x):
        return torch.ops.aten.native_batch_norm_backward(grad, x, gamma, None, None, mean, invstd, True, eps,
                                                         list(mask))


class _BatchNorm(torch.autograd.Function):
    """Training-mode BN whose forward and backward both go through :func:`bn_forward` /
    :func:`bn_backward`; keeps what ``F.batch_norm`` keeps (the input and the statistics)."""

    @staticmethod
    def forward(ctx, x, gamma, beta, rm, rv, factor, eps):
        out, mean, invstd = bn_forward(x, gamma, beta, rm, rv, factor, eps)
        ctx.save_for_backward(x, gamma, mean, invstd)
        ctx.eps, ctx.has_beta = eps, beta is not None
        return out

    @staticmethod
    def backward(ctx, grad):
        x, gamma, mean, invstd = ctx.saved_tensors
        need = ctx.needs_input_grad
        g, g_gamma, g_beta = bn_backward(grad, x, gamma, mean, invstd, ctx.eps,
                                         (need[0], gamma is not None and need[1], ctx.has_beta and need[2]))
        return g, g_gamma, g_beta, None, None, None, None


def batch_norm(x, rm, rv, gamma, beta, training: bool, factor: float, eps: float) -> torch.Tensor:
    """``F.batch_norm`` (same arguments, same function), through :class:`_BatchNorm` where
    torch's own kernel would be slower on the current thread count."""
    if training and _slow_on_threads(x):
        return _BatchNorm.apply(x, gamma, beta, rm, rv, factor, eps)
    return F.batch_norm(x, rm, rv, gamma, beta, training, factor, eps)


__all__ = ["batch_norm", "bn_forward", "bn_backward", "one_thread_if_slow"]
