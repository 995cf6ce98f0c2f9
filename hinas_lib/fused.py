"""The search cell's fast path: edges fused per input state.

:class:`FusedSearchCell` computes exactly the function of
:class:`~hinas_lib.cells.SearchCell` (same parameters and state_dict), faster
and with less memory; :class:`PerfOptions`, given to the supernet per
instance, chooses between the two and sets the other optimisations. The
float64 equivalence of both paths is tested (tests/test_perf_equivalence.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .bn_threads import batch_norm, bn_backward, bn_forward
from .cells import SHAREABLE_ACTS, SearchCell
from . import depthwise
from .depthwise import flip_applies, input_grad, weight_grad
from .genotype import edge_index
from .ops import cat_channels


@dataclass(frozen=True)
class PerfOptions:
    """How a supernet computes (never what): chosen per model instance.

    The defaults are the fast path; benchmarks and tests turn options off to
    compare with the straightforward per-edge code. Distributed training asks
    for ``fuse_edges=False``: the fused path calls ``F.batch_norm`` past the BN
    modules, so their synchronisation would be bypassed.
    """

    fuse_edges: bool = True     # one wide conv/BN per (input state, op type) instead of one per edge
    channels_last: bool = True  # NHWC activations: oneDNN's depthwise/dilated kernels are 3-5x faster
    recompute: bool = True      # conv outputs feeding a BN are recomputed in backward, not stored

    @classmethod
    def plain(cls) -> "PerfOptions":
        """The straightforward path: per-edge mixed ops, NCHW, nothing recomputed."""
        return cls(fuse_edges=False, channels_last=False, recompute=False)


# Edge fusion. Every state of a search cell feeds several edges, and every edge
# runs the same op types on it. Ops of one type on one state are run as one
# wide op: their conv weights are concatenated at forward time (parameters and
# state_dict stay per edge) so E small convs become one conv with E times the
# output channels (or E times the groups), and their non-affine BNs become one
# per-channel BN (wider BNs also vectorise better in channels_last). The
# softmax weight of each op is folded into that BN's affine weight, which
# removes a multiply and the tensor it would keep for backward. Channels of a
# fused tensor are ordered (edge, channel). Conv outputs that only feed a BN
# are recomputed in backward (_ConvsBN) rather than kept.
# ---------------------------------------------------------------------------

Step = Tuple  # ("conv", in, out, kernel, stride, padding, dilation, groups, bias) | ("bn", ...) | ("act", ...)


def _chain_spec(body: nn.Module) -> Optional[Tuple[Step, ...]]:
    """The op body (after its shared activation) as fusable steps, or None if it
    holds anything the fused path does not know (it then runs per edge)."""
    mods = list(body) if isinstance(body, nn.Sequential) else [body]
    spec: List[Step] = []
    for m in mods:
        if isinstance(m, nn.Identity):
            continue
        if isinstance(m, nn.Conv2d) and m.padding_mode == "zeros" and not isinstance(m.padding, str):
            spec.append(("conv", m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                         m.dilation, m.groups, m.bias is not None))
        elif isinstance(m, nn.BatchNorm2d):
            spec.append(("bn", m.num_features, m.affine, m.track_running_stats, m.eps, m.momentum))
        elif isinstance(m, SHAREABLE_ACTS):
            spec.append(("act", type(m).__name__, getattr(m, "negative_slope", None)))
        else:
            return None
    return tuple(spec)


def _bn_begin(bns: Sequence[nn.BatchNorm2d]):
    """What ``nn.BatchNorm2d.forward`` decides for ``bns`` (they share settings):
    (running mean, running var (concatenated copies or None), use batch stats?,
    momentum factor). Counts the batch in ``num_batches_tracked`` as it does."""
    b0 = bns[0]
    factor = 0.0 if b0.momentum is None else b0.momentum
    if b0.training and b0.track_running_stats:
        for b in bns:
            b.num_batches_tracked.add_(1)
        if b0.momentum is None:  # cumulative moving average
            factor = 1.0 / float(b0.num_batches_tracked)
    use_batch = b0.training or b0.running_mean is None
    has_stats = b0.running_mean is not None and (not b0.training or b0.track_running_stats)
    rm = torch.cat([b.running_mean for b in bns]) if has_stats else None
    rv = torch.cat([b.running_var for b in bns]) if has_stats else None
    return rm, rv, use_batch, factor


def _bn_end(bns: Sequence[nn.BatchNorm2d], rm, rv, use_batch: bool) -> None:
    """Write the running stats updated in the concatenated copies back per module."""
    if rm is not None and use_batch:
        n = bns[0].num_features
        for b, m, v in zip(bns, rm.split(n), rv.split(n)):
            b.running_mean.copy_(m)
            b.running_var.copy_(v)


def _grad_node(t: Optional[torch.Tensor]):
    return torch.autograd.graph.get_gradient_edge(t).node if t is not None and t.requires_grad else None


def _wanted(node, requires: bool) -> bool:
    """Will the running backward use the gradient flowing into ``node``?"""
    if not requires:
        return False
    if node is None:
        return True
    try:
        return bool(torch._C._will_engine_execute_node(node))
    except (AttributeError, RuntimeError):  # leaf under autograd.grad, or an older torch
        return True


def _cheap_conv(c) -> bool:
    """A pending conv (weight, bias, stride, padding, dilation, groups) that costs
    little to run again: depthwise (one input channel per group) or 1x1."""
    w = c[0]
    return w.shape[1] == 1 or w.shape[-1] * w.shape[-2] == 1


def _sum_edges(g: torch.Tensor, E: int) -> torch.Tensor:
    """(N, E*C, H, W) in (edge, channel) order -> (N, C, H, W): the gradient of a
    per-edge copy of one tensor. Keeps channels_last layouts channels_last."""
    N, EC, H, W = g.shape
    if not g.is_contiguous() and g.is_contiguous(memory_format=torch.channels_last):
        return g.permute(0, 2, 3, 1).reshape(N, H, W, E, EC // E).sum(3).permute(0, 3, 1, 2)
    return g.reshape(N, E, EC // E, H, W).sum(1)


class _ConvsBN(torch.autograd.Function):
    """Bias-free convs then a training-mode BN, keeping for backward only the
    input (which something else keeps anyway) and the BN statistics. Backward
    recomputes the conv outputs (depthwise and 1x1 convs are cheap forward)
    instead of storing every intermediate: about 6 fewer activation tensors per
    edge. ``inp_fwd`` is ``inp`` copied once per edge, made without autograd,
    shared by the op types on one state and not kept: backward re-copies it."""

    @staticmethod
    def forward(ctx, inp, inp_fwd, gamma, beta, rm, rv, meta, *weights):
        E, convs, factor, eps, ctx.nodes = meta
        h = inp if inp_fwd is None else inp_fwd
        for (stride, pad, dil, groups), w in zip(convs, weights):
            h = _conv(h, w, None, stride, pad, dil, groups)
        out, mean, invstd = bn_forward(h, gamma, beta, rm, rv, factor, eps)
        ctx.save_for_backward(inp, gamma, mean, invstd, *weights)
        # under autocast the convs ran in a lower precision; backward (not autocast)
        # recomputes them in that same dtype
        ctx.meta, ctx.repeat, ctx.dtype = meta[:4], inp_fwd is not None, h.dtype
        return out

    @staticmethod
    def backward(ctx, grad):
        inp, gamma, mean, invstd, *weights = ctx.saved_tensors
        E, convs, factor, eps = ctx.meta
        # needs_input_grad only says what requires grad; ask the engine what this
        # backward will use (the architecture step wants no weight gradients)
        static = ctx.needs_input_grad
        need = [_wanted(n, st) for n, st in zip(ctx.nodes, static[:4] + (False,) * 3 + static[7:])]
        dt = ctx.dtype
        ws = [w.to(dt) for w in weights]
        with torch.no_grad():
            hs = [(torch.cat([inp] * E, dim=1) if ctx.repeat else inp).to(dt)]
            for (stride, pad, dil, groups), w in zip(convs, ws):
                hs.append(_conv(hs[-1], w, None, stride, pad, dil, groups))
            h = hs.pop()
            g, g_gamma, g_beta = bn_backward(grad, h, gamma, mean, invstd, eps,
                                             (True, gamma is not None and need[2], need[3]))
            del h
            g_w = [None] * len(weights)
            for k in range(len(convs) - 1, -1, -1):
                stride, pad, dil, groups = convs[k]
                want_in = k > 0 or need[0]
                g, g_w[k] = _conv_backward(g.to(dt), hs[k], ws[k], stride, pad, dil, groups, (want_in, need[7 + k]))
                if g_w[k] is not None:
                    g_w[k] = g_w[k].to(weights[k].dtype)
                hs.pop()
            if need[0] and ctx.repeat:
                g = _sum_edges(g, E)
            if need[0]:
                g = g.to(inp.dtype)
        return (g if need[0] else None, None, g_gamma, g_beta, None, None, None, *g_w)


def _pointwise(x: torch.Tensor, w: torch.Tensor, stride, pad, groups: int) -> bool:
    """A 1x1 conv (grouped: one per edge, the separable ops' pointwise step) on an NHWC input?"""
    return (w.shape[-1] == w.shape[-2] == 1 and tuple(stride) == (1, 1) and tuple(pad) == (0, 0)
            and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last))


