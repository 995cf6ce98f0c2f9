"""The supernet: shapes, sharing variants, gradients, checkpointing, derivation."""
import itertools

import pytest
import torch
import torch.nn.functional as F

import hinas_lib.supernet_base as supernet_mod  # where the cell checkpointing lives
from hinas_lib.cells import SearchCell
from hinas_lib.config import get_preset
from hinas_lib.derive import derive_cell, derive_genotype
from hinas_lib.genotype import edge_index, edges_per_cell
from hinas_lib.grid import move_mask, reachable
from hinas_lib.supernet import CompactSuperNet

H = W = 16


def _cfg(task="denoise", scale=2, **space):
    cfg = get_preset("tiny", task=task, scale=scale)
    return cfg.replace(space=space) if space else cfg


def _clone(net, cfg):
    other = CompactSuperNet(cfg)
    other.load_state_dict(net.state_dict())
    return other


def test_the_earlier_name_still_builds_the_compact_supernet():
    import hinas_lib
    from hinas_lib.designs import get_design
    from hinas_lib.supernet import SuperNet
    assert SuperNet is CompactSuperNet is hinas_lib.SuperNet is hinas_lib.CompactSuperNet
    assert get_design("compact").supernet is CompactSuperNet


# ---------------------------------------------------------------- shapes
@pytest.mark.parametrize("task,channels,scale", [("denoise", 1, 1), ("denoise", 3, 1),
                                                 ("sr", 3, 2), ("sr", 3, 3), ("sr", 3, 4)])
def test_output_shapes(task, channels, scale):
    cfg = _cfg(task, scale if task == "sr" else 2).replace(task={"channels": channels})
    net = CompactSuperNet(cfg)
    x = torch.rand(2, channels, 12, 10)
    y = net(x)
    assert y.shape == (2, channels, 12 * scale, 10 * scale)
    assert torch.isfinite(y).all()


def test_denoise_head_is_residual():
    net = CompactSuperNet(_cfg()).eval()
    x = torch.rand(2, 1, H, W)
    with torch.no_grad():
        y = net(x)
        noise = net.head.conv(net.features(x))
    torch.testing.assert_close(y - x, -noise, atol=1e-6, rtol=1e-5)


