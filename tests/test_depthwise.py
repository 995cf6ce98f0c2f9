"""Dilated depthwise convolutions with the flipped-kernel input gradient (hinas_lib/depthwise.py):
the same function and gradients as torch's conv, taken exactly where it applies."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hinas_lib.depthwise import DepthwiseConv2d, dilated_depthwise, flip_applies
from hinas_lib.fused import _conv, _conv_backward
from hinas_lib.ops import OPS, DilConv


def _inputs(C, k, nhwc, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, C, 9, 8, dtype=torch.float64, generator=g)
    if nhwc:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(C, 1, k, k, dtype=torch.float64, generator=g)
    return x.requires_grad_(), w.requires_grad_()


@pytest.mark.parametrize("k,d", [(3, 2), (5, 2), (3, 3)])
@pytest.mark.parametrize("nhwc", [False, True], ids=["nchw", "nhwc"])
def test_gradients_equal_torchs_conv(k, d, nhwc):
    x, w = _inputs(3, k, nhwc)
    p = d * (k - 1) // 2
    assert flip_applies(x, w, (1, 1), (p, p), (d, d), 3)
    y = dilated_depthwise(x, w, (p, p), (d, d))
    ref = F.conv2d(x, w, None, 1, p, d, 3)
    torch.testing.assert_close(y, ref, rtol=0, atol=0)
    g = torch.randn_like(ref)
    got = torch.autograd.grad(y, (x, w), g)
    want = torch.autograd.grad(ref, (x, w), g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda x, w: dilated_depthwise(x, w, (p, p), (d, d)), (x, w))


def test_applies_only_to_dilated_depthwise_same_padding_stride_1_on_the_cpu():
    x = torch.zeros(1, 4, 8, 8)
    w = torch.zeros(4, 1, 3, 3)
    assert flip_applies(x, w, (1, 1), (2, 2), (2, 2), 4)
    assert not flip_applies(x, w, (1, 1), (1, 1), (1, 1), 4)               # undilated: torch's is as fast
    assert not flip_applies(x, w, (2, 2), (2, 2), (2, 2), 4)               # strided
    assert not flip_applies(x, w, (1, 1), (1, 1), (2, 2), 4)               # not "same" padding
    assert not flip_applies(x, w, (1, 1), "same", (2, 2), 4)
    assert not flip_applies(x, torch.zeros(4, 2, 3, 3), (1, 1), (2, 2), (2, 2), 2)  # two inputs per group
    assert not flip_applies(x, torch.zeros(8, 1, 3, 3), (1, 1), (2, 2), (2, 2), 4)  # channel multiplier
    assert not flip_applies(x.to("meta"), w.to("meta"), (1, 1), (2, 2), (2, 2), 4)  # measured on CPUs only


def test_module_is_a_conv2d_that_routes_only_dilated_training_calls():
    torch.manual_seed(0)
    dil, plain = DepthwiseConv2d(4, 3, padding=2, dilation=2), DepthwiseConv2d(4, 3, padding=1)
    ref = nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=4, bias=False)
    assert isinstance(dil, nn.Conv2d) and dil.state_dict().keys() == ref.state_dict().keys()
    ref.load_state_dict(dil.state_dict())
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    y = dil(x)
    assert "DilatedDepthwise" in type(y.grad_fn).__name__
    torch.testing.assert_close(y, ref(x), rtol=0, atol=0)
    assert "DilatedDepthwise" not in type(plain(x).grad_fn).__name__
    with torch.no_grad():
        assert dil(x).grad_fn is None
    # the compact design's dilated ops hold it; separable ones hold it too, undilated
    op = OPS["dil_conv_5x5"](4, False, "leaky_relu")
    assert isinstance(op, DilConv) and type(op[1]) is DepthwiseConv2d and op[1].dilation == (2, 2)


def test_fused_search_path_backward_equals_torchs_for_dilated_depthwise():
    """hinas_lib.fused runs the cells' convs itself (_ConvsBN recomputes them in backward): its conv
    and conv backward take the flipped path for a dilated depthwise conv and agree with torch's."""
    x, w = _inputs(6, 5, nhwc=True, seed=1)
    g = torch.randn(2, 6, 9, 8, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    gx, gw = _conv_backward(g, x.detach(), w.detach(), (1, 1), (4, 4), (2, 2), 6, (True, True))
    rx, rw, _ = torch.ops.aten.convolution_backward(g, x.detach(), w.detach(), None, [1, 1], [4, 4], [2, 2], False,
                                                    [0, 0], 6, [True, True, False])
    torch.testing.assert_close(gx, rx, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gw, rw, rtol=1e-12, atol=1e-12)
    only_w = _conv_backward(g, x.detach(), w.detach(), (1, 1), (4, 4), (2, 2), 6, (False, True))
    assert only_w[0] is None and torch.equal(only_w[1], gw)
    y = _conv(x, w, None, (1, 1), (4, 4), (2, 2), 6)  # with a graph: the function with the faster backward
    assert "DilatedDepthwise" in type(y.grad_fn).__name__
