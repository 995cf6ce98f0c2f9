"""The authors' design (``space.style = "authors"``) is hkzhang91/HiNAS's.

Weight counts are constants measured by building the authors' own code
(github hkzhang91/HiNAS at fc56724: one_stage_nas/modeling/dn_supernet.py,
sr_supernet.py, dn_compnet.py, sr_compnet.py) on a CPU, per parameter-name
prefix. Outside this repository, their reference weights were also copied into
these modules and the outputs compared: equal to 1.5e-6 (supernets, both
tasks, eval and train mode; retraining networks), losses to 4e-7.

Every component is also checked here against an independent formula written
with torch.nn.functional on the module's own weights.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hinas_lib import authors
from hinas_lib.config import get_preset
from hinas_lib.describe import describe
from hinas_lib.genotype import Genotype
from hinas_lib.grid import reachable
from hinas_lib.losses import RestorationLoss
from hinas_lib.network import build_network
from hinas_lib.ops import AUTHORS_PRIMITIVES
from hinas_lib.schedules import poly, poly_cosine, selection_score
from hinas_lib.supernet import build_supernet

# their supernets, weights per component (arch parameters excluded)
AUTHORS_SUPERNET = {
    "paper-denoise": {"stem1": 576, "stem2": 23040, "reduce1": 5760, "upsamplers": 450, "routers": 11200,
                      "cells": 1277430, "decoder.aspps": 26220, "decoder.pre_cls": 129600, "decoder.clf": 1081},
    "paper-sr": {"stem1": 1728, "stem2": 13824, "reduce1": 4608, "upsamplers": 288, "routers": 2256,
                 "cells": 318528, "decoder.aspps": 9972, "decoder.pre_cls": 46656, "decoder.clf": 31152},
}
AUTHORS_SUPERNET_TOTAL = {"paper-denoise": 1475357, "paper-sr": 429012}
# their retraining networks for one genotype: every cell takes the six non-none ops in
# order (edge k -> op k % 6), width path [1, 2, 2] (dn, F=20) / [1, 2] (SR x4, F=16)
AUTHORS_NET = {
    "paper-denoise": {"stem1": 704, "stem2": 36992, "reduce": 46080, "cells": 249460, "scalers": 22840,
                      "decoder.pre_conv": 20736, "decoder.proj": 3936, "decoder.conv0": 24720,
                      "decoder.conv1": 18048, "decoder.clf": 1153},
    "paper-sr": {"stem1": 1856, "stem2": 36992, "reduce": 27648, "cells": 79792, "scalers": 7648,
                 "decoder.pre_conv": 119136, "decoder.proj": 2400, "decoder.conv0": 24720,
                 "decoder.conv1": 18048, "decoder.clf": 55344},
}
AUTHORS_NET_TOTAL = {"paper-denoise": 424669, "paper-sr": 373584}
PATHS = {"paper-denoise": (1, 2, 2), "paper-sr": (1, 2)}


def _by_component(net) -> dict:
    out = {}
    for name, p in net.named_parameters():
        if name in ("alpha", "beta"):
            continue
        parts = name.split(".")
        key = ".".join(parts[:2]) if parts[0] == "decoder" else parts[0]
        out[key] = out.get(key, 0) + p.numel()
    return out


def _mixed_genotype(blocks: int, path) -> Genotype:
    ops = [p for p in AUTHORS_PRIMITIVES if p != "none"]
    cell = tuple(((ops[(2 * i) % 6], i % 2), (ops[(2 * i + 1) % 6], i + 1)) for i in range(blocks))
    return Genotype(cells=(cell,) * len(path), path=path)


@pytest.mark.parametrize("preset", ["paper-denoise", "paper-sr"])
def test_supernet_weights_are_the_authors(preset):
    net = build_supernet(get_preset(preset))
    assert isinstance(net, authors.AuthorsSuperNet)
    assert _by_component(net) == AUTHORS_SUPERNET[preset]
    assert net.num_weight_params() == AUTHORS_SUPERNET_TOTAL[preset]
    d = describe(get_preset(preset))
    assert d["supernet_params"] == AUTHORS_SUPERNET_TOTAL[preset]


@pytest.mark.parametrize("preset", ["paper-denoise", "paper-sr"])
def test_retraining_network_is_the_authors(preset):
    cfg = get_preset(preset)
    net = build_network(_mixed_genotype(cfg.space.blocks, PATHS[preset]), cfg)
    assert isinstance(net, authors.AuthorsNet)
    assert _by_component(net) == AUTHORS_NET[preset]
    assert net.num_params() == AUTHORS_NET_TOTAL[preset]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_sr_variants_build_and_scale(scale):
    cfg = get_preset("paper-sr", scale=scale).replace(space={"filters": 4, "blocks": 2})
    x = torch.rand(1, 3, 12, 12)
    assert build_supernet(cfg).eval()(x).shape == (1, 3, 12 * scale, 12 * scale)
    net = build_network(_mixed_genotype(2, (1, 2)), cfg.replace(train={"filters": 4})).eval()
    assert net(x).shape == (1, 3, 12 * scale, 12 * scale)


# ---------------------------------------------------------------------------
# components against formulas written with torch.nn.functional
# ---------------------------------------------------------------------------

def bn(x, m):
    """Eval-mode BatchNorm of ``m`` by its formula."""
    y = (x - m.running_mean[None, :, None, None]) / torch.sqrt(m.running_var[None, :, None, None] + m.eps)
    if m.affine:
        y = y * m.weight[None, :, None, None] + m.bias[None, :, None, None]
    return y


def conv(x, m):
    return F.conv2d(x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)


def lrelu(x):
    return torch.where(x > 0, x, 0.2 * x)


def conv_bn(x, seq, act=False):
    y = bn(conv(x, seq[0]), seq[1])
    return lrelu(y) if act else y


def sep(x, seq):
    return lrelu(bn(conv(lrelu(bn(conv(x, seq[0]), seq[1])), seq[3]), seq[4]))


def aspp(x, m):
    return conv_bn(torch.cat([sep(x, a) for a in m.atrous] + [conv_bn(x, m.conv1, True)], 1), m.conv_last, True)


def _randomise_bn(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
            if m.affine:
                m.weight.data.copy_(0.5 + torch.rand(m.num_features, generator=g))
                m.bias.data.copy_(0.1 * torch.randn(m.num_features, generator=g))
    return module.eval()


def mixed_edge(x, edge, w, primitives):
    """One mixed edge by hand: the weighted sum over the op formulas."""
    out = 0
    ops = iter(edge.ops)
    for k, p in enumerate(primitives):
        if p == "none":
            continue
        op = next(ops)
        if p == "skip_connect":
            y = x
        elif p.startswith("sep_conv"):
            h = x
            for i in (0, 4):  # two (act, depthwise, pointwise, BN) repeats
                h = bn(conv(conv(lrelu(h), op[i + 1]), op[i + 2]), op[i + 3])
            y = h
        else:  # conv_3x3, dense_dil_*: act, conv, BN
            y = bn(conv(lrelu(x), op[1]), op[2])
        out = out + w[k] * y
    return out


def cell_by_hand(cell, s0, s1, weights, blocks, primitives):
    states, e = [s0, s1], 0
    for i in range(blocks):
        total = 0
        for j in range(2 + i):
            total = total + mixed_edge(states[j], cell.edges[e], weights[e], primitives)
            e += 1
        states.append(total)
    return torch.cat(states[2:], 1)  # the authors' cell concatenates its blocks


@pytest.mark.parametrize("task", ["denoise", "sr"])
def test_supernet_forward_equals_the_formula(task):
    """The whole authors' supernet (eval mode) by hand: stems, routers, the beta-weighted
    merge, older input = the previous merged input (upsampled for a new level), cells,
    ASPP decoder, sigmoid output."""
    torch.set_default_dtype(torch.float64)
    try:
        preset = "paper-denoise" if task == "denoise" else "paper-sr"
        cfg = get_preset(preset, scale=2 if task == "sr" else None).replace(
            space={"layers": 3, "blocks": 2, "filters": 4})
        torch.manual_seed(0)
        net = _randomise_bn(build_supernet(cfg))
        with torch.no_grad():
            net.alpha.add_(torch.randn_like(net.alpha))
            net.beta.add_(torch.randn_like(net.beta))
        x = torch.rand(2, cfg.task.channels, 9, 11)
        with torch.no_grad():
            got = net(x)
            aw = torch.softmax(net.alpha, -1)
            bw = net.beta_weights()
            f = conv_bn(x, net.stem1[0], act=True)
            older = [conv_bn(f, net.reduce1)]
            hidden = [conv_bn(lrelu(f), net.stem2)]
            r, c, L, S = 0, 0, net.L, net.S
            for l in range(L):
                merged = {}
                for src, h in zip(reachable(l - 1, S), hidden):
                    router = net.routers[r]
                    for k, dst in ((0, src - 1), (1, src), (2, src + 1)):
                        if net.mask[l, src, k]:
                            merged[dst] = merged.get(dst, 0) + bw[l, src, k] * conv_bn(h, router.move(k))
                    r += 1
                hidden = []
                for s in reachable(l, S):
                    if s >= len(older):
                        older.append(conv_bn(older[-1], net.upsamplers[s - 1]))
                    hidden.append(cell_by_hand(net.cells[c], older[s], merged[s], aw[l], cfg.space.blocks,
                                               cfg.space.primitives))
                    c += 1
                older = [merged[s] for s in sorted(merged)]
            dec = net.decoder
            y = conv_bn(torch.cat([aspp(h, a) for a, h in zip(dec.aspps, hidden)], 1), dec.pre_cls, True)
            if task == "denoise":
                want = torch.sigmoid(x - conv(y, dec.clf))
            else:
                want = torch.sigmoid(F.interpolate(x, scale_factor=2, mode="bilinear")
                                     + F.pixel_shuffle(conv(y, dec.clf[0]), 2))
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    finally:
        torch.set_default_dtype(torch.float32)


def fixed_cell_by_hand(cell, s0, s1, genotype_cell):
    states = [s0, s1]
    for ops, block in zip(cell.ops, genotype_cell):
        total = 0
        for op, (name, j) in zip(ops, block):
            onehot = {name: 1.0}
            edge = type("Edge", (), {"ops": [op]})()
            total = total + mixed_edge(states[j], edge, [onehot.get(p, 0.0) for p in ("_", name)], ("none", name))
        states.append(total)
    return torch.cat(states[2:], 1)


@pytest.mark.parametrize("task,path", [("denoise", (1, 2, 2)), ("denoise", (0, 1, 0)), ("denoise", (0, 0, 1)),
                                       ("sr", (1, 2))])
def test_retraining_network_equals_the_formula(task, path):
    """The authors' retraining network by hand: stems, scalers from the two previous
    states, fixed cells, the decoder's endpoint rule, pre_conv (1x1 or ASPP 2/4/6),
    the two separable convs and the output (x - pred, bicubic(x) + pred)."""
    torch.set_default_dtype(torch.float64)
    try:
        preset = "paper-denoise" if task == "denoise" else "paper-sr"
        cfg = get_preset(preset, scale=2 if task == "sr" else None).replace(space={"blocks": 2},
                                                                             train={"filters": 4})
        torch.manual_seed(1)
        geno = _mixed_genotype(2, path)
        net = _randomise_bn(build_network(geno, cfg))
        x = torch.rand(1, cfg.task.channels, 10, 12)
        with torch.no_grad():
            got = net(x)
            h1 = conv_bn(x, net.stem1, act=True)
            h0 = conv_bn(lrelu(h1), net.stem2)
            zeros = [i for i, s in enumerate(path) if s == 0]
            endpoint = conv_bn(h0, net.reduce) if not zeros or zeros[-1] == len(path) - 1 else None
            for i, cell in enumerate(net.cells):
                s_new = conv_bn(lrelu(h0), net.scalers[2 * i].conv)
                s_old = conv_bn(lrelu(h1), net.scalers[2 * i + 1].conv)
                h1, h0 = h0, fixed_cell_by_hand(cell, s_old, s_new, geno.cells[i])
                if endpoint is None and i == zeros[-1]:
                    endpoint = h0
            dec = net.decoder
            last = lrelu(h0)
            pre = aspp(last, dec.pre_conv) if task == "sr" else conv_bn(last, dec.pre_conv, True)
            y = sep(sep(torch.cat([conv_bn(endpoint, dec.proj, True), pre], 1), dec.conv0), dec.conv1)
            if task == "denoise":
                want = x - conv(y, dec.clf)
            else:
                pred = F.pixel_shuffle(conv(y, dec.clf[0]), 2)
                want = F.interpolate(x, size=pred.shape[-2:], mode="bicubic") + pred
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    finally:
        torch.set_default_dtype(torch.float32)


# ---------------------------------------------------------------------------
# the recipe
# ---------------------------------------------------------------------------

def test_authors_loss_formula():
    """(pixel + w * -log10(mean SSIM, 11x11 Gaussian window zero-padded)) / 2, by hand
    with one 2-D window (not the separable blur the library uses)."""
    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(2, 1, 20, 23, generator=g), torch.rand(2, 1, 20, 23, generator=g)
    x = torch.arange(11, dtype=torch.float64) - 5
    g1 = torch.exp(-x ** 2 / (2 * 1.5 ** 2))
    win = (g1[:, None] * g1[None, :] / g1.sum() ** 2).view(1, 1, 11, 11)
    p, t = pred.double(), target.double()
    mu_p, mu_t = F.conv2d(p, win, padding=5), F.conv2d(t, win, padding=5)
    var_p = F.conv2d(p * p, win, padding=5) - mu_p ** 2
    var_t = F.conv2d(t * t, win, padding=5) - mu_t ** 2
    cov = F.conv2d(p * t, win, padding=5) - mu_p * mu_t
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    ssim = ((2 * mu_p * mu_t + c1) * (2 * cov + c2) / ((mu_p ** 2 + mu_t ** 2 + c1) * (var_p + var_t + c2))).mean()
    for pixel, w, pix in (("mse", 0.5, F.mse_loss(p, t)), ("l1", 0.6, F.l1_loss(p, t))):
        want = (pix + w * -torch.log10(ssim)) / 2
        got = RestorationLoss(pixel, w, "authors")(pred, target)
        assert float(got) == pytest.approx(float(want), rel=1e-5)
    assert get_preset("paper-denoise").task.loss_form == "authors"
    assert get_preset("paper-denoise").task.ssim_weight == 0.5 and get_preset("paper-sr").task.ssim_weight == 0.6
    assert get_preset("paper-denoise").train.ssim_weight == 0.6 == get_preset("paper-sr").train.ssim_weight


def test_poly_cosine_and_poly_schedules():
    """Their PolyCosineAnnealingLR (search, per epoch e = 1..100) and PolynormialLR
    (retraining, per iteration), at a few points; the Searcher/Trainer use them."""
    lr = lambda e: poly_cosine(e, 100, 0.025, 0.001, 10, 0.9)  # noqa: E731
    for e, want in ((1, 0.02420), (10, 0.001), (20, 0.02063), (21, 0.01994), (40, 0.01615), (61, 0.01103),
                    (80, 0.00664), (100, 0.001)):
        assert lr(e) == pytest.approx(want, abs=1e-5), e
    assert poly(1, 600000, 0.05, 0.9) == pytest.approx(0.05 * (1 - 1 / 600000) ** 0.9)
    assert poly(300000, 600000, 0.05, 0.9) == pytest.approx(0.05 * 0.5 ** 0.9)
    assert poly(600000, 600000, 0.05, 0.9) == 0.0
    from hinas_lib.search import Searcher
    s = Searcher.__new__(Searcher)
    s.cfg = get_preset("paper-denoise")
    assert [round(s.lr_at(e - 1), 5) for e in (1, 21, 61)] == [0.0242, 0.01994, 0.01103]


def test_selection_rule_is_ssim_plus_psnr_over_100_from_epoch_60():
    assert selection_score(30.0, 0.80, "ssim_psnr") == pytest.approx(1.10)
    assert selection_score(30.0, 0.80, "psnr") == 30.0
    s = get_preset("paper-denoise").search
    assert (s.select, s.select_by, s.select_from) == ("best", "ssim_psnr", 60)


def test_search_keeps_the_best_epoch_by_the_rule(monkeypatch, tmp_path):
    """A search whose validation scores are given: genotype.json is the genotype of the
    best SSIM + PSNR/100 epoch from select_from on, not the final one, not the best PSNR."""
    from hinas_lib import search as search_mod
    cfg = get_preset("paper-denoise").replace(
        space={"layers": 2, "blocks": 2, "filters": 4},
        search={"epochs": 5, "warmup_epochs": 1, "steps_per_epoch": 1, "batch_size": 2, "crop": 24,
                "val_batches": 1, "select_from": 2},
        data={"holdout_fraction": 0.0})
    # epoch:        0     1 (too early)  2      3 (best PSNR)  4
    scores = iter([(20, .50), (40, .99), (25, .80), (30, .60), (24, .75)])
    monkeypatch.setattr(search_mod, "validate", lambda *a, **k: dict(zip(("val_psnr", "val_ssim"), next(scores)),
                                                                    val_loss=0.0))
    genos = []
    real = search_mod.derive_genotype

    def derive(net):  # a distinct genotype per epoch, so the kept one can be told apart
        g = real(net)
        genos.append(Genotype(cells=g.cells, path=(0,) * (len(genos) % 2) + (1,) * (2 - len(genos) % 2)))
        return genos[-1]
    monkeypatch.setattr(search_mod, "derive_genotype", derive)
    res = search_mod.Searcher(cfg, tmp_path / "s", progress=False, write_figures=False).run()
    assert res.genotype == genos[2]  # 0.80 + 0.25 = 1.05 beats 0.60 + 0.30 = 0.90 and 0.99
    assert Genotype.load(tmp_path / "s" / "genotype.json") == genos[2]


def test_arch_init_and_masks_are_the_authors():
    net = build_supernet(get_preset("paper-denoise"))
    assert torch.equal(net.alpha, torch.ones(3, 14, 7))
    assert torch.all(net.beta[net.mask] == 1) and torch.all(net.beta[~net.mask] == -50)
    w = net.beta_weights()
    assert torch.all(w[~net.mask] == 0)  # impossible moves: exactly zero (theirs: e^-50)
    # their init rows: [~0, 1/2, 1/2] from level 0, [1/3] * 3 from the middle, [1/2, 1/2, ~0] from the top
    torch.testing.assert_close(w[1, 0], torch.tensor([0.0, 0.5, 0.5]))
    torch.testing.assert_close(w[2, 1], torch.full((3,), 1 / 3))
    torch.testing.assert_close(w[2, 2], torch.tensor([0.5, 0.5, 0.0]))


def test_sgd_recipe_groups_biases(tmp_path):
    from hinas_lib.train import make_train_optimizer
    cfg = get_preset("paper-denoise").replace(train={"filters": 4})
    net = build_network(_mixed_genotype(4, (1, 2, 2)), cfg)
    opt = make_train_optimizer(net, cfg)
    assert isinstance(opt, torch.optim.SGD)
    weights, biases = opt.param_groups
    assert (weights["weight_decay"], weights["lr_factor"]) == (4e-5, 1.0)
    assert (biases["weight_decay"], biases["lr_factor"]) == (0.0, 2.0)
    n_bias = sum(1 for n, _ in net.named_parameters() if n.endswith("bias"))
    assert len(biases["params"]) == n_bias > 0 and weights["momentum"] == 0.9
    assert math.isclose(cfg.train.grad_clip_value, 5.0) and cfg.train.schedule == "poly"
