"""The compact network's forward pass rewritten for CPU inference: same function, fewer passes
over memory.

At inference the compact network's cells are memory-bound: 32-64 channels, where a depthwise
conv, an activation or an addition each reads and writes the whole activation. The eager
inference copy (:func:`hinas_lib.deploy.inference_copy`: BatchNorm folded, NHWC) still

* runs 1x1 convolutions through torch's convolution dispatch, which at one thread picks its
  slow reference kernel and broadcasts the bias with a copy;
* computes the same LeakyReLU of a state once per edge that reads it;
* adds the two edges of a block in a separate pass, and concatenates the blocks in another
  before the cell's output 1x1 conv.

:class:`PlannedCompactNet` runs the same network as torch's fused oneDNN convolutions (the
``mkldnn._convolution_pointwise`` primitives Inductor emits on the CPU), on NHWC activations:

* a convolution with its bias and the activation after it inside an op is one primitive;
* a block's edge that ends in a convolution adds its output into the block's running sum in the
  same primitive (in place when the sum is a temporary), so the block sum costs no extra pass;
* the cell's output 1x1 conv over the concatenated blocks is one 1x1 conv per block accumulated
  the same way, so nothing is concatenated, and the long skip is added by the projection's conv;
* each state's activation is computed once per forward pass and shared by the edges reading it
  (and freed when its cell is done); a cell input that every edge reads through the same
  activation gets it from its preprocessing conv, fused;
* a block no later block reads (a leaf: in the zoo's networks, the last two blocks of a cell or
  all four) is never summed: each of its edges adds into the cell's output directly, the output
  1x1 conv composed into the edge's last conv (``W_out @ W`` is a conv with the edge's kernel), and
  the last cell's output convs are composed with the network's 1x1 projection the same way. The
  same function with fewer multiply-adds (``denoise-s30``: 230 K per pixel of 272 K) and passes.

Its outputs equal the eager copy's up to float32 rounding (``tests/test_inference_plan.py``),
and :func:`plan_for_inference` checks that on a probe before handing the plan out.
Measured in ``benchmarks/restore_speed.py`` (the ``eager`` against the ``after`` variant).

Only the compact design (:class:`hinas_lib.network.CompactNet`) with a parameter-free
activation (LeakyReLU, ReLU) is planned; :func:`plan_for_inference` returns anything else as it
was given.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .depthwise import DepthwiseConv2d
from .network import CompactNet

# torch's fused oneDNN convolutions (what Inductor emits on the CPU), looked up at call time:
# builds without oneDNN lack them (plan_for_inference checks first)
def _conv_unary(*args):
    return torch.ops.mkldnn._convolution_pointwise(*args)


def _conv_add(*args):
    return torch.ops.mkldnn._convolution_pointwise.binary(*args)


def _conv_add_(*args):
    return torch.ops.mkldnn._convolution_pointwise_.binary(*args)


@dataclass
class _Act:
    slope: float  # LeakyReLU's negative slope (ReLU: 0)


@dataclass
class _Conv:
    """A convolution (BatchNorm folded into it) with, optionally, the activation after it fused
    into the same oneDNN primitive (``post``: its slope)."""
    weight: torch.Tensor
    bias: Optional[torch.Tensor]
    padding: List[int]
    stride: List[int]
    dilation: List[int]
    groups: int
    post: Optional[float] = None

    def _args(self):
        return self.padding, self.stride, self.dilation, self.groups

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.post is None:
            return _conv_unary(x, self.weight, self.bias, *self._args(), "none", [], "")
        if self.post == 0.0:
            return _conv_unary(x, self.weight, self.bias, *self._args(), "relu", [], "")
        return _conv_unary(x, self.weight, self.bias, *self._args(), "leaky_relu", [self.post], "")

    def add_to(self, x: torch.Tensor, acc: torch.Tensor, in_place: bool) -> torch.Tensor:
        """``acc + conv(x)``: written into ``acc`` when ``in_place``, else into a new tensor."""
        if in_place:
            return _conv_add_(acc, x, self.weight, self.bias, *self._args(), "add", None, None, [], None)
        return _conv_add(x, acc, self.weight, self.bias, *self._args(), "add", None, None, [], None)


_Step = Union[_Act, _Conv]


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def _act_slope(m: nn.Module) -> Optional[float]:
    if type(m) is nn.LeakyReLU:
        return float(m.negative_slope)
    if type(m) is nn.ReLU:
        return 0.0
    return None


def _conv(m: nn.Conv2d, weight: Optional[torch.Tensor] = None) -> Optional[_Conv]:
    # exact types: a subclass may compute something else (DepthwiseConv2d only changes backward)
    if type(m) not in (nn.Conv2d, DepthwiseConv2d) or m.padding_mode != "zeros" or isinstance(m.padding, str):
        return None
    w = (m.weight if weight is None else weight).detach()
    return _Conv(_nhwc(w), None if m.bias is None else m.bias.detach(), list(m.padding), list(m.stride),
                 list(m.dilation), m.groups)


def _steps(seq: nn.Module) -> Optional[List[_Step]]:
    """A module as a list of steps (an activation right after a convolution fused into it), or
    None when it holds something this plan does not know."""
    mods = list(seq) if isinstance(seq, nn.Sequential) else [seq]
    out: List[_Step] = []
    for m in mods:
        if type(m) is nn.Identity:
            continue
        slope = _act_slope(m)
        if slope is not None:
            if out and isinstance(out[-1], _Conv) and out[-1].post is None:
                out[-1].post = slope  # a private intermediate: nobody reads the conv's raw output
            else:
                out.append(_Act(slope))
            continue
        c = _conv(m)
        if c is None:
            return None
        out.append(c)
    return out


class _Acts:
    """Each state's activation, computed once per forward pass (keyed by the state object)."""

    def __init__(self):
        self._cache: Dict[Tuple[int, float], Tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, x: torch.Tensor, slope: float) -> torch.Tensor:
        key = (id(x), slope)
        hit = self._cache.get(key)
        if hit is None:
            # the key's tensor is kept alive with its activation: its id cannot be reused
            hit = (x, F.leaky_relu(x, slope) if slope else F.relu(x))
            self._cache[key] = hit
        return hit[1]

    def forget(self, x: Optional[torch.Tensor]) -> None:
        for k in [k for k in self._cache if k[0] == id(x)]:
            del self._cache[k]

    def keep_only(self, *tensors: torch.Tensor) -> None:
        """Forget every activation but those of ``tensors`` (frees memory between cells)."""
        ids = {id(t) for t in tensors}
        self._cache = {k: v for k, v in self._cache.items() if k[0] in ids}


