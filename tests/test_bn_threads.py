"""The fast path's thread-count workarounds compute what torch computes.

``hinas_lib.bn_threads`` runs channels_last BNs whose width is not a multiple of 16 on one
thread (torch's kernel is slower on two there); ``hinas_lib.fused._conv`` runs 1x1 convs on
NHWC input as one matrix product with a block-diagonal weight for grouped ones. Both are
checked here at 2 threads, where the first one actually switches, against torch's own ops and
against finite differences (and ``_ConvsBN`` on NHWC at 2 threads in test_perf_equivalence.py).
"""
import pytest
import torch
import torch.nn.functional as F

from hinas_lib import bn_threads
from hinas_lib.config import get_preset
from hinas_lib.fused import PerfOptions, _conv, _conv_backward
from hinas_lib.supernet import CompactSuperNet


@pytest.fixture
def two_threads():
    n = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(n)


def _nhwc(*shape, dtype=torch.float64, grad=True):
    return torch.randn(*shape, dtype=dtype).contiguous(memory_format=torch.channels_last).requires_grad_(grad)


def test_which_batch_norms_run_on_one_thread(two_threads):
    assert bn_threads._slow_on_threads(_nhwc(2, 20, 4, 4))
    assert not bn_threads._slow_on_threads(_nhwc(2, 32, 4, 4))        # a multiple of 16: torch's fast kernel
    assert not bn_threads._slow_on_threads(torch.randn(2, 20, 4, 4))  # NCHW
    torch.set_num_threads(1)
    assert not bn_threads._slow_on_threads(_nhwc(2, 20, 4, 4))        # one thread already


def test_one_thread_inside_and_the_count_restored_even_after_an_error(two_threads):
    x = _nhwc(2, 20, 4, 4)
    with bn_threads.one_thread_if_slow(x):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError):
        with bn_threads.one_thread_if_slow(x):
            raise RuntimeError("inside")
    assert torch.get_num_threads() == 2
    with bn_threads.one_thread_if_slow(_nhwc(2, 32, 4, 4)):
        assert torch.get_num_threads() == 2


def test_batch_norm_is_f_batch_norm_with_the_same_running_stats(two_threads, monkeypatch):
    torch.manual_seed(0)
    x, gamma, beta = _nhwc(3, 20, 5, 6), torch.rand(20, dtype=torch.float64) + 0.5, torch.randn(20, dtype=torch.float64)
    gamma.requires_grad_(True)
    beta.requires_grad_(True)
    threads_seen = []
    real = torch.native_batch_norm
    monkeypatch.setattr(torch, "native_batch_norm", lambda *a: threads_seen.append(torch.get_num_threads()) or real(*a))
    outs = []
    for fn in (bn_threads.batch_norm, F.batch_norm):
        rm, rv = torch.zeros(20, dtype=torch.float64), torch.ones(20, dtype=torch.float64)
        y = fn(x, rm, rv, gamma, beta, True, 0.1, 1e-5)
        g = torch.autograd.grad((y * torch.linspace(-1, 2, y.numel(), dtype=y.dtype).view_as(y)).sum(),
                                (x, gamma, beta))
        outs.append((y, g, rm, rv))
    assert threads_seen[0] == 1  # ours ran on one thread
    for a, b in zip(outs[0], outs[1]):
        for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            torch.testing.assert_close(u, v, rtol=1e-12, atol=1e-12)
    assert outs[0][0].is_contiguous(memory_format=torch.channels_last)


def test_batch_norm_gradcheck(two_threads):
    torch.manual_seed(0)
    x, gamma = _nhwc(2, 5, 3, 4), (torch.rand(5, dtype=torch.float64) + 0.5).requires_grad_(True)
    beta = torch.randn(5, dtype=torch.float64, requires_grad=True)
    f = lambda x, gamma, beta: bn_threads.batch_norm(x, None, None, gamma, beta, True, 0.0, 1e-5)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, gamma, beta), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("groups", [1, 3])
def test_pointwise_conv_as_a_matrix_product_is_conv2d(groups):
    """1x1 convs on NHWC input (the matrix-product path): forward, both gradients, and the
    layout, against F.conv2d and its autograd."""
    torch.manual_seed(0)
    x, w = _nhwc(2, 12, 5, 7), torch.randn(12, 12 // groups, 1, 1, dtype=torch.float64, requires_grad=True)
    y = _conv(x, w, None, (1, 1), (0, 0), (1, 1), groups)
    ref = F.conv2d(x, w, None, 1, 0, 1, groups)
    torch.testing.assert_close(y, ref)
    assert y.is_contiguous(memory_format=torch.channels_last)
    g = _nhwc(2, 12, 5, 7, grad=False)
    gi, gw = _conv_backward(g, x.detach(), w.detach(), (1, 1), (0, 0), (1, 1), groups, (True, True))
    ri, rw = torch.autograd.grad(ref, (x, w), g)
    torch.testing.assert_close(gi, ri)
    torch.testing.assert_close(gw, rw)
    assert torch.autograd.gradcheck(lambda x, w: _conv(x, w, None, (1, 1), (0, 0), (1, 1), groups), (x, w),
                                    eps=1e-6, atol=1e-6)


def test_supernet_at_two_threads_matches_the_plain_path(two_threads, monkeypatch):
    """The whole optimised supernet at 2 threads (BNs switched to one, matrix-product 1x1s)
    against the straightforward path: output and every gradient, float64."""
    from hinas_lib import fused
    seen = {"one-thread BN": 0, "1x1 as a product": 0}
    slow, pointwise = bn_threads._slow_on_threads, fused._pointwise

    def count(key, fn):
        def wrapped(*a):
            r = fn(*a)
            seen[key] += bool(r)
            return r
        return wrapped

    monkeypatch.setattr(bn_threads, "_slow_on_threads", count("one-thread BN", slow))
    monkeypatch.setattr(fused, "_pointwise", count("1x1 as a product", pointwise))
    cfg = get_preset("tiny")
    torch.manual_seed(0)
    start = CompactSuperNet(cfg).double().state_dict()
    x, t = torch.rand(2, 1, 16, 16, dtype=torch.float64), torch.rand(2, 1, 16, 16, dtype=torch.float64)
    res = []
    for opts in (PerfOptions.plain(), PerfOptions()):
        net = CompactSuperNet(cfg, opts).double().train()
        net.load_state_dict(start)
        y = net(x)
        loss = F.mse_loss(y, t)
        params = [p for p in net.parameters()]
        res.append((y.detach(), torch.autograd.grad(loss, params)))
    assert seen["one-thread BN"] and seen["1x1 as a product"], seen  # both paths ran
    torch.testing.assert_close(res[1][0], res[0][0], rtol=1e-9, atol=1e-10)
    for a, b in zip(res[1][1], res[0][1]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
