"""The optimised search path computes the same function as the straightforward one.

Optimised (``hinas_lib.fused.PerfOptions()`` defaults): edges fused per input
state (``FusedSearchCell``), channels_last activations, conv outputs recomputed
in backward (``_ConvsBN``). Straightforward: one mixed op per edge in NCHW
(``PerfOptions.plain()``, the teaching ``SearchCell``) and the textbook
``naive=True`` sum. The options are per model instance: nothing global.

Tolerances: float64 runs must agree to rtol 1e-9 / atol 1e-10 (the same maths
up to summation order); float32 runs to rtol 1e-4 / atol 1e-4 times the
largest magnitude of the compared tensor (BN backward divides by small batch
standard deviations, and alpha/beta gradients are sums of many terms of both
signs, so float32 rounding shows up at ~1e-5 of the largest entry).
"""
import pytest
import torch
import torch.nn.functional as F

from hinas_lib.cells import SearchCell
from hinas_lib.config import get_preset
from hinas_lib.fused import FusedSearchCell, PerfOptions, _ConvsBN
from hinas_lib.ops import PRIMITIVES
from hinas_lib.supernet import CompactSuperNet

PLAIN = PerfOptions.plain()
OPTIMISED = PerfOptions()


def _cell(perf, *args):
    """The cell a supernet with ``perf`` builds."""
    return FusedSearchCell(*args, perf=perf) if perf.fuse_edges else SearchCell(*args)


def _close(a, b, dtype, what):
    if dtype == torch.float64:
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10, msg=what)
    else:
        scale = max(float(b.abs().max()), 1e-12)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * scale, msg=what)


def _cell_run(cell, s0, s1, alpha, naive, channels_last):
    for t in (s0, s1, alpha, *cell.parameters()):
        t.grad = None
    x0, x1 = s0, s1
    if channels_last:  # as the supernet feeds cells (gradients still reach s0, s1)
        x0 = s0.contiguous(memory_format=torch.channels_last)
        x1 = s1.contiguous(memory_format=torch.channels_last)
    y = cell(x0, x1, torch.softmax(alpha, -1), naive=naive)
    # a fixed, non-uniform weighting so every output element matters differently
    (y * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
    grads = [s0.grad, s1.grad, alpha.grad] + [p.grad for p in cell.parameters()]
    stats = {k: v.clone() for k, v in cell.state_dict().items()}
    return y.detach(), [g.clone() for g in grads], stats


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("opts", [OPTIMISED, PerfOptions(recompute=False), PerfOptions(channels_last=False)],
                         ids=["all", "no-recompute", "nchw"])
def test_cell_fused_matches_per_edge_and_naive(dtype, opts):
    """Train mode: outputs, gradients w.r.t. both inputs, alpha and every weight,
    and the BN running stats after the step, fused vs per-edge vs naive."""
    torch.manual_seed(0)
    cell = SearchCell(6, 9, 8, 3, PRIMITIVES).to(dtype).train()
    s0 = torch.randn(2, 6, 10, 12, dtype=dtype, requires_grad=True)
    s1 = torch.randn(2, 9, 10, 12, dtype=dtype, requires_grad=True)
    alpha = torch.randn(len(cell.edges), len(PRIMITIVES), dtype=dtype, requires_grad=True)
    start = {k: v.clone() for k, v in cell.state_dict().items()}
    runs = []
    for o, naive in ((PLAIN, True), (PLAIN, False), (opts, False)):
        c = _cell(o, 6, 9, 8, 3, PRIMITIVES).to(dtype).train()
        c.load_state_dict(start)
        runs.append(_cell_run(c, s0, s1, alpha, naive, o.channels_last))
    ref = runs[0]
    for y, g, st in runs[1:]:
        _close(y, ref[0], dtype, "output")
        names = ["s0", "s1", "alpha"] + [n for n, _ in cell.named_parameters()]
        for n, a, b in zip(names, g, ref[1]):
            _close(a, b, dtype, f"grad {n}")
        for k in st:
            _close(st[k].to(dtype), ref[2][k].to(dtype), dtype, f"state {k}")


def test_cell_eval_mode_matches():
    """Eval mode (running statistics), no grad: fused == per-edge, float32 tolerances."""
    torch.manual_seed(1)
    cell = SearchCell(5, 5, 6, 3, PRIMITIVES)
    with torch.no_grad():  # give the running stats non-trivial values
        cell.train()
        cell(torch.randn(4, 5, 9, 9), torch.randn(4, 5, 9, 9), torch.softmax(torch.randn(9, 7), -1))
    cell.eval()
    s0, s1 = torch.randn(2, 5, 9, 9), torch.randn(2, 5, 9, 9)
    w = torch.softmax(torch.randn(9, 7), -1)
    fused = FusedSearchCell(5, 5, 6, 3, PRIMITIVES, perf=OPTIMISED).eval()
    fused.load_state_dict(cell.state_dict())
    with torch.no_grad():
        ref = cell(s0, s1, w)
        out = fused(s0.contiguous(memory_format=torch.channels_last), s1, w)
    _close(out, ref, torch.float32, "eval output")


def _net_step(net, x, target, arch_only):
    for p in net.parameters():
        p.grad = None
    y = net(x)
    loss = F.mse_loss(y, target)
    if arch_only:  # Searcher._arch_step: gradients for alpha and beta only
        ga, gb = torch.autograd.grad(loss, [net.alpha, net.beta])
        return y.detach(), {"alpha": ga, "beta": gb}, None
    loss.backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters()}
    grads["input"] = x.grad.clone()
    return y.detach(), grads, {k: v.clone() for k, v in net.state_dict().items()}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("cell_sharing", [True, False])
