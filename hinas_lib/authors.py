"""The authors' design (hkzhang91/HiNAS, ``space.style = "authors"``): their
supernet and their retraining network, module for module.

Module names follow theirs (``stem1``, ``reduce1``, ``routers.r.postprocess1``,
``decoder.aspps.i`` ...), so their checkpoints map onto ours by renaming only
the cells' insides. References are to their ``one_stage_nas/modeling`` files.

Supernet (``dn_supernet.py`` / ``sr_supernet.py``):

* stem: ``stem1`` (3x3 conv to 64, BN, LeakyReLU), then ``stem2`` (3x3 conv
  to F*B, BN) on LeakyReLU(stem1) -- the layer-0 state at level 0 -- and
  ``reduce1`` (3x3 conv to F, BN) on stem1: the first older input;
* every node of layers 0..L-2 (the stem included) has a *router*: one 1x1
  conv + BN per move leaving it (lower / keep / raise, no activation; the keep
  move has its own conv) from the B*C channels of its cell's output;
* node (l, s) runs ONE cell (no preprocessing, output = the concatenation of
  its blocks) on s1 = the beta-weighted sum of the routed inputs and s0 = the
  *previous layer's* weighted input at the same level (``reduce1`` for level 0
  of layer 0; a level seen for the first time gets ``upsamplers[s-1]`` of the
  level below);
* decoder: an ASPP (one separable rate-16 branch + a 1x1 branch) per level of
  the last layer, concatenated, a 3x3 conv+BN+act, and the task's last conv;
  output sigmoid(x - pred) (denoising) or sigmoid(bilinear(x) + pred) (SR).

Retraining network (``dn_compnet.py`` / ``sr_compnet.py``): ``stem1``,
``stem2`` (64 channels), one fixed cell per layer at the path's width, fed by
two *scalers* (act, 1x1 conv, BN) from the two previous states, and the
DeepLab-v3+-style decoder (a low-level ``endpoint`` projected to 48 channels,
the last state through a 1x1 conv (denoising) or an ASPP with rates 2, 4, 6
(SR) to 128, two separable 3x3 convs, the task's last conv); output x - pred
(denoising) or bicubic(x) + pred (SR).

What we do differently is listed in the README ("Differences from the
authors' code"): e.g. impossible moves get exactly zero weight (theirs 1e-22).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .cells import FixedCell
from .config import Config
from .designs import register_classes
from .fused import PerfOptions, make_search_cell
from .genotype import Genotype
from .grid import channel_widths, reachable
from .ops import conv_bn
from .supernet_base import SuperNetBase
from .tasks import get_task

SLOPE = 0.2  # their LeakyReLU


def sep_bn(c_in: int, c_out: int, rate: int = 1) -> nn.Sequential:
    """Their ``sep3x3_bn``: depthwise 3x3 (dilation ``rate``), BN, act, 1x1, BN, act
    (both BNs affine, whatever the network's setting)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, padding=rate, dilation=rate, groups=c_in, bias=False),
        nn.BatchNorm2d(c_in), nn.LeakyReLU(SLOPE),
        nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(SLOPE))


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling without the image-level branch: one
    separable branch per rate and a 1x1 branch, concatenated, fused by a 1x1."""

    def __init__(self, c_in: int, c_out: int, rates: Sequence[int], affine: bool = True):
        super().__init__()
        self.conv1 = conv_bn(c_in, c_out, 1, affine=affine, act=True)
        self.atrous = nn.ModuleList(sep_bn(c_in, c_out, r) for r in rates)
        self.conv_last = conv_bn(c_out * (len(rates) + 1), c_out, 1, affine=affine, act=True)

    def forward(self, x):
        return self.conv_last(torch.cat([a(x) for a in self.atrous] + [self.conv1(x)], dim=1))


class Router(nn.Module):
    """The moves out of one node: 1x1 conv + BN to the level below (``postprocess0``),
    the same level (``postprocess1``) and the level above (``postprocess2``)."""

    def __init__(self, level: int, c_in: int, widths: Sequence[int], affine: bool):
        super().__init__()
        self.level = level
        if level > 0:
            self.postprocess0 = conv_bn(c_in, widths[level - 1], 1, affine=affine)
        self.postprocess1 = conv_bn(c_in, widths[level], 1, affine=affine)
        if level < len(widths) - 1:
            self.postprocess2 = conv_bn(c_in, widths[level + 1], 1, affine=affine)

    def move(self, k: int) -> nn.Module:
        """The conv of move k (grid.MOVES order: lower, keep, raise)."""
        return getattr(self, f"postprocess{k}")


class AuthorsSuperNet(SuperNetBase):
    """The authors' supernet of ``cfg`` (see the module docstring)."""

    def __init__(self, cfg: Config, perf: PerfOptions = PerfOptions()):
        super().__init__()
        self._init_space(cfg)
        self.perf = perf
        sp, task = cfg.space, get_task(cfg)
        self.widths = channel_widths(sp.filters, sp.width_factors, floor=True)
        F0, B = sp.filters, sp.blocks
        affine = False  # their search configs (MODEL.AFFINE: False)
        self.stem1 = nn.Sequential(conv_bn(cfg.task.channels, 64, 3, affine=affine, act=True))
        self.stem2 = conv_bn(64, F0 * B, 3, affine=affine)
        self.reduce1 = conv_bn(64, F0, 3, affine=affine)
        self.upsamplers = nn.ModuleList(conv_bn(self.widths[i - 1], self.widths[i], 1, affine=affine)
                                        for i in range(1, self.S))
        self.cells = nn.ModuleList()
        self.routers = nn.ModuleList()
        # routers in their order: the sources of layer l's inputs, layer by layer
        for l in range(self.L):
            for s in reachable(l - 1, self.S):
                c_in = F0 * B if l == 0 else B * self.widths[s]
                self.routers.append(Router(s, c_in, self.widths, affine))
            for s in reachable(l, self.S):
                self.cells.append(make_search_cell(self.widths[s], self.widths[s], sp, perf, preprocess=False))
        self.decoder = SupernetDecoder(self.widths, B, F0, task)
        self.task = task
        self._init_arch(sp.arch_init)

    def features(self, x: torch.Tensor, naive: bool = False) -> List[torch.Tensor]:
        """The last layer's cell outputs, one per level."""
        aw, bw = self.alpha_weights(), self.beta_weights()
        f = self.stem1(x)
        older = [self.reduce1(f)]                      # s0 of each level for the coming layer
        hidden = [self.stem2(F.leaky_relu(f, SLOPE))]  # layer -1: the stem, at level 0
        if self.perf.channels_last:
            hidden = [h.contiguous(memory_format=torch.channels_last) for h in hidden]
            older = [o.contiguous(memory_format=torch.channels_last) for o in older]
        r = 0
        for l in range(self.L):
            levels = reachable(l, self.S)
            merged: List[Optional[torch.Tensor]] = [None] * len(levels)
            for src, h in zip(reachable(l - 1, self.S), hidden):
                router = self.routers[r]
                for k in range(3):
                    dst = src - 1 + k
                    if self.mask[l, src, k]:
                        term = router.move(k)(h) * bw[l, src, k]
                        merged[dst] = term if merged[dst] is None else merged[dst] + term
                r += 1
            hidden = []
            for s in levels:
                if s >= len(older):  # a level seen for the first time: widen the level below
                    older.append(self.upsamplers[s - 1](older[-1]))
                cell = self.cells[self._cell_index(l, s)]
                hidden.append(self._run_cell(cell, older[s], merged[s], self.alpha_for(l, s, aw), naive))
            older = merged
        return hidden

    def _cell_index(self, l: int, s: int) -> int:
        return sum(len(reachable(i, self.S)) for i in range(l)) + s

    def forward(self, x: torch.Tensor, naive: bool = False) -> torch.Tensor:
        pred = self.decoder(self.features(x, naive))
        return self.task.authors_output(x, pred, supernet=True).contiguous()