def test_sr_head_adds_bicubic_upsampling():
    net = CompactSuperNet(_cfg("sr", 3)).eval()
    x = torch.rand(2, 3, 8, 10)
    with torch.no_grad():
        y = net(x)
        up = F.interpolate(x, scale_factor=3, mode="bicubic", align_corners=False)
        res = net.head.shuffle(net.head.conv(net.features(x)))
    torch.testing.assert_close(y - up, res, atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------- variants
VARIANTS = list(itertools.product(["layer", "tied", "cell"], [True, False], [False, True]))


@pytest.mark.parametrize("alpha_sharing,cell_sharing,ckpt", VARIANTS)
def test_variants_shapes_and_gradients(alpha_sharing, cell_sharing, ckpt):
    cfg = _cfg(alpha_sharing=alpha_sharing, cell_sharing=cell_sharing, checkpoint_cells=ckpt)
    net = CompactSuperNet(cfg).train()
    L, S, E, O = 2, 3, edges_per_cell(2), len(cfg.space.primitives)
    expected = {"layer": (L, E, O), "tied": (1, E, O), "cell": (L, S, E, O)}[alpha_sharing]
    assert net.alpha.shape == expected
    assert net.beta.shape == (L, S, 3)

    x = torch.rand(2, 1, H, W)
    target = torch.rand(2, 1, H, W)
    # an MSE loss (not out.mean(): a plain mean is nearly blind to weights feeding
    # a zero-mean BN output followed by linear layers)
    F.mse_loss(net(x), target).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    # every alpha that is used gets a gradient, every unused one none
    if alpha_sharing == "cell":
        for l in range(L):
            for s in range(S):
                used = s in reachable(l, S)
                assert bool((net.alpha.grad[l, s] != 0).any()) == used, (l, s)
    else:
        assert (net.alpha.grad != 0).all()
    assert torch.all(net.beta.grad[~net.mask] == 0)


@pytest.mark.parametrize("alpha_sharing,cell_sharing", [("layer", True), ("cell", False)])
def test_out_mean_backward_reaches_arch_params(alpha_sharing, cell_sharing):
    net = CompactSuperNet(_cfg(alpha_sharing=alpha_sharing, cell_sharing=cell_sharing))
    net(torch.rand(2, 1, H, W)).mean().backward()
    for p in (net.alpha, net.beta):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_arch_and_weight_parameters_partition():
    net = CompactSuperNet(_cfg(alpha_sharing="cell", cell_sharing=False))
    arch, weights = net.arch_parameters(), net.weight_parameters()
    assert arch[0] is net.alpha and arch[1] is net.beta
    ids_all = [id(p) for p in net.parameters()]
    ids_a, ids_w = {id(p) for p in arch}, {id(p) for p in weights}
    assert not ids_a & ids_w
    assert ids_a | ids_w == set(ids_all)
    assert len(arch) + len(weights) == len(ids_all)
    assert net.num_weight_params() == sum(p.numel() for p in weights)


def test_cell_counts_with_and_without_sharing():
    shared = CompactSuperNet(_cfg(layers=3))
    unshared = CompactSuperNet(_cfg(layers=3, cell_sharing=False))
    n_shared = sum(isinstance(m, SearchCell) for m in shared.modules())
    n_unshared = sum(isinstance(m, SearchCell) for m in unshared.modules())
    mask = move_mask(3, 3)
    assert n_shared == len(shared.nodes) == sum(len(reachable(l, 3)) for l in range(3)) == 2 + 3 + 3
    assert n_unshared == int(mask.sum()) == 1 + 1 + 2 + 2 + 1 + 2 + 3 + 2
    assert n_unshared > n_shared
    assert unshared.num_weight_params() > shared.num_weight_params()


def test_naive_forward_matches_default():
    net = CompactSuperNet(_cfg()).eval()
    x = torch.rand(2, 1, H, W)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(x, naive=True), atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- checkpointing
@pytest.mark.parametrize("cell_sharing", [True, False])
def test_checkpointing_gives_same_outputs_and_grads(cell_sharing, monkeypatch):
    """Train mode (checkpointing is only active when training with grad); BN uses
    the batch statistics of the fixed batch in both nets. Tolerance 1e-5."""
    base = CompactSuperNet(_cfg(cell_sharing=cell_sharing)).train()
    ck = _clone(base, _cfg(cell_sharing=cell_sharing, checkpoint_cells=True)).train()
    calls = []
    real = supernet_mod.checkpoint

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(supernet_mod, "checkpoint", counting)
    x, target = torch.rand(2, 1, H, W), torch.rand(2, 1, H, W)
    outs = []
    for net in (base, ck):
        y = net(x)
        F.mse_loss(y, target).backward()
        outs.append(y.detach())
    assert len(calls) == sum(isinstance(m, SearchCell) for m in ck.modules())
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-5)
    for (n1, p1), (n2, p2) in zip(base.named_parameters(), ck.named_parameters()):
        assert n1 == n2
        torch.testing.assert_close(p1.grad, p2.grad, atol=1e-5, rtol=1e-4, msg=n1)


def test_checkpointing_inactive_in_eval_and_no_grad(monkeypatch):
    net = CompactSuperNet(_cfg(checkpoint_cells=True))
    monkeypatch.setattr(supernet_mod, "checkpoint", lambda *a, **k: pytest.fail("checkpoint used"))
    x = torch.rand(2, 1, H, W)
    net.eval()
    net(x).mean().backward()          # eval: grads flow, no checkpointing
    assert net.alpha.grad is not None
    net.train()
    with torch.no_grad():
        net(x)


def test_checkpointing_keeps_bn_running_stats():
    """Backward's recomputation of a checkpointed cell restores the BN running
    stats it touched, so they are updated once per step, as without checkpointing."""
    base = CompactSuperNet(_cfg()).train()
    ck = _clone(base, _cfg(checkpoint_cells=True)).train()
    x = torch.rand(2, 1, H, W)
    for net in (base, ck):
        net(x).square().mean().backward()
    sb, sc = base.state_dict(), ck.state_dict()
    for k in sb:
        if "running" in k or "num_batches" in k:
            torch.testing.assert_close(sb[k], sc[k], atol=1e-6, rtol=1e-5, msg=k)


# ---------------------------------------------------------------- derivation
DCFG = dict(layers=3, blocks=3)
PRIMS = get_preset("tiny").space.primitives


def _alpha_for(cell, strength=8.0, none_strength=None, second=None):
    """(E, O) alpha logits that make ``cell`` (a tuple of blocks) the strongest choice."""
    E, O = edges_per_cell(len(cell)), len(PRIMS)
    a = torch.zeros(E, O)
    if none_strength is not None:
        a[:, PRIMS.index("none")] = none_strength
    eidx = {ij: e for e, ij in enumerate(edge_index(len(cell)))}
    for i, block in enumerate(cell):
        for op, j in block:
            a[eidx[(i, j)], PRIMS.index(op)] = strength
    return a


