"""Candidate operations of the HiNAS inner search space.

Every primitive is built by ``OPS[name](channels, affine, act)`` and keeps the
spatial size (image restoration never downsamples inside a cell). Register a
new primitive with :func:`register_op`; it then becomes available to configs,
the supernet, genotypes and the discrete network at once.
"""
from __future__ import annotations

from typing import Callable, Dict, Sequence

import torch
from torch import nn

from .depthwise import DepthwiseConv2d

# Fixed order: alpha columns are indexed by position, so this must never come
# from a set (resumed searches would otherwise permute their alphas).
# The compact design's candidates (dilated convs separable, as in DARTS):
PRIMITIVES = [
    "none",
    "skip_connect",
    "conv_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
]

# The authors' candidates, in their alpha-column order (hkzhang91/HiNAS
# one_stage_nas/darts/genotypes.py, "NO_DEF_L"): their dilated convs are dense.
AUTHORS_PRIMITIVES = [
    "conv_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dense_dil_3x3",
    "dense_dil_5x5",
    "skip_connect",
    "none",
]

ACTIVATIONS: Dict[str, Callable[[int], nn.Module]] = {
    "leaky_relu": lambda c: nn.LeakyReLU(0.2, inplace=False),
    "relu": lambda c: nn.ReLU(inplace=False),
    "prelu": lambda c: nn.PReLU(c),
    # smooth: no kink where float rounding could flip the slope (used to compare runs exactly)
    "silu": lambda c: nn.SiLU(inplace=False),
}


def make_act(name: str, channels: int) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name](channels)


class Zero(nn.Module):
    """The `none` op. Mixed ops skip it; it exists so a discrete net could hold it."""

    def forward(self, x):
        return x.mul(0.0)


class ActConvBN(nn.Sequential):
    """act -> conv -> BN. BN is non-affine during search (as in DARTS/HiNAS)."""

    def __init__(self, c_in, c_out, kernel, dilation=1, groups=1, affine=True, act="leaky_relu"):
        pad = dilation * (kernel - 1) // 2
        super().__init__(
            make_act(act, c_in),
            nn.Conv2d(c_in, c_out, kernel, padding=pad, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """act -> depthwise (dilated) conv -> pointwise conv -> BN. The depthwise conv is an
    ``nn.Conv2d`` whose backward, when dilated, is faster on the CPU (hinas_lib/depthwise.py)."""

    def __init__(self, c, kernel, dilation, affine=True, act="leaky_relu"):
        pad = dilation * (kernel - 1) // 2
        super().__init__(
            make_act(act, c),
            DepthwiseConv2d(c, kernel, padding=pad, dilation=dilation),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two stacked depthwise-separable convs, as in DARTS (kept flat so that it,
    like every op, starts with its activation)."""

    def __init__(self, c, kernel, affine=True, act="leaky_relu"):
        super().__init__(
            *DilConv(c, kernel, 1, affine=affine, act=act),
            *DilConv(c, kernel, 1, affine=affine, act=act),
        )


OpBuilder = Callable[[int, bool, str], nn.Module]

OPS: Dict[str, OpBuilder] = {
    "none": lambda c, affine, act: Zero(),
    "skip_connect": lambda c, affine, act: nn.Identity(),
    "conv_3x3": lambda c, affine, act: ActConvBN(c, c, 3, affine=affine, act=act),
    "sep_conv_3x3": lambda c, affine, act: SepConv(c, 3, affine=affine, act=act),
    "sep_conv_5x5": lambda c, affine, act: SepConv(c, 5, affine=affine, act=act),
    "dil_conv_3x3": lambda c, affine, act: DilConv(c, 3, 2, affine=affine, act=act),
    "dil_conv_5x5": lambda c, affine, act: DilConv(c, 5, 2, affine=affine, act=act),
    "dense_dil_3x3": lambda c, affine, act: ActConvBN(c, c, 3, dilation=2, affine=affine, act=act),
    "dense_dil_5x5": lambda c, affine, act: ActConvBN(c, c, 5, dilation=2, affine=affine, act=act),
}


def register_op(name: str, builder: OpBuilder, *, add_to_primitives: bool = False) -> None:
    """Add a primitive. ``builder(channels, affine, act)`` must keep shape (C,H,W)."""
    if name in OPS:
        raise ValueError(f"op {name!r} is already registered")
    OPS[name] = builder
    if add_to_primitives:
        PRIMITIVES.append(name)


def build_op(name: str, channels: int, affine: bool, act: str = "leaky_relu") -> nn.Module:
    if name not in OPS:
        raise ValueError(f"unknown op {name!r}; registered ops: {sorted(OPS)}")
    return OPS[name](channels, affine, act)


def router(c_in: int, c_out: int, affine: bool, act: str = "leaky_relu") -> nn.Module:
    """1x1 act-conv-BN that moves a feature map between width levels."""
    return ActConvBN(c_in, c_out, 1, affine=affine, act=act)


def conv_bn(c_in: int, c_out: int, kernel: int, *, affine: bool = True, act: bool = False,
            dilation: int = 1, groups: int = 1) -> nn.Sequential:
    """conv (no bias, "same" padding) -> BN [-> LeakyReLU(0.2)]: the authors'
    ``conv3x3_bn`` / ``conv1x1_bn`` (one_stage_nas/modeling/common.py)."""
    layers = [nn.Conv2d(c_in, c_out, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation,
                        groups=groups, bias=False),
              nn.BatchNorm2d(c_out, affine=affine)]
    if act:
        layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class _CatChannels(torch.autograd.Function):
    """``torch.cat(xs, dim=1)`` whose backward hands each input a dense gradient in that input's
    memory format. torch's own backward hands out channel slices of the output's gradient:
    strided views that are neither NCHW- nor NHWC-contiguous, and torch's CPU BatchNorm backward
    on such a gradient with an NHWC input runs a slow kernel (about 10x: 26 ms against 2.7 ms on
    (16, 48, 48, 48), one thread). One copy per block instead."""

    @staticmethod
    def forward(ctx, *xs):
        ctx.sizes = [x.shape[1] for x in xs]
        ctx.formats = [torch.channels_last if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
                       else torch.contiguous_format for x in xs]
        return torch.cat(xs, dim=1)

    @staticmethod
    def backward(ctx, g):
        return tuple(part.contiguous(memory_format=fmt)
                     for part, fmt in zip(g.split(ctx.sizes, dim=1), ctx.formats))


def cat_channels(xs: Sequence[torch.Tensor]) -> torch.Tensor:
    """The channel concatenation of the cells' blocks (see :class:`_CatChannels`)."""
    if len(xs) > 1 and torch.is_grad_enabled() and any(x.requires_grad for x in xs):
        return _CatChannels.apply(*xs)
    return torch.cat(list(xs), dim=1)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = [
    "PRIMITIVES", "AUTHORS_PRIMITIVES", "OPS", "ACTIVATIONS", "register_op", "build_op", "router", "make_act",
    "ActConvBN", "SepConv", "DilConv", "Zero", "conv_bn", "count_params", "cat_channels",
]
