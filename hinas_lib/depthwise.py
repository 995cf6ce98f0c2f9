"""Dilated depthwise convolutions whose backward is faster on the CPU.

torch's CPU backward of a *dilated* depthwise convolution (oneDNN, one call for the input's and
the weight's gradients) takes 1.6-1.9x the time of computing the input's gradient as a forward
convolution with the kernel flipped and the weight's gradient alone (measured on this project's
AMD EPYC at 1 and 2 threads, batch 16 of 48x48, 48-96 channels, 3x3 and 5x5 at rate 2: the
compact design's ``dil_conv`` ops, which the zoo's networks are full of). For stride 1 and "same"
zero padding the two are the same function: the input's gradient of ``y = x * w`` (correlation)
is ``g * flip(w)`` with the same padding and dilation. Undilated depthwise convolutions gain
nothing (their joint backward is already as fast), so they keep torch's.

:class:`DepthwiseConv2d` is an ``nn.Conv2d`` (same parameters, state_dict and forward) that takes
this path when it applies (:func:`conv2d`); ``hinas_lib.fused`` calls :func:`conv2d` too, and
:func:`flip_applies`, :func:`input_grad` and :func:`weight_grad` in its own backward.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def flip_applies(x: torch.Tensor, w: torch.Tensor, stride, padding, dilation, groups: int) -> bool:
    """Is this a dilated depthwise conv (one input and one output channel per group), stride 1,
    "same" zero padding, on the CPU, where the flipped-kernel input gradient is faster?"""
    if isinstance(padding, str) or x.device.type != "cpu" or x.dim() != 4:
        return False
    k = w.shape[-2:]
    return (w.shape[1] == 1 and w.shape[0] == groups == x.shape[1] and tuple(stride) == (1, 1)
            and max(dilation) > 1 and all(p * 2 == d * (s - 1) for p, d, s in zip(padding, dilation, k)))


def input_grad(g: torch.Tensor, w: torch.Tensor, padding, dilation) -> torch.Tensor:
    """The input's gradient of a depthwise conv that :func:`flip_applies` to: a forward conv of
    the output's gradient with the kernel flipped (same padding, dilation and groups)."""
    return F.conv2d(g, w.flip((-2, -1)), None, 1, padding, dilation, w.shape[0])


def weight_grad(g: torch.Tensor, x: torch.Tensor, w: torch.Tensor, padding, dilation) -> torch.Tensor:
    """The weight's gradient alone (torch's convolution backward asked for nothing else)."""
    return torch.ops.aten.convolution_backward(g, x, w, None, [1, 1], list(padding), list(dilation), False,
                                               [0, 0], w.shape[0], [False, True, False])[1]


class _DilatedDepthwise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, padding, dilation):
        ctx.save_for_backward(x, w)
        ctx.padding, ctx.dilation = padding, dilation
        return F.conv2d(x, w, None, 1, padding, dilation, w.shape[0])

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        # the input's layout: oneDNN would otherwise convert the gradient per call
        g = g.contiguous(memory_format=torch.channels_last
                         if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
                         else torch.contiguous_format)
        # under autocast the forward ran in g's (lower) precision on cast copies: so does backward,
        # and the gradients go back to the inputs' own dtypes, as autograd's casts would do
        dt = g.dtype
        gx = (input_grad(g, w.to(dt), ctx.padding, ctx.dilation).to(x.dtype)
              if ctx.needs_input_grad[0] else None)
        gw = (weight_grad(g, x.to(dt), w.to(dt), ctx.padding, ctx.dilation).to(w.dtype)
              if ctx.needs_input_grad[1] else None)
        return gx, gw, None, None


def dilated_depthwise(x: torch.Tensor, w: torch.Tensor, padding, dilation) -> torch.Tensor:
    """``F.conv2d(x, w, None, 1, padding, dilation, groups=channels)`` with the faster backward;
    only for convs :func:`flip_applies` to."""
    return _DilatedDepthwise.apply(x, w, tuple(padding), tuple(dilation))


def conv2d(x: torch.Tensor, w: torch.Tensor, b, stride, padding, dilation, groups: int) -> torch.Tensor:
    """``F.conv2d``, taking :func:`dilated_depthwise` (its faster backward) where it applies and a
    graph is being recorded."""
    if (b is None and torch.is_grad_enabled() and (x.requires_grad or w.requires_grad)
            and flip_applies(x, w, stride, padding, dilation, groups)):
        return dilated_depthwise(x, w, padding, dilation)
    return F.conv2d(x, w, b, stride, padding, dilation, groups)


class DepthwiseConv2d(nn.Conv2d):
    """A depthwise ``nn.Conv2d`` (``groups = channels``, no bias): the same module, except that
    when it is dilated and runs on the CPU with gradients its backward is the faster one."""

    def __init__(self, channels: int, kernel: int, padding: int = 0, dilation: int = 1):
        super().__init__(channels, channels, kernel, padding=padding, dilation=dilation, groups=channels,
                         bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_mode != "zeros":
            return super().forward(x)
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


__all__ = ["DepthwiseConv2d", "conv2d", "dilated_depthwise", "flip_applies", "input_grad", "weight_grad"]
