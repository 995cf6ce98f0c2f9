"""The planned inference forward pass (hinas_lib.inference_plan) computes what the eager
inference copy computes, is what inference_copy returns where it applies, and steps aside
everywhere else."""
import dataclasses

import pytest
import torch
from torch import nn

from hinas_lib.config import get_preset
from hinas_lib.deploy import inference_copy
from hinas_lib.genotype import Genotype
from hinas_lib.inference import receptive_radius, tiled_forward
from hinas_lib.inference_plan import PlannedCompactNet, plan_for_inference
from hinas_lib.network import build_network

# every op kind, a block summing two convs, one summing a conv and a skip, a skip alone on a
# block input, and a width change between the cells (a router)
CELLS = (((("sep_conv_3x3", 0), ("dil_conv_5x5", 1)), (("conv_3x3", 0), ("skip_connect", 2)),
          (("sep_conv_5x5", 2), ("dil_conv_3x3", 3))),
         ((("dil_conv_3x3", 0), ("sep_conv_5x5", 1)), (("conv_3x3", 1), ("conv_3x3", 2)),
          (("skip_connect", 0), ("skip_connect", 3))),
         ((("conv_3x3", 0), ("dense_dil_3x3", 1)), (("skip_connect", 2), ("dil_conv_5x5", 0)),
          (("sep_conv_3x3", 3), ("conv_3x3", 2))))
PATH = (0, 1, 2)


def _trained_like(task="denoise", scale=None, activation="leaky_relu", cells=CELLS, path=PATH):
    """A compact network whose BatchNorms hold non-trivial statistics (as after training)."""
    cfg = get_preset("tiny", task, scale=scale)
    cfg = dataclasses.replace(cfg, space=dataclasses.replace(cfg.space, activation=activation, blocks=len(cells[0]),
                                                             layers=len(path)))
    torch.manual_seed(0)
    net = build_network(Genotype(cells=cells, path=path), cfg)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
    return net.eval()


def _planned(cells, path=(0, 1)):
    """A trained-like network of ``cells`` and its planned inference copy (which must apply)."""
    net = _trained_like(cells=cells, path=path)
    planned = inference_copy(net)
    assert isinstance(planned, PlannedCompactNet)
    return net, planned


@pytest.mark.parametrize("task,scale,activation", [("denoise", None, "leaky_relu"), ("sr", 3, "leaky_relu"),
                                                   ("denoise", None, "relu")])
def test_the_planned_pass_computes_the_eager_output(task, scale, activation):
    net = _trained_like(task, scale, activation)
    eager = inference_copy(net, plan=False)
    planned = inference_copy(net)
    assert isinstance(planned, PlannedCompactNet) and not isinstance(eager, PlannedCompactNet)
    x = torch.rand(2, net.cfg.task.channels, 29, 38, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref, out = net(x), planned(x)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=2e-5, rtol=1e-4), (out - ref).abs().max()
    # the input is not written to, and a second pass gives the same output
    x0 = x.clone()
    with torch.no_grad():
        again = planned(x)
    assert torch.equal(x, x0) and torch.equal(again, out)


def test_blocks_of_two_skips_that_later_blocks_read():
    # a block summing two skips (neither a fresh tensor: the sum must not write into a state),
    # read by a later block, in the first cell and after a width change
    cells = (((("skip_connect", 0), ("skip_connect", 1)), (("conv_3x3", 2), ("skip_connect", 2)),
              (("sep_conv_3x3", 3), ("skip_connect", 0))),
             ((("skip_connect", 1), ("dil_conv_3x3", 0)), (("skip_connect", 2), ("skip_connect", 0)),
              (("conv_3x3", 3), ("conv_3x3", 2))))
    net, planned = _planned(cells)
    x = torch.rand(2, 1, 29, 38, generator=torch.Generator().manual_seed(1))
    x0 = x.clone()
    with torch.no_grad():
        ref, out, again = net(x), planned(x), planned(x)
    assert torch.allclose(out, ref, atol=2e-5, rtol=1e-4), (out - ref).abs().max()
    assert torch.equal(x, x0) and torch.equal(again, out)


