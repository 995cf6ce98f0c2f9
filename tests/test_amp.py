"""The mixed-precision path (``search.amp``/``train.amp``: autocast on CUDA) runs and agrees with float32.

No GPU is needed: CPU autocast in bf16 stands in for CUDA's, so the dtype handling of what the
step runs under autocast (the fused cells' custom autograd functions, the BN kernels, the float32
loss) is exercised on every machine. ``runtime.autocast`` itself is a no-op on the CPU, so the
tests hand the search step a CPU autocast in its place.

The activations stay NCHW here (``channels_last=False``): torch 2.13's CPU kernel for a bf16
channels_last depthwise dilated convolution reads out of bounds in its weight gradient (NaN in
about one run in six of the compact supernet; a (4, 16, 64, 64) input with dilation 16 crashed
the process), a CPU-only fault that is one more reason the CPU runs in float32. What is tested
is the dtype flow, which the memory format does not change.
"""
import contextlib
import random

import pytest
import torch
import torch.nn.functional as F

import hinas_lib.search as search_mod
from hinas_lib.config import get_preset
from hinas_lib.designs import get_design
from hinas_lib.fused import PerfOptions
from hinas_lib.network import build_network
from hinas_lib.ops import PRIMITIVES
from hinas_lib.sampling import random_genotype
from hinas_lib.search import arch_step, make_optimizers, weight_step
from hinas_lib.supernet import build_supernet
from hinas_lib.tasks import get_task

CPU = torch.device("cpu")


def _cpu_autocast(device, amp):
    return contextlib.nullcontext() if amp == "none" else torch.autocast("cpu", dtype=torch.bfloat16)


def _cfg(style):
    d = get_design(style)
    prim = PRIMITIVES if d.primitives is None else d.primitives
    return get_preset("tiny").replace(space=dict(style=style, primitives=list(prim), arch_init=d.arch_init))


def _batch(seed=1, size=32):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(4, 1, size, size, generator=g)
    return (x + 0.1 * torch.randn(4, 1, size, size, generator=g)).clamp(0, 1), x


def _loss(make_net, cfg, x, y, amp):
    """A fresh network (same seed for both precisions), its loss function, and its loss on (x, y)."""
    torch.manual_seed(0)
    net = make_net().train()
    loss_fn = get_task(cfg).loss()
    with _cpu_autocast(CPU, amp):
        return net, loss_fn, loss_fn(net(x), y)


def _cos(a, b):
    return float(F.cosine_similarity(a.flatten().double(), b.flatten().double(), 0))


@pytest.mark.parametrize("style", ["compact", "authors"])
@pytest.mark.parametrize("perf", [PerfOptions(channels_last=False), PerfOptions.plain()], ids=["fused", "plain"])
def test_search_steps_under_autocast_agree_with_float32(style, perf, monkeypatch):
    monkeypatch.setattr(search_mod, "autocast", _cpu_autocast)
    cfg = _cfg(style)
    x, y = _batch()
    out = {}
    for amp in ("none", "bf16"):
        net, loss_fn, loss = _loss(lambda: build_supernet(cfg, perf), cfg, x, y, amp)
        out[amp] = (loss, torch.autograd.grad(loss, net.arch_parameters()))
        # the two steps the search alternates, as it runs them
        w_opt, a_opt = make_optimizers(net, cfg)
        before = [p.detach().clone() for p in net.parameters()]
        arch_step(net, a_opt, loss_fn, x, y, device=CPU, amp=amp)
        weight_step(net, w_opt, loss_fn, x, y, device=CPU, amp=amp)
        after = list(net.parameters())
        bad = [n for n, p in net.named_parameters() if p.dtype != torch.float32 or not torch.isfinite(p).all()]
        assert not bad, (amp, bad)
        assert any(not torch.equal(a, b) for a, b in zip(after, before))
    (l32, g32), (l16, g16) = out["none"], out["bf16"]
    assert l16.dtype == torch.float32
    assert l16.item() == pytest.approx(l32.item(), rel=1e-2)
    for name, a, b in zip(("alpha", "beta"), g16, g32):
        assert a.dtype == torch.float32
        # bf16 keeps ~3 significant digits: the gradient must still point where float32's does
        assert _cos(a, b) > 0.99, name


@pytest.mark.parametrize("style", ["compact", "authors"])
def test_retraining_network_under_autocast_agrees_with_float32(style):
    cfg = _cfg(style)
    sp = cfg.space
    geno = random_genotype(random.Random(3), sp.layers, sp.blocks, sp.primitives)
    x, y = _batch(seed=2)
    grads = {}
    for amp in ("none", "bf16"):
        net, _, loss = _loss(lambda: build_network(geno, cfg), cfg, x, y, amp)
        loss.backward()
        grads[amp] = torch.cat([p.grad.flatten() for p in net.parameters()])
        assert torch.isfinite(grads[amp]).all()
    assert _cos(grads["bf16"], grads["none"]) > 0.99