def _beta_for(path, L, S, strength=20.0):
    beta = torch.zeros(L, S, 3)
    prev = 0
    for l, s in enumerate(path):
        beta[l, prev, s - prev + 1] = strength  # move k out of level prev goes to prev - 1 + k
        prev = s
    return beta


CELLS = [
    ((("conv_3x3", 0), ("sep_conv_3x3", 1)), (("skip_connect", 1), ("dil_conv_5x5", 2)),
     (("sep_conv_5x5", 0), ("dil_conv_3x3", 3))),
    ((("dil_conv_3x3", 0), ("skip_connect", 1)), (("conv_3x3", 0), ("conv_3x3", 2)),
     (("sep_conv_3x3", 2), ("sep_conv_5x5", 3))),
    ((("skip_connect", 0), ("conv_3x3", 1)), (("sep_conv_5x5", 1), ("skip_connect", 2)),
     (("dil_conv_5x5", 1), ("conv_3x3", 2))),
]


@pytest.mark.parametrize("path", [(0, 0, 0), (1, 2, 1), (0, 1, 2), (1, 0, 1)])
def test_derive_layer_sharing(path):
    net = CompactSuperNet(_cfg(**DCFG))
    with torch.no_grad():
        net.alpha.copy_(torch.stack([_alpha_for(c) for c in CELLS]))
        net.beta.copy_(_beta_for(path, 3, 3))
    g = derive_genotype(net)
    assert g.path == path
    assert g.cells == tuple(CELLS)
    assert g.width_factors == (1.0, 1.5, 2.0)


def test_derive_tied_uses_one_cell_everywhere():
    net = CompactSuperNet(_cfg(alpha_sharing="tied", **DCFG))
    with torch.no_grad():
        net.alpha.copy_(_alpha_for(CELLS[1])[None])
        net.beta.copy_(_beta_for((1, 1, 0), 3, 3))
    g = derive_genotype(net)
    assert g.path == (1, 1, 0)
    assert g.cells == (CELLS[1],) * 3


@pytest.mark.parametrize("path", [(0, 0, 0), (1, 2, 2), (1, 1, 0)])
def test_derive_cell_sharing_takes_cells_on_the_path(path):
    net = CompactSuperNet(_cfg(alpha_sharing="cell", cell_sharing=False, **DCFG))
    L, S = 3, 3
    alpha = torch.zeros(L, S, edges_per_cell(3), len(PRIMS))
    expected = []
    for l in range(L):
        for s in range(S):
            alpha[l, s] = _alpha_for(CELLS[(l + s) % 3])
        expected.append(CELLS[(l + path[l]) % 3])
    with torch.no_grad():
        net.alpha.copy_(alpha)
        net.beta.copy_(_beta_for(path, L, S))
    g = derive_genotype(net)
    assert g.path == path
    assert g.cells == tuple(expected)


def test_derive_never_picks_none():
    net = CompactSuperNet(_cfg(**DCFG))
    with torch.no_grad():
        net.alpha.copy_(torch.stack([_alpha_for(c, strength=3.0, none_strength=10.0) for c in CELLS]))
    g = derive_genotype(net)
    assert "none" not in g.ops()
    assert g.cells == tuple(CELLS)
    # even with 'none' the strongest op on every edge and otherwise uniform alphas
    with torch.no_grad():
        net.alpha.zero_()
        net.alpha[..., PRIMS.index("none")] = 10.0
    g = derive_genotype(net)
    assert "none" not in g.ops() and g.layers == 3 and g.blocks == 3


def test_derive_cell_keeps_two_strongest_inputs():
    # block 1 has inputs 0, 1, 2: the strongest two are 2 (0.9-ish) and 0
    prims = ("none", "conv_3x3", "skip_connect")
    a = torch.zeros(edges_per_cell(2), 3)
    a[0, 1] = 1.0            # block 0 <- s0: conv
    a[1, 2] = 1.0            # block 0 <- s1: skip
    a[2, 2] = 2.0            # block 1 <- s0: skip (middle)
    a[3, 1] = 1.0            # block 1 <- s1: conv (weakest)
    a[4, 1] = 4.0            # block 1 <- b0: conv (strongest)
    cell = derive_cell(a, prims, 2)
    assert cell == ((("conv_3x3", 0), ("skip_connect", 1)), (("skip_connect", 0), ("conv_3x3", 2)))


def test_derive_from_an_untrained_supernet_is_valid():
    net = CompactSuperNet(_cfg(**DCFG))
    g = derive_genotype(net)
    assert g.layers == 3 and g.blocks == 3 and len(g.path) == 3
    assert "none" not in g.ops()