def _run(steps: List[_Step], x: torch.Tensor, acts: _Acts) -> Tuple[torch.Tensor, bool]:
    """Run ``steps`` on the state ``x``; returns (output, whether it is a fresh temporary that
    nobody else reads)."""
    owned = False
    for s in steps:
        if isinstance(s, _Act):
            if owned:
                x = F.leaky_relu_(x, s.slope) if s.slope else F.relu_(x)
            else:
                x = acts(x, s.slope)
        else:
            x, owned = s(x), True
    return x, owned


def _sum_edges(edges: List[Tuple[List[_Step], torch.Tensor]], acts: _Acts) -> torch.Tensor:
    """The sum of the edges' outputs. Edges that end in a plain convolution run last, each added
    to the running sum by its own oneDNN primitive (a fused binary add, in place when the sum is
    a temporary): no separate addition pass."""
    def ends_in_conv(steps):
        return bool(steps) and isinstance(steps[-1], _Conv) and steps[-1].post is None

    ordered = sorted(edges, key=lambda e: ends_in_conv(e[0]))  # stable: others first
    acc: Optional[torch.Tensor] = None
    owned = False
    for steps, x in ordered:
        if acc is not None and ends_in_conv(steps):
            y, _ = _run(steps[:-1], x, acts)
            acc, owned = steps[-1].add_to(y, acc, in_place=owned), True
            continue
        y, y_owned = _run(steps, x, acts)
        if acc is None:
            acc, owned = y, y_owned
        elif owned:
            acc.add_(y)
        elif y_owned:
            acc = y.add_(acc)
            owned = True
        else:
            acc, owned = _nhwc(acc + y), True
    return acc


