"""Primitives, the op registry, mixed ops and cells."""
import contextlib

import pytest
import torch
from torch import nn

from hinas_lib import ops as ops_mod
from hinas_lib.cells import FixedCell, MixedOp, SearchCell
from hinas_lib.config import Config, SpaceConfig, TaskConfig, SearchConfig
from hinas_lib.genotype import Genotype, edges_per_cell
from hinas_lib.ops import (ACTIVATIONS, OPS, PRIMITIVES, ActConvBN, Zero, build_op, make_act,
                           register_op, router)


@contextlib.contextmanager
def _registry_guard():
    saved_ops, saved_prims = dict(OPS), list(PRIMITIVES)
    try:
        yield
    finally:
        OPS.clear()
        OPS.update(saved_ops)
        PRIMITIVES[:] = saved_prims  # in place: other modules hold this list


@pytest.fixture
def registry():
    with _registry_guard():
        yield


def _conv1x1_builder(c, affine, act):
    return ActConvBN(c, c, 1, affine=affine, act=act)


# ---------------------------------------------------------------- primitives
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("name", list(PRIMITIVES))
def test_every_primitive_keeps_shape(name, affine, act):
    op = build_op(name, 4, affine, act)
    x = torch.randn(2, 4, 9, 11)
    y = op(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    if name == "none":
        assert torch.equal(y, torch.zeros_like(x))
    if name == "skip_connect":
        assert torch.equal(y, x)


def test_builtin_ops_start_with_their_activation():
    for name in PRIMITIVES:
        op = build_op(name, 4, False, "relu")
        if isinstance(op, nn.Sequential):
            assert isinstance(op[0], nn.ReLU), name


def test_unknown_op_and_activation_rejected():
    with pytest.raises(ValueError, match="unknown op 'conv_7x7'"):
        build_op("conv_7x7", 4, True)
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        make_act("gelu", 4)


def test_router_changes_width_only():
    r = router(4, 6, affine=False)
    y = r(torch.randn(2, 4, 7, 5))
    assert y.shape == (2, 6, 7, 5)


# ---------------------------------------------------------------- registry
def test_register_op_is_usable_everywhere(registry):
    name = "test_ops_cells_conv1x1"
    register_op(name, _conv1x1_builder)
    assert name in OPS and name not in PRIMITIVES
    assert build_op(name, 4, False)(torch.randn(1, 4, 6, 6)).shape == (1, 4, 6, 6)
    with pytest.raises(ValueError, match="already registered"):
        register_op(name, _conv1x1_builder)

    prims = ("none", "skip_connect", name)
    sp = SpaceConfig(layers=1, blocks=2, filters=4, width_factors=(1.0, 2.0), primitives=prims)
    cfg = Config(task=TaskConfig(), space=sp, search=SearchConfig())
    from hinas_lib.supernet import CompactSuperNet
    net = CompactSuperNet(cfg)
    assert net.alpha.shape == (1, edges_per_cell(2), 3)
    x = torch.randn(2, 1, 8, 8)
    assert net(x).shape == x.shape

    g = Genotype(cells=(((( name, 0), ("skip_connect", 1)), ((name, 2), (name, 1))),), path=(0,))
    from hinas_lib.network import CompactNet
    assert CompactNet(g, cfg, filters=4)(x).shape == x.shape


def test_register_op_add_to_primitives(registry):
    name = "test_ops_cells_prim"
    register_op(name, _conv1x1_builder, add_to_primitives=True)
    assert PRIMITIVES[-1] == name
    m = MixedOp(4, PRIMITIVES)
    assert len(m.ops) == len(PRIMITIVES) - 1


def test_add_to_primitives_reaches_default_space(registry):
    name = "test_ops_cells_default_space"
    register_op(name, _conv1x1_builder, add_to_primitives=True)
    assert name in SpaceConfig().primitives


def test_registry_guard_cleans_up():
    before_ops, before_prims = dict(OPS), list(PRIMITIVES)
    prims_obj = PRIMITIVES
    with _registry_guard():
        register_op("test_ops_cells_tmp", _conv1x1_builder, add_to_primitives=True)
    assert OPS == before_ops and PRIMITIVES == before_prims
    assert ops_mod.PRIMITIVES is prims_obj


# ---------------------------------------------------------------- MixedOp
def _grads(tensors):
    return [t.grad.clone() for t in tensors]


def _zero_grads(tensors):
    for t in tensors:
        t.grad = None


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("prims,act", [
    (tuple(PRIMITIVES), "leaky_relu"),
    (("conv_3x3", "none", "skip_connect", "sep_conv_3x3"), "relu"),
    (("none", "dil_conv_3x3", "conv_3x3"), "prelu"),
])
def test_mixed_op_fast_path_equals_naive_exactly(mode, prims, act):
    m = MixedOp(4, prims, affine=False, act=act)
    getattr(m, mode)()
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    alpha = torch.randn(len(prims), requires_grad=True)
    g_out = torch.randn(2, 4, 8, 8)
    leaves = [x, alpha, *m.parameters()]
    results = []
    for fn in (m.forward, m.forward_naive):
        _zero_grads(leaves)
        y = fn(x, torch.softmax(alpha, -1))
        (y * g_out).sum().backward()
        results.append((y.detach(), _grads(leaves)))
    (y1, g1), (y2, g2) = results
    assert torch.equal(y1, y2)
    assert len(g1) == len(g2)
    for a, b in zip(g1, g2):
        assert torch.equal(a, b)
    # alpha of every primitive (none included) gets a gradient
    assert (g1[1] != 0).all()


def test_mixed_op_has_no_module_for_none_and_never_runs_it(monkeypatch):
    m = MixedOp(4, PRIMITIVES)
    assert len(m.ops) == len(PRIMITIVES) - 1
    assert not any(isinstance(mod, Zero) for mod in m.modules())
    assert m.active == [k for k, p in enumerate(PRIMITIVES) if p != "none"]

    def boom(self, x):
        raise AssertionError("the none op was executed")

    monkeypatch.setattr(Zero, "forward", boom)
    x = torch.randn(2, 4, 6, 6)
    w = torch.softmax(torch.randn(len(PRIMITIVES)), -1)
    m(x, w)  # does not raise
    with pytest.raises(AssertionError, match="none op was executed"):
        m.forward_naive(x, w)  # the textbook version does run it


def test_none_alpha_stays_in_the_softmax_denominator():
    m = MixedOp(3, ("none", "skip_connect"))
    x = torch.randn(1, 3, 5, 5)
    outs = []
    for a_none in (-5.0, 0.0, 5.0):
        alpha = torch.tensor([a_none, 0.0])
        w = torch.softmax(alpha, -1)
        y = m(x, w)
        assert torch.allclose(y, x / (1 + torch.exp(torch.tensor(a_none))), atol=1e-7)
        outs.append(y.abs().sum().item())
    assert outs[0] > outs[1] > outs[2]


# ---------------------------------------------------------------- SearchCell
def _cell_io(c_pp=3, c_p=5, C=4, blocks=3, prims=tuple(PRIMITIVES), act="leaky_relu"):
    cell = SearchCell(c_pp, c_p, C, blocks, prims, act=act)
    s0 = torch.randn(2, c_pp, 8, 8, requires_grad=True)
    s1 = torch.randn(2, c_p, 8, 8, requires_grad=True)
    alpha = torch.randn(edges_per_cell(blocks), len(prims), requires_grad=True)
    return cell, s0, s1, alpha


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("act", ["leaky_relu", "relu", "prelu"])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_search_cell_default_equals_naive(mode, act, dtype, tol):
    """The default path computes one activation per input state and shares it; the
    naive path runs every op on its own. Outputs and all gradients agree to 1e-5 in
    float32 and 1e-10 in float64 (not bit-exact: the shared activation sums its
    gradients in another order, which train-mode BN amplifies a little)."""
    cell, s0, s1, alpha = _cell_io(act=act)
    cell.to(dtype)
    s0, s1, alpha = (t.detach().to(dtype).requires_grad_() for t in (s0, s1, alpha))
    getattr(cell, mode)()
    assert cell.share_act == (act != "prelu")
    leaves = [s0, s1, alpha, *cell.parameters()]
    g_out = torch.randn(2, 4, 8, 8, dtype=dtype)
    res = []
    for naive in (False, True):
        _zero_grads(leaves)
        y = cell(s0, s1, torch.softmax(alpha, -1), naive=naive)
        (y * g_out).sum().backward()
        res.append((y.detach(), _grads(leaves)))
    (y1, g1), (y2, g2) = res
    assert y1.shape == (2, 4, 8, 8)
    torch.testing.assert_close(y1, y2, atol=tol, rtol=tol)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)