class SupernetDecoder(nn.Module):
    """Their ``Dn_AutoDecoder`` / ``Sr_AutoDecoder``: an ASPP (rate 16) per level,
    concatenated, ``pre_cls`` (3x3 conv, BN, act) and the task's ``clf``."""

    def __init__(self, widths: Sequence[int], blocks: int, filters: int, task):
        super().__init__()
        bf = blocks * filters
        # their BNs here follow MODEL.AFFINE (False), except inside the separable branch
        self.aspps = nn.ModuleList(ASPP(blocks * w, bf, [16], affine=False) for w in widths)
        self.pre_cls = conv_bn(bf * len(widths), bf * len(widths), 3, affine=False, act=True)
        self.clf = task.authors_clf(bf * len(widths))

    def forward(self, states: List[torch.Tensor]) -> torch.Tensor:
        # (they resize levels > 0 to level 0's size: a no-op, widths never change the size)
        return self.clf(self.pre_cls(torch.cat([a(h) for a, h in zip(self.aspps, states)], dim=1)))


class Scaler(nn.Module):
    """Their ``DeepLabScaler_Width``: act, then a 1x1 conv + BN to the cell's width."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = conv_bn(c_in, c_out, 1)

    def forward(self, x):
        return self.conv(F.leaky_relu(x, SLOPE))


class AuthorsNet(nn.Module):
    """The authors' retraining network for ``genotype`` (their ``Dn_compnet`` / ``Sr_compnet``).

    Args:
        genotype: the cells and the width path (level of each layer).
        cfg: the config (task, activation, blocks).
        filters: F (default ``cfg.train.filters``).
    """

    def __init__(self, genotype: Genotype, cfg: Config, filters: Optional[int] = None):
        super().__init__()
        self.genotype, self.cfg = genotype, cfg
        task = self.task = get_task(cfg)
        F0 = cfg.train.filters if filters is None else filters
        B = genotype.blocks
        widths = channel_widths(F0, genotype.width_factors, floor=True)
        path = list(genotype.path)
        self.widths = [widths[s] for s in path]
        # the decoder's low-level input: the last layer at level 0 (before the final one), else the stem
        zeros = [i for i, s in enumerate(path) if s == 0]
        self.endpoint = zeros[-1] if zeros and zeros[-1] < len(path) - 1 else None
        self.stem1 = conv_bn(cfg.task.channels, 64, 3, act=True)
        self.stem2 = conv_bn(64, 64, 3)
        self.reduce = conv_bn(64, F0 * B, 3, affine=False)
        self.cells = nn.ModuleList()
        self.scalers = nn.ModuleList()
        outs = [64, 64]  # channels of the two most recent states (stem1, stem2 outputs)
        for l, C in enumerate(self.widths):
            self.cells.append(FixedCell(C, C, C, genotype.cells[l], act=cfg.space.activation, preprocess=False))
            self.scalers.append(Scaler(outs[-1], C))  # s1: the newest state
            self.scalers.append(Scaler(outs[-2], C))  # s0: the one before it
            outs.append(B * C)
        self.decoder = RetrainDecoder(B * F0, B * self.widths[-1], task)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1 = self.stem1(x)
        h0 = self.stem2(F.leaky_relu(h1, SLOPE))
        endpoint = self.reduce(h0) if self.endpoint is None else None
        for i, cell in enumerate(self.cells):
            s_new, s_old = self.scalers[2 * i](h0), self.scalers[2 * i + 1](h1)
            h1, h0 = h0, cell(s_old, s_new)
            if i == self.endpoint:
                endpoint = h0
        pred = self.decoder(endpoint, F.leaky_relu(h0, SLOPE))
        return self.task.authors_output(x, pred, supernet=False)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


class RetrainDecoder(nn.Module):
    """Their ``Dn_Decoder`` / ``Sr_Decoder`` (DeepLab v3+): ``pre_conv`` of the last
    state (1x1 to 128 for denoising, an ASPP with rates 2, 4, 6 for SR), ``proj``
    of the endpoint to 48, two separable 3x3 convs, the task's ``clf``."""

    def __init__(self, c_endpoint: int, c_last: int, task):
        super().__init__()
        if task.scale > 1:  # their SR configs set MODEL.USE_ASPP, the denoising ones do not
            self.pre_conv = ASPP(c_last, 128, (2, 4, 6))
        else:
            self.pre_conv = conv_bn(c_last, 128, 1, act=True)
        self.proj = conv_bn(c_endpoint, 48, 1, act=True)
        self.conv0 = sep_bn(176, 128)
        self.conv1 = sep_bn(128, 128)
        self.clf = task.authors_clf(128)

    def forward(self, endpoint: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.proj(endpoint), self.pre_conv(last)], dim=1)
        return self.clf(self.conv1(self.conv0(x)))


register_classes("authors", supernet=AuthorsSuperNet, network=AuthorsNet)


__all__ = ["AuthorsSuperNet", "AuthorsNet", "ASPP", "Router", "Scaler", "SupernetDecoder", "RetrainDecoder",
           "sep_bn"]