def _nhwc_rows(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in channels_last layout -> the (N*H*W, C) matrix it already is (a view)."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def _from_rows(y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(N*H*W, O) -> (N, O, H, W) in channels_last layout (a view)."""
    N, _, H, W = like.shape
    return y.view(N, H, W, y.shape[1]).permute(0, 3, 1, 2)


def _dense_pointwise_weight(w: torch.Tensor, groups: int) -> torch.Tensor:
    """A (grouped) 1x1 conv's weight (O, C, 1, 1) as the (O, groups*C) matrix it multiplies
    the input's channels by: block-diagonal for a grouped conv."""
    m = w.view(w.shape[0], w.shape[1])
    return m if groups == 1 else torch.block_diag(*m.view(groups, -1, m.shape[1]))


def _conv(x, w, b, stride, pad, dil, groups):
    """``F.conv2d``, except 1x1 convs on NHWC input: one matrix product over the pixels, with a
    grouped conv's weight made block-diagonal. The same function (up to summation order), and
    for the search cells' narrow pointwise convs (10-80 channels, 1-4 groups) 1.3-2x faster on
    one thread of this project's Xeon, backward included (measured per shape against torch's 1x1
    path, which runs grouped ones group by group, and against batching the groups, which needs
    copies): the G times more multiply-adds of the block-diagonal product cost less than either.
    On 2 threads the gain is smaller and not for every shape; the whole step is faster at both
    (benchmarks/RESULTS.md, `before`)."""
    if b is None and _pointwise(x, w, stride, pad, groups):
        return _from_rows(_nhwc_rows(x) @ _dense_pointwise_weight(w, groups).t(), x)
    return depthwise.conv2d(x, w, b, stride, pad, dil, groups)  # dilated depthwise: its faster backward


def _conv_backward(g, x, w, stride, pad, dil, groups, mask):
    """``convolution_backward`` (no bias) for :func:`_conv`: (grad input, grad weight)."""
    if _pointwise(x, w, stride, pad, groups):
        g = g.contiguous(memory_format=torch.channels_last)
        gm = _nhwc_rows(g)                                         # (P, O)
        g_in = _from_rows(gm @ _dense_pointwise_weight(w, groups), x) if mask[0] else None
        g_w = None
        if mask[1]:
            full = gm.t() @ _nhwc_rows(x)                          # (O, G*C): keep the diagonal blocks
            O, C = w.shape[0], w.shape[1]
            g_w = (full if groups == 1 else
                   full.view(groups, O // groups, groups, C).diagonal(dim1=0, dim2=2).permute(2, 0, 1))
            g_w = g_w.reshape(O, C, 1, 1)
        return g_in, g_w
    if flip_applies(x, w, stride, pad, dil, groups):  # dilated depthwise: see hinas_lib/depthwise.py
        return (input_grad(g, w, pad, dil) if mask[0] else None,
                weight_grad(g, x, w, pad, dil) if mask[1] else None)
    g_in, g_w, _ = torch.ops.aten.convolution_backward(g, x, w, None, list(stride), list(pad), list(dil), False,
                                                        [0, 0], groups, [mask[0], mask[1], False])
    return g_in, g_w


def _per_edge_copy(h: torch.Tensor, inp: torch.Tensor, repeated, E: int) -> torch.Tensor:
    """``h`` once per edge; the state's own input is copied once for all op types."""
    if h is inp:
        return repeated()
    return torch.cat([h] * E, dim=1) if E > 1 else h


class _StatePlan:
    """What one input state of a cell feeds: its edges, their blocks, and its op
    groups (fused chains, skip-like ops, ops that must run per edge)."""

    def __init__(self, edges: List[int], blocks: List[int]):
        self.edges, self.blocks = edges, blocks
        self.chains: List[Tuple[int, bool, Tuple[Step, ...]]] = []  # (primitive, on act(x)?, steps)
        self.scaled: List[Tuple[int, bool]] = []                      # (primitive, on act(x)?): w * input
        self.per_edge: List[int] = []                                 # primitives run op by op


class FusedSearchCell(SearchCell):
    """:class:`~hinas_lib.cells.SearchCell` with its edges fused per input state."""

    def __init__(self, *args, perf: PerfOptions = PerfOptions(), **kwargs):
        super().__init__(*args, **kwargs)
        self.perf = perf
        self._plans = self._make_plans()

    def _make_plans(self) -> List[_StatePlan]:
        eid = {ij: e for e, ij in enumerate(edge_index(self.blocks))}
        plans = []
        # state j (0: s0, 1: s1, 2 + i: block i) feeds blocks j - 1 .. B - 1
        for j in range(self.blocks + 1):
            blocks = list(range(max(0, j - 1), self.blocks))
            plan = _StatePlan([eid[(i, j)] for i in blocks], blocks)
            first = self.edges[plan.edges[0]]
            for pos in range(len(first.active)):
                specs = {_chain_spec(self.edges[e]._bodies[pos]) for e in plan.edges}
                pre = first.preact_ok[pos]
                spec = specs.pop() if len(specs) == 1 else None
                if spec is None:
                    plan.per_edge.append(pos)
                elif not spec:
                    plan.scaled.append((pos, pre))  # skip_connect: w * (the same tensor) per edge
                elif not any(st[0] in ("conv", "bn") for st in spec):
                    plan.per_edge.append(pos)  # activations only: nothing to fuse
                else:
                    plan.chains.append((pos, pre, spec))
            plans.append(plan)
        return plans

    def forward(self, s0, s1, weights: torch.Tensor, naive: bool = False):
        """Same function as :meth:`SearchCell.forward`; ``naive`` runs the textbook sum."""
        if naive:
            return super().forward(s0, s1, weights, naive=True)
        C = self.channels
        states: List[torch.Tensor] = [self.pre0(s0), self.pre1(s1)]
        partial: List[Optional[torch.Tensor]] = [None] * self.blocks
        owned = [False] * self.blocks  # partial[i] is a fresh tensor we may add into in place
        for j, plan in enumerate(self._plans):
            if j >= 2:
                states.append(partial[j - 2])  # block j-2 has all its inputs now
            x = states[j]
            xa = self.act_fn(x) if self.share_act else None
            E = len(plan.edges)
            # alpha rows of this state's edges, (E, O)
            wj = torch.stack([weights[e] for e in plan.edges]) if E > 1 else weights[plan.edges[0]][None]
            mix = self.edges[plan.edges[0]]
            rep: Dict[Tuple[bool, bool], torch.Tensor] = {}

            def repeated(on_act: bool, detached: bool) -> torch.Tensor:
                # the input copied once per edge, (edge, channel) order, shared by every
                # chain that starts with a grouped (e.g. depthwise) conv; the detached copy
                # feeds _ConvsBN, which routes the gradient to the input itself
                if (on_act, detached) not in rep:
                    src = xa if on_act else x
                    with torch.set_grad_enabled(torch.is_grad_enabled() and not detached):
                        rep[on_act, detached] = torch.cat([src] * E, dim=1) if E > 1 else src
                return rep[on_act, detached]

            acc, acc_owned = None, False
            for pos, pre, spec in plan.chains:
                bodies = [self.edges[e]._bodies[pos] for e in plan.edges]
                y = self._run_chain(self.perf, xa if pre else x, lambda d, pre=pre: repeated(pre, d), bodies, spec,
                                    wj[:, mix.active[pos]])
                # the first sum is out of place: a chain's output may be saved by its last op
                if acc is None:
                    acc = y
                elif acc_owned:
                    acc.add_(y)
                else:
                    acc, acc_owned = acc + y, True
            scaled = [(xa if pre else x, wj[:, mix.active[pos]]) for pos, pre in plan.scaled]
            # one split, not E slices: its backward is a single cat, where each slice's
            # backward would zero-fill a full-width gradient and all of them be summed
            parts = acc.split(C, dim=1) if acc is not None else None
            for t, (e, i) in enumerate(zip(plan.edges, plan.blocks)):
                term, fresh = None, False
                if parts is not None:
                    term = parts[t]
                for src, wcol in scaled:
                    term = src * wcol[t] if term is None else term.addcmul(src, wcol[t])
                    fresh = True
                for pos in plan.per_edge:
                    m = self.edges[e]
                    y = (m._bodies[pos](xa) if m.preact_ok[pos] and xa is not None else m.ops[pos](x))
                    y = y * weights[e, m.active[pos]]
                    term, fresh = (y, True) if term is None else (term + y, True)
                if partial[i] is None:
                    partial[i], owned[i] = term, fresh
                elif owned[i]:
                    partial[i].add_(term)
                else:
                    partial[i], owned[i] = partial[i] + term, True
        states.append(partial[-1])
        return self.out(cat_channels(states[2:]))

    @staticmethod
    def _run_chain(perf: "PerfOptions", inp: torch.Tensor, repeated, bodies: List[nn.Sequential], spec,
                   wcol: torch.Tensor):
        """One op type on every edge of a state at once; returns the alpha-weighted
        outputs as (N, E * C_out, H, W) in (edge, channel) order."""
        E = len(bodies)
        h, per_edge, fresh = inp, False, False
        pending: List[Tuple] = []  # convs not run yet: a following BN may recompute them in backward
        src, src_rep = inp, False  # the input of the pending convs; copy it per edge first?
        recompute = perf.recompute and torch.is_grad_enabled()

        def run_pending(h):
            if not pending:
                return h
            x = _per_edge_copy(src, inp, lambda: repeated(False), E) if src_rep else src
            for w, b, stride, pad, dil, groups in pending:
                x = _conv(x, w, b, stride, pad, dil, groups)
            pending.clear()
            return x

        last = len(spec) - 1
        for t, step in enumerate(spec):
            mods = [b[t] for b in bodies] if isinstance(bodies[0], nn.Sequential) else list(bodies)
            m0 = mods[0]
            if step[0] == "conv":
                # (a view, not the leaf itself, even for one edge: the engine can then tell
                # _ConvsBN whether this backward wants the weight's gradient)
                w = torch.cat([m.weight for m in mods]) if E > 1 else m0.weight.view_as(m0.weight)
                b = (torch.cat([m.bias for m in mods]) if E > 1 else m0.bias) if m0.bias is not None else None
                # per edge already: E groups per group; on the shared input a dense conv
                # just gets E times the outputs, a grouped one needs the input per edge
                rep = not per_edge and m0.groups > 1
                groups = E * m0.groups if (per_edge or rep) else 1
                if not pending:
                    src, src_rep = h, rep and E > 1
                pending.append((w, b, m0.stride, m0.padding, m0.dilation, groups))
                per_edge, fresh = True, True
            elif step[0] == "bn":
                n = m0.num_features
                gamma = torch.cat([m.weight for m in mods]) if m0.affine else None
                beta = torch.cat([m.bias for m in mods]) if m0.affine else None
                if t == last:  # fold the op's softmax weight into the BN affine transform
                    wvec = wcol.repeat_interleave(n)
                    gamma = wvec if gamma is None else gamma * wvec
                    beta = None if beta is None else beta * wvec
                rm, rv, use_batch, factor = _bn_begin(mods)
                if (pending and recompute and use_batch and all(c[1] is None for c in pending)
                        and all(_cheap_conv(c) for c in pending)):
                    ws = [c[0] for c in pending]
                    nodes = [_grad_node(src), None, _grad_node(gamma), _grad_node(beta), None, None, None,
                             *[_grad_node(w) for w in ws]]
                    meta = (E, tuple(c[2:] for c in pending), factor, m0.eps, nodes)
                    if not src_rep:
                        src_fwd = None
                    elif src is inp:
                        src_fwd = repeated(True)
                    else:
                        with torch.no_grad():
                            src_fwd = torch.cat([src] * E, dim=1)
                    h = _ConvsBN.apply(src, src_fwd, gamma, beta, rm, rv, meta, *ws)
                    pending.clear()
                else:
                    h = run_pending(h)
                    if not per_edge:
                        h, per_edge = _per_edge_copy(h, inp, lambda: repeated(False), E), True
                    h = batch_norm(h, rm, rv, gamma, beta, use_batch, factor, m0.eps)
                _bn_end(mods, rm, rv, use_batch)
                fresh = True
            else:  # parameter-free activation: in place on a tensor this chain made
                h = run_pending(h)
                act = m0
                if fresh and per_edge and t > 0 and spec[t - 1][0] == "bn":
                    # in place after BN: BN saves its input, not its output, and the
                    # activation then saves the one tensor the next conv saves anyway
                    h = (F.leaky_relu_(h, act.negative_slope) if isinstance(act, nn.LeakyReLU) else F.relu_(h))
                else:
                    h = act(h)
                    fresh = True
        h = run_pending(h)
        if spec[last][0] != "bn":
            n = h.shape[1] // E
            h = h * wcol.repeat_interleave(n).view(1, -1, 1, 1)
        return h


def make_search_cell(c_pp: int, C: int, sp, perf: PerfOptions, preprocess: bool = True) -> SearchCell:
    """A search cell of width C: the fused fast path or the teaching cell, as ``perf`` says."""
    if perf.fuse_edges:
        return FusedSearchCell(c_pp, C, C, sp.blocks, sp.primitives, act=sp.activation, affine=False,
                               preprocess=preprocess, perf=perf)
    return SearchCell(c_pp, C, C, sp.blocks, sp.primitives, act=sp.activation, affine=False, preprocess=preprocess)


__all__ = ["PerfOptions", "FusedSearchCell", "make_search_cell"]