def test_search_cell_computes_one_activation_per_input_state():
    blocks = 3
    cell, s0, s1, alpha = _cell_io(blocks=blocks)
    calls = []
    for mixed in cell.edges:  # hook the *leading* activation of every op
        for op in mixed.ops:
            if isinstance(op, nn.Sequential):
                assert isinstance(op[0], nn.LeakyReLU)
                op[0].register_forward_hook(lambda *a: calls.append(1))
    w = torch.softmax(alpha, -1)
    cell(s0, s1, w)
    # states s0, s1, b0 .. b_{B-2} feed edges (the last block only feeds the output conv)
    assert len(calls) == blocks + 1
    calls.clear()
    cell(s0, s1, w, naive=True)
    n_preact = sum(isinstance(build_op(p, 2, False), nn.Sequential) for p in PRIMITIVES)
    assert len(calls) == edges_per_cell(blocks) * n_preact


def test_search_cell_with_op_of_other_activation(registry):
    """An op whose leading activation differs from the shared one (a ReLU op in a
    leaky_relu cell) runs its own activation, in the per-edge and fused paths."""
    name = "test_ops_cells_relu_conv"
    register_op(name, lambda c, affine, act: nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 3, padding=1, bias=False)))
    cell, s0, s1, alpha = _cell_io(blocks=2, prims=("none", "conv_3x3", name))
    cell.eval()
    with torch.no_grad():
        w = torch.softmax(alpha, -1)
        torch.testing.assert_close(cell(s0, s1, w), cell(s0, s1, w, naive=True), atol=1e-6, rtol=1e-6)