class _PlannedCell:
    def __init__(self, cell: nn.Module):
        self.pre0, self.pre1 = _steps(cell.pre0), _steps(cell.pre1)
        self.inputs = cell.inputs
        self.ops = [[_steps(op) for op in block] for block in cell.ops]
        out = cell.out
        self.ok = (self.pre0 is not None and self.pre1 is not None
                   and all(s is not None for block in self.ops for s in block)
                   and type(out) is nn.Conv2d and out.kernel_size == (1, 1) and out.groups == 1
                   and out.bias is None and out.stride == (1, 1) and out.padding == (0, 0))
        if self.ok:
            for j in (0, 1):
                self._activate_at_source(j)
            # the output 1x1 conv over the concatenated blocks, as one 1x1 conv per block
            w = out.weight.detach()
            cb = w.shape[1] // len(self.ops)
            self.out = [_conv(out, w[:, i * cb:(i + 1) * cb]) for i in range(len(self.ops))]
            # A block no later block reads (a leaf) is only ever seen through its slice of the
            # output conv: each of its edges adds into the cell's output directly, the output conv
            # composed into the edge's last (linear) conv. Its sum is never formed, and the output
            # conv is not run on it: one 1x1 conv pass less per leaf block.
            read = {j for idxs in self.inputs for j in idxs}
            self.folded_from = [block if 2 + i not in read else None for i, block in enumerate(self.ops)]
            self.folded = [None if block is None else [_fold(st, self.out[i]) for st in block]
                           for i, block in enumerate(self.folded_from)]
            # after block i, the states no later block reads (they and their activations are freed)
            last = {j: i for i, idxs in enumerate(self.inputs) for j in idxs}
            n = 2 + len(self.ops)
            self.dead_after = [[j for j in range(n) if last.get(j, j - 2) == i] for i in range(len(self.ops))]

    def _activate_at_source(self, j: int) -> None:
        """Where every edge reading the cell's input state ``j`` starts with the same activation
        (no skip reads it raw; the input states are not part of the cell's output), the
        preprocessing conv that makes the state applies that activation itself (fused) and the
        edges drop it: one activation pass less."""
        pre = self.pre0 if j == 0 else self.pre1
        readers = [(i, k) for i, idxs in enumerate(self.inputs) for k, jj in enumerate(idxs) if jj == j]
        firsts = [self.ops[i][k][0] if self.ops[i][k] else None for i, k in readers]
        if (not readers or not pre or not isinstance(pre[-1], _Conv) or pre[-1].post is not None
                or not all(isinstance(f, _Act) for f in firsts) or len({f.slope for f in firsts}) != 1):
            return
        pre[-1] = dataclasses.replace(pre[-1], post=firsts[0].slope)
        for i, k in readers:
            self.ops[i][k] = self.ops[i][k][1:]

    def compose_projection(self, proj: _Conv) -> bool:
        """Make this (the last) cell's output ``proj(output)`` directly: the network's 1x1
        projection composed into the output conv (and so into the leaf blocks' edges), its bias
        added once, by the first conv that writes the output. The cell's wide output is never
        formed and the projection pass is saved. False (nothing changed) where ``proj`` is not a
        plain 1x1 conv."""
        if (not self.ok or proj.weight.shape[2:] != (1, 1) or proj.post is not None or proj.groups != 1
                or proj.stride != [1, 1] or proj.padding != [0, 0]):
            return False
        self.out = [_fold([o], dataclasses.replace(proj, bias=None))[0] for o in self.out]
        self.folded = [None if f is None else [_fold(st, self.out[i]) for st in f]
                       for i, f in enumerate(self.folded_from)]
        if proj.bias is not None:  # once: on the first conv that writes the output (a copy of it:
            # an appended output conv is shared by a block's edges)
            def with_bias(c: _Conv) -> _Conv:
                return dataclasses.replace(c, bias=proj.bias if c.bias is None else c.bias + proj.bias)
            if self.folded[0] is not None:
                self.folded[0][0] = self.folded[0][0][:-1] + [with_bias(self.folded[0][0][-1])]
            else:
                self.out[0] = with_bias(self.out[0])
        return True

    def __call__(self, s0: torch.Tensor, s1: torch.Tensor, acts: _Acts,
                 acc: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The cell's output (plus ``acc``, when given: it is not written to)."""
        states: List[Optional[torch.Tensor]] = [_sum_edges([(self.pre0, s0)], acts),
                                                _sum_edges([(self.pre1, s1)], acts)]
        del s0, s1
        acts = _Acts()  # the cell's own states
        out, owned = acc, False

        def add(conv: _Conv, y: torch.Tensor) -> torch.Tensor:
            return conv(y) if out is None else conv.add_to(y, out, in_place=owned)

        for i, (steps, idxs, conv, folded) in enumerate(zip(self.ops, self.inputs, self.out, self.folded)):
            if folded is not None:  # a leaf block: each edge adds into the output itself
                for st, j in zip(folded, idxs):
                    y, _ = _run(st[:-1], states[j], acts)
                    out, owned = add(st[-1], y), True
                    del y
                states.append(None)  # nobody reads it
            else:
                b = _sum_edges([(st, states[j]) for st, j in zip(steps, idxs)], acts)
                states.append(b)
                out, owned = add(conv, b), True
                del b
            for j in self.dead_after[i]:  # a cell holds a few full-size activations: free them early
                acts.forget(states[j])
                states[j] = None
        return out


def _fold(steps: List[_Step], out: _Conv) -> List[_Step]:
    """``steps`` followed by the 1x1 conv ``out`` (no bias), as steps whose last is one conv: the
    two composed where ``steps`` ends in a linear dense conv (``out . conv`` is a conv with the
    same kernel, weight ``W_out @ W``, bias ``W_out @ b``), else ``out`` appended (a skip, an
    activation or a grouped conv last)."""
    last = steps[-1] if steps else None
    if isinstance(last, _Conv) and last.post is None and last.groups == 1:
        w_out = out.weight[:, :, 0, 0].double()  # composed in float64: one float32 rounding
        w = torch.einsum("oc,cikl->oikl", w_out, last.weight.double()).to(last.weight.dtype)
        b = None if last.bias is None else (w_out @ last.bias.double()).to(last.bias.dtype)
        if out.bias is not None:
            b = out.bias if b is None else b + out.bias
        return steps[:-1] + [_Conv(_nhwc(w), b, last.padding, last.stride, last.dilation, 1)]
    return steps + [out]


class PlannedCompactNet(nn.Module):
    """:class:`hinas_lib.network.CompactNet`'s inference copy (BatchNorm folded) as the planned
    forward pass described in this module's docstring. Built by :func:`plan_for_inference`."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net  # owns the parameters (device, dtype, state_dict stay the eager network's)
        self.routers = [None if type(r) is nn.Identity else _steps(r) for r in net.routers]
        self.cells = [_PlannedCell(c) for c in net.cells]
        self.stem, self.proj = _conv(net.stem), _conv(net.proj)
        self.ok = (all(r is not None for r, m in zip(self.routers, net.routers) if type(m) is not nn.Identity)
                   and all(c.ok for c in self.cells) and self.stem is not None and self.proj is not None)
        # the projection composed into the last cell's output convs (the long skip is then the
        # value that cell's output starts from)
        self.proj_in_cell = self.ok and self.cells[-1].compose_projection(self.proj)

    @property
    def cfg(self):
        return self.net.cfg

    @property
    def genotype(self):
        return self.net.genotype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return self.net(x)  # gradients (e.g. the receptive-radius probe): the eager copy, same function
        with torch.no_grad():
            return self._planned(x)

    def _planned(self, x: torch.Tensor) -> torch.Tensor:
        acts = _Acts()  # activations of the cells' inputs, shared by routers and preprocessing
        stem = self.stem(_nhwc(x))
        prev2, prev = stem, stem
        for k, (rt, cell) in enumerate(zip(self.routers, self.cells)):
            s1 = prev if rt is None else _sum_edges([(rt, prev)], acts)
            last = k == len(self.cells) - 1
            prev2, prev = prev, cell(prev2, s1, acts, acc=stem if last and self.proj_in_cell else None)
            acts.keep_only(prev2, prev)
        # proj(prev) + stem: the long skip (inside the last cell, or fused into the projection)
        feat = prev if self.proj_in_cell else self.proj.add_to(prev, stem, in_place=False)
        return self.net.head(feat, x)


def _available() -> bool:
    try:
        return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_convolution_pointwise_")
    except (AttributeError, RuntimeError):
        return False


def plan_for_inference(net: nn.Module) -> nn.Module:
    """``net`` (an inference copy: eval mode, BatchNorm folded) as :class:`PlannedCompactNet`
    when the plan covers it: a compact network, float32 on the CPU, torch built with oneDNN, and
    a probe forward pass that agrees with ``net``'s. Otherwise ``net`` itself, unchanged (so
    other designs, GPUs, float64 and builds without oneDNN run the eager path)."""
    if type(net) is not CompactNet or net.training or not _available():
        return net
    try:
        p = next(net.parameters())
    except StopIteration:
        return net
    if p.device.type != "cpu" or p.dtype != torch.float32:
        return net
    planned = PlannedCompactNet(net)
    if not planned.ok:
        return net
    x = torch.rand(1, net.stem.in_channels, 24, 24, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            agree = torch.allclose(planned(x), net(x), rtol=1e-4, atol=1e-4)
    except RuntimeError:  # an op this build lacks
        return net
    return planned if agree else net


__all__ = ["PlannedCompactNet", "plan_for_inference"]