@pytest.mark.parametrize("ckpt", [False, True])
def test_supernet_optimised_matches_plain(cell_sharing, ckpt, dtype):
    """Whole supernet, train mode: output, gradients w.r.t. the input, alpha,
    beta and every weight, and BN running stats after one step; also the
    architecture step's autograd.grad (which lets _ConvsBN skip weight grads)."""
    cfg = get_preset("tiny").replace(space={"cell_sharing": cell_sharing, "checkpoint_cells": ckpt})
    torch.manual_seed(0)
    start = {k: v.clone() for k, v in CompactSuperNet(cfg).to(dtype).state_dict().items()}
    x = torch.rand(2, 1, 16, 16, dtype=dtype, requires_grad=True)
    target = torch.rand(2, 1, 16, 16, dtype=dtype)
    res = {}
    for name, opts in (("plain", PLAIN), ("opt", OPTIMISED)):
        net = CompactSuperNet(cfg, opts).to(dtype).train()
        net.load_state_dict(start)
        x.grad = None
        res[name] = _net_step(net, x, target, arch_only=False)
        net.load_state_dict(start)
        res[name + "_arch"] = _net_step(net, x.detach(), target, arch_only=True)
    y0, g0, st0 = res["plain"]
    y1, g1, st1 = res["opt"]
    _close(y1, y0, dtype, "output")
    assert g1.keys() == g0.keys()
    for k in g0:
        _close(g1[k], g0[k], dtype, f"grad {k}")
    for k in st0:
        _close(st1[k].to(dtype), st0[k].to(dtype), dtype, f"state {k}")
    for k in ("alpha", "beta"):
        _close(res["opt_arch"][1][k], g0[k], dtype, f"arch-step grad {k}")
        _close(res["plain_arch"][1][k], g0[k], dtype, f"plain arch-step grad {k}")


def test_optimised_path_saves_fewer_activations():
    """The point of the recomputation: the tensors autograd keeps for backward
    (bytes, counted with saved_tensors_hooks) drop by more than half."""
    cfg = get_preset("tiny")
    x = torch.rand(2, 1, 24, 24)

    def saved_bytes(perf):
        torch.manual_seed(0)
        net = CompactSuperNet(cfg, perf).train()
        seen, total = set(), 0

        def pack(t):
            nonlocal total
            key = (t.untyped_storage().data_ptr(), t.dtype)
            if key not in seen:
                seen.add(key)
                total += t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            net(x).square().mean()
        return total

    plain, opt = saved_bytes(PLAIN), saved_bytes(OPTIMISED)
    assert opt < 0.5 * plain, (opt, plain)


@pytest.mark.parametrize("nhwc,threads", [(False, 1), (True, 2)], ids=["nchw-1-thread", "nhwc-2-threads"])
def test_convs_bn_gradcheck(nhwc, threads):
    """_ConvsBN (depthwise on a per-edge copy, grouped 1x1, BN with a weight) against
    finite differences, float64, including the summed gradient of the shared input; also as
    the search step runs it: NHWC on 2 threads (its BN then on one, the grouped 1x1 as a
    block-diagonal matrix product)."""
    torch.manual_seed(0)
    E, C = 2, 3
    inp = torch.randn(2, C, 5, 5, dtype=torch.float64)
    if nhwc:
        inp = inp.contiguous(memory_format=torch.channels_last)
    inp.requires_grad_(True)
    w_dw = torch.randn(E * C, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    w_pw = torch.randn(E * C, C, 1, 1, dtype=torch.float64, requires_grad=True)
    gamma = torch.rand(E * C, dtype=torch.float64, requires_grad=True) + 0.5
    convs = (((1, 1), (1, 1), (1, 1), E * C), ((1, 1), (0, 0), (1, 1), E))

    def f(inp, gamma, w_dw, w_pw):
        with torch.no_grad():
            rep = torch.cat([inp] * E, dim=1)
        meta = (E, convs, 0.0, 1e-5, [None] * 9)
        return _ConvsBN.apply(inp, rep, gamma, None, None, None, meta, w_dw, w_pw)

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        assert f(inp, gamma, w_dw, w_pw).is_contiguous(memory_format=torch.channels_last) == nhwc
        assert torch.autograd.gradcheck(f, (inp, gamma, w_dw, w_pw), eps=1e-6, atol=1e-6)
    finally:
        torch.set_num_threads(before)


def test_perf_options_are_per_instance():
    """Two supernets with different options side by side: each keeps its own path,
    and neither changes what a third, default one does."""
    cfg = get_preset("tiny")
    plain, fast, default = CompactSuperNet(cfg, PLAIN), CompactSuperNet(cfg, OPTIMISED), CompactSuperNet(cfg)
    assert not any(isinstance(c, FusedSearchCell) for c in plain.cells.values())
    assert all(isinstance(c, FusedSearchCell) for c in fast.cells.values())
    assert all(isinstance(c, FusedSearchCell) for c in default.cells.values()) and default.perf == PerfOptions()
    # the same parameters and state_dict keys: checkpoints move between the two
    assert plain.state_dict().keys() == fast.state_dict().keys()
    with pytest.raises(Exception):
        PLAIN.fuse_edges = True  # frozen: an instance's options cannot be flipped under it