def test_search_cell_edge_count():
    cell = SearchCell(4, 4, 4, 4, PRIMITIVES)
    assert len(cell.edges) == edges_per_cell(4) == 2 + 3 + 4 + 5


# ---------------------------------------------------------------- FixedCell
def test_fixed_cell_follows_genotype():
    geno_cell = ((("conv_3x3", 1), ("skip_connect", 0)), (("sep_conv_5x5", 2), ("dil_conv_3x3", 0)))
    cell = FixedCell(3, 5, 4, geno_cell)
    assert cell.inputs == [[1, 0], [2, 0]]
    assert isinstance(cell.ops[0][1], nn.Identity)
    assert isinstance(cell.ops[0][0], ActConvBN)
    bns = [m for m in cell.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(b.affine for b in bns)
    y = cell(torch.randn(2, 3, 7, 9), torch.randn(2, 5, 7, 9))
    assert y.shape == (2, 4, 7, 9)


def test_cat_channels_hands_each_block_a_dense_gradient_in_its_format():
    from hinas_lib.ops import cat_channels
    g = torch.Generator().manual_seed(0)
    leaves = [torch.randn(2, c, 5, 6, generator=g).contiguous(memory_format=torch.channels_last).requires_grad_()
              for c in (3, 4, 3)]
    w = torch.randn(2, 10, 5, 6, generator=g)
    grads = {}

    def run(cat, key):
        xs = [x * 1.0 for x in leaves]  # blocks: intermediate tensors, as in a cell
        for i, x in enumerate(xs):
            x.register_hook(lambda gr, i=i: grads.setdefault(key, {}).__setitem__(i, gr))
        out = cat(xs)
        (out * w).sum().backward()
        return out

    out = run(cat_channels, "ours")
    ref = run(lambda xs: torch.cat(xs, dim=1), "torch")
    assert torch.equal(out, ref)
    for i in range(3):
        assert torch.equal(grads["ours"][i], grads["torch"][i])
        assert grads["ours"][i].is_contiguous(memory_format=torch.channels_last)
    # torch's own backward: a strided channel slice of the output's gradient
    assert not grads["torch"][1].is_contiguous(memory_format=torch.channels_last)
    assert not grads["torch"][1].is_contiguous()
    # NCHW inputs get NCHW-contiguous gradients; without gradients it is torch.cat
    a = torch.randn(1, 2, 3, 3, requires_grad=True)
    cat_channels([a, a]).sum().backward()
    assert a.grad.is_contiguous() and torch.equal(a.grad, torch.full_like(a, 2.0))
    with torch.no_grad():
        assert torch.equal(cat_channels(leaves), torch.cat(leaves, dim=1))


def test_a_fixed_cells_batchnorms_get_dense_gradients_in_training():
    # the slow path this avoids: torch's CPU BatchNorm backward on a strided gradient with an
    # NHWC input (the channel slices torch.cat's backward hands out) runs ~10x slower
    genotype = ((("sep_conv_3x3", 0), ("conv_3x3", 1)), (("dil_conv_3x3", 2), ("skip_connect", 0)))
    cell = FixedCell(8, 8, 8, genotype).to(memory_format=torch.channels_last).train()
    seen = []
    for m in cell.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.register_full_backward_hook(lambda m, gi, go: seen.append(
                go[0].is_contiguous(memory_format=torch.channels_last)))
    s = torch.randn(4, 8, 9, 9).contiguous(memory_format=torch.channels_last).requires_grad_()
    cell(s, s).square().mean().backward()
    assert len(seen) >= 5 and all(seen)