def test_tiles_and_the_receptive_radius_work_through_the_plan():
    net = _trained_like()
    planned = inference_copy(net)
    # the radius probe needs gradients: it runs the eager copy inside, and finds the eager radius
    assert receptive_radius(planned, 1) == receptive_radius(inference_copy(net, plan=False), 1)
    x = torch.rand(1, 1, 150, 133, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        whole = net(x)
    tiled = tiled_forward(planned, x, tile=64)  # default overlap: the receptive radius
    assert torch.allclose(tiled, whole, atol=2e-5, rtol=1e-4)


def test_the_plan_steps_aside_where_it_does_not_apply():
    net = _trained_like()
    # training mode, float64, a parametric activation, an unknown module, the authors' design: eager
    assert plan_for_inference(net.train()) is net
    f64 = inference_copy(net.eval(), plan=False).double()
    assert plan_for_inference(f64) is f64
    prelu = inference_copy(_trained_like(activation="prelu"))
    assert not isinstance(prelu, PlannedCompactNet)
    odd = inference_copy(net, plan=False)
    odd.cells[1].ops[0][1][0] = nn.SiLU()  # a module the plan does not know, inside one op
    assert plan_for_inference(odd) is odd
    cfg = get_preset("tiny", "denoise")
    cfg = dataclasses.replace(cfg, space=dataclasses.replace(cfg.space, style="authors"))
    authors = build_network(Genotype(cells=CELLS[:2], path=(0, 1)), cfg).eval()
    assert not isinstance(inference_copy(authors), PlannedCompactNet)


def test_each_fused_primitive_matches_its_eager_pieces():
    # the oneDNN primitives the plan relies on: conv + bias + LeakyReLU in one, and conv + bias
    # added into another tensor (in place and out of place)
    from hinas_lib.inference_plan import _Conv
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 8, 17, 19, generator=g).contiguous(memory_format=torch.channels_last)
    other = torch.randn(2, 8, 17, 19, generator=g).contiguous(memory_format=torch.channels_last)
    for k, dil, groups in ((1, 1, 1), (3, 1, 1), (5, 2, 8), (3, 1, 8)):
        conv = nn.Conv2d(8, 8, k, padding=dil * (k - 1) // 2, dilation=dil, groups=groups)
        c = _Conv(conv.weight.detach().contiguous(memory_format=torch.channels_last), conv.bias.detach(),
                  list(conv.padding), [1, 1], [dil, dil], groups)
        with torch.no_grad():
            ref = conv(x)
            assert torch.allclose(c(x), ref, atol=1e-5)
            c.post = 0.2
            assert torch.allclose(c(x), nn.functional.leaky_relu(ref, 0.2), atol=1e-5)
            c.post = None
            assert torch.allclose(c.add_to(x, other, in_place=False), ref + other, atol=1e-5)
            acc = other.clone()
            out = c.add_to(x, acc, in_place=True)
            assert out.data_ptr() == acc.data_ptr() and torch.allclose(acc, ref + other, atol=1e-5)


def test_leaf_blocks_the_projection_and_input_activations_are_folded_and_exact():
    # A last cell whose blocks all read only the cell's inputs (every block a leaf, as in the zoo's
    # denoise-s30), a skip reading input 1 raw, input 0 read only through activations; a first
    # cell with a leaf block whose edges are a skip and a conv.
    cells = (((("sep_conv_3x3", 0), ("conv_3x3", 1)), (("skip_connect", 2), ("dil_conv_5x5", 0)),
              (("skip_connect", 1), ("sep_conv_5x5", 3))),
             ((("sep_conv_5x5", 0), ("skip_connect", 1)), (("dil_conv_3x3", 0), ("conv_3x3", 1)),
              (("sep_conv_3x3", 0), ("sep_conv_5x5", 1))))
    net, planned = _planned(cells)
    first, last = planned.cells
    # leaves: blocks no later block reads add straight into the cell's output
    assert [f is not None for f in first.folded] == [False, False, True]
    assert all(f is not None for f in last.folded)
    # the last cell writes proj(output) + stem itself
    assert planned.proj_in_cell
    # input 0 of the last cell is read only through activations: its preprocessing applies it;
    # input 1 is read raw by a skip: not
    assert last.pre0[-1].post == pytest.approx(0.2) and last.pre1[-1].post is None
    assert all(not st or type(st[0]).__name__ != "_Act" for i, idxs in enumerate(last.inputs)
               for st, j in zip(last.ops[i], idxs) if j == 0)
    x = torch.rand(1, 1, 41, 37, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref, out = net(x), planned(x)
    assert torch.allclose(out, ref, atol=2e-5, rtol=1e-4), (out - ref).abs().max()
