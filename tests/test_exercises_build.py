"""Every build-it exercise of the course: a right answer written from the notebook's text passes,
the stub (returning None) is "not answered yet", and each usual mistake fails."""
import functools
import math
import statistics

import numpy as np
import pytest
import torch

from hinas_lib import exercises as ex
from hinas_lib.config import get_preset
from hinas_lib.grid import dest_level, move_mask, reachable
from hinas_lib.search import make_optimizers
from hinas_lib.supernet import build_supernet


def verdict(capsys, check, fn, *args):
    check(fn, *args)
    return capsys.readouterr().out.strip()


def stub(*args):
    return None


def assert_right_and_wrong(capsys, check, right, *wrongs, args=()):
    assert verdict(capsys, check, None, *args) == "not answered yet"
    assert verdict(capsys, check, stub, *args) == "not answered yet"
    assert verdict(capsys, check, right, *args) == "correct"
    for wrong in wrongs:
        out = verdict(capsys, check, wrong, *args)
        assert out.startswith("not quite: "), (wrong, out)


# --- notebook 1 -------------------------------------------------------------
def my_edge_index(blocks):
    return [(i, j) for i in range(blocks) for j in range(2 + i)]


def test_edge_index(capsys):
    assert_right_and_wrong(capsys, ex.check_edge_index, my_edge_index,
                           lambda b: [(i, j) for i in range(b) for j in range(1 + i)],      # one input short
                           lambda b: [(i, j) for j in range(b + 1) for i in range(b) if j < 2 + i])  # order


def my_alpha(k, w, n):
    a = [0.0] * n
    a[k] = math.log(w * (n - 1) / (1 - w))
    return a


def test_alpha_for_weight(capsys):
    def forgets_the_others(k, w, n):
        a = [0.0] * n
        a[k] = math.log(w / (1 - w))
        return a
    assert_right_and_wrong(capsys, ex.check_alpha_for_weight, my_alpha, forgets_the_others,
                           lambda k, w, n: [10.0 if i == k else 0.0 for i in range(n)])


def my_cells(blocks, n_ops):
    return math.prod(math.comb(2 + i, 2) * n_ops ** 2 for i in range(blocks))


def test_cell_space_size(capsys):
    assert_right_and_wrong(capsys, ex.check_cell_space_size, my_cells,
                           lambda b, o: math.prod(math.comb(2 + i, 2) * (o + 1) ** 2 for i in range(b)),  # none
                           lambda b, o: math.prod((2 + i) * (1 + i) * o ** 2 for i in range(b)))  # ordered pairs


# --- notebook 2 -------------------------------------------------------------
def my_alpha_shape(layers, levels, blocks, n_ops, sharing):
    edges = sum(2 + i for i in range(blocks))
    return {"layer": (layers, edges, n_ops), "tied": (1, edges, n_ops), "cell": (layers, levels, edges, n_ops)}[sharing]


def test_alpha_shape_matches_real_supernets():
    for mode in ("layer", "tied", "cell"):
        cfg = get_preset("tiny", "denoise").replace(space=dict(layers=3, blocks=2, filters=4, alpha_sharing=mode))
        assert tuple(build_supernet(cfg).alpha.shape) == my_alpha_shape(3, 3, 2, 7, mode)


def test_alpha_shape(capsys):
    assert_right_and_wrong(capsys, ex.check_alpha_shape, my_alpha_shape,
                           lambda L, S, B, O, m: my_alpha_shape(L, S, B, O, m)[1:] if m == "tied"
                           else my_alpha_shape(L, S, B, O, m),            # tied without its leading 1
                           lambda L, S, B, O, m: my_alpha_shape(L, S, B - 1, O, m))


def test_alpha_index(capsys):
    def mine(layer, level, sharing):
        return {"layer": layer, "tied": 0, "cell": (layer, level)}[sharing]
    assert_right_and_wrong(capsys, ex.check_alpha_index, mine,
                           lambda l, s, m: l,                   # layer-wise for every mode
                           lambda l, s, m: {"layer": s, "tied": 0, "cell": (l, s)}[m])


def my_candidates(layers, levels, blocks, n_ops, sharing):
    ways = [1] + [0] * (levels - 1)
    for _ in range(layers):
        ways = [sum(ways[t] for t in (s - 1, s, s + 1) if 0 <= t < levels) for s in range(levels)]
    cells = my_cells(blocks, n_ops)
    return (cells if sharing == "tied" else cells ** layers) * sum(ways)


def test_candidates(capsys):
    assert_right_and_wrong(capsys, ex.check_candidates, my_candidates,
                           lambda L, S, B, O, m: my_cells(B, O) ** L * 3 ** L,          # every level sequence
                           lambda L, S, B, O, m: my_cells(B, O) ** L * (3 if False else 1))


# --- notebook 3 -------------------------------------------------------------
def my_incoming(mask, layer, level):
    return [(src, k) for src in range(mask.shape[1]) for k in range(3)
            if bool(mask[layer, src, k]) and src - 1 + k == level]


def my_count_paths(layers, levels):
    ways = [1] + [0] * (levels - 1)
    for _ in range(layers):
        ways = [sum(ways[t] for t in (s - 1, s, s + 1) if 0 <= t < levels) for s in range(levels)]
    return sum(ways)


def my_beta_for_path(path, levels):
    beta = torch.zeros(len(path), levels, 3)
    prev = 0
    for l, s in enumerate(path):
        beta[l, prev, s - prev + 1] = 10.0
        prev = s
    return beta


def test_incoming(capsys):
    assert_right_and_wrong(capsys, ex.check_incoming, my_incoming,
                           lambda m, l, s: [(src, k) for src in range(m.shape[1]) for k in range(3)
                                            if src - 1 + k == s],           # ignores the mask
                           lambda m, l, s: [(src, k) for src in range(m.shape[1]) for k in range(3)
                                            if bool(m[l, src, k]) and src + 1 - k == s])  # k backwards


def test_count_paths(capsys):
    assert_right_and_wrong(capsys, ex.check_count_paths, my_count_paths,
                           lambda L, S: S ** L,
                           lambda L, S: my_count_paths(L, S) - 1)


def test_beta_for_path(capsys):
    def greedy_sized(path, levels):   # scores the destination level instead of the move
        beta = torch.zeros(len(path), levels, 3)
        for l, s in enumerate(path):
            beta[l, :, min(s, 2)] = 10.0
        return beta
    assert_right_and_wrong(capsys, ex.check_beta_for_path, my_beta_for_path, greedy_sized,
                           lambda p, S: torch.zeros(len(p), S))


# --- notebook 4 -------------------------------------------------------------
@pytest.fixture(scope="module")
def search_bits():
    cfg = get_preset("tiny", "denoise").replace(space=dict(layers=2, blocks=2, filters=4))
    from hinas_lib.tasks import get_task
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 1, 12, 12, generator=g), torch.rand(2, 1, 12, 12, generator=g)
    return cfg, get_task(cfg).loss(), x, y


def my_weight_step(net, w_opt, loss_fn, x, y, grad_clip, *, zero=True, drop_arch_grads=True, clip=True):
    """The right answer; each keyword turned off is one of the usual mistakes."""
    loss = loss_fn(net(x), y)
    if zero:
        w_opt.zero_grad()
    loss.backward()
    if drop_arch_grads:
        for p in net.arch_parameters():
            p.grad = None
    torch.nn.utils.clip_grad_norm_(net.weight_parameters(), grad_clip if clip else 1e9)
    w_opt.step()
    return loss.item()


def my_arch_step(net, a_opt, loss_fn, xv, yv):
    loss = loss_fn(net(xv), yv)
    grads = torch.autograd.grad(loss, net.arch_parameters())
    for p, g in zip(net.arch_parameters(), grads):
        p.grad = g
    a_opt.step()
    return loss.item()


def test_weight_step(capsys, search_bits):
    cfg, loss_fn, x, y = search_bits

    wrongs = [functools.partial(my_weight_step, **{mistake: False}) for mistake in ("zero", "drop_arch_grads", "clip")]
    assert_right_and_wrong(capsys, ex.check_weight_step, my_weight_step, *wrongs, args=(cfg, loss_fn, x, y))


def test_arch_step(capsys, search_bits):
    cfg, loss_fn, x, y = search_bits

    def backward_everything(net, a_opt, loss_fn, xv, yv):
        loss = loss_fn(net(xv), yv)
        a_opt.zero_grad()
        loss.backward()   # leaves gradients on the weights
        a_opt.step()
        return loss.item()

    def accumulates(net, a_opt, loss_fn, xv, yv):
        loss = loss_fn(net(xv), yv)
        grads = torch.autograd.grad(loss, net.arch_parameters())
        for p, g in zip(net.arch_parameters(), grads):
            p.grad = g if p.grad is None else p.grad + g
        a_opt.step()
        return loss.item()
    assert_right_and_wrong(capsys, ex.check_arch_step, my_arch_step, backward_everything, accumulates,
                           lambda n, o, f, a, b: 0.0, args=(cfg, loss_fn, x, y))


def my_select(log, select_from):
    rows = [r for r in log if r["epoch"] >= select_from]
    best = max(r["val_ssim"] + r["val_psnr"] / 100 for r in rows)
    return next(r["epoch"] for r in rows if r["val_ssim"] + r["val_psnr"] / 100 == best)


def test_select_epoch(capsys):
    assert_right_and_wrong(capsys, ex.check_select_epoch, my_select,
                           lambda log, s: max(log[s:], key=lambda r: r["val_psnr"])["epoch"],   # PSNR alone
                           lambda log, s: max(log, key=lambda r: r["val_ssim"] + r["val_psnr"] / 100)["epoch"])


def test_selected_epoch_is_the_searchers_rule():
    from hinas_lib.history import selected_epoch
    log = [{"epoch": 0, "val_psnr": 30.0, "val_ssim": 0.9}, {"epoch": 1, "val_psnr": 20.0, "val_ssim": 0.5},
           {"epoch": 2, "val_psnr": 25.0, "val_ssim": 0.7}, {"epoch": 3, "val_psnr": 25.0, "val_ssim": 0.7}]
    assert selected_epoch(log, 0) == 0 and selected_epoch(log, 1) == 2 and selected_epoch(log, 9) is None
    assert selected_epoch(log, 1, "psnr") == 2


# --- notebook 5 -------------------------------------------------------------
def my_path_prob(beta, mask, path):
    p, prev = 1.0, 0
    for l, s in enumerate(path):
        logits = beta[l, prev].masked_fill(~mask[l, prev], float("-inf"))
        p *= float(torch.softmax(logits, 0)[s - prev + 1])
        prev = s
    return p


def test_path_prob(capsys):
    def unmasked(beta, mask, path):
        p, prev = 1.0, 0
        for l, s in enumerate(path):
            p *= float(torch.softmax(beta[l, prev], 0)[s - prev + 1])
            prev = s
        return p

    def wrong_axis(beta, mask, path):
        p, prev = 1.0, 0
        for l, s in enumerate(path):
            w = torch.softmax(beta[l].masked_fill(~mask[l], float("-inf")), 0).nan_to_num(0.0)
            p *= float(w[prev, s - prev + 1])
            prev = s
        return p
    assert_right_and_wrong(capsys, ex.check_path_prob, my_path_prob, unmasked, wrong_axis)


def my_summary(results):
    rand = [g["set12_psnr"] for g in results["genotypes"] if g["kind"] == "random"]
    found = [g for g in results["genotypes"] if g["kind"] == "searched"]
    ranks = {g["name"]: 1 + sum(v > g["set12_psnr"] for v in rand) for g in found}
    gap = (statistics.mean(g["set12_psnr"] for g in found) - statistics.mean(rand)) / statistics.stdev(rand)
    return ranks, gap


def test_search_vs_random(capsys):
    study = {"genotypes": [{"name": n, "kind": "searched" if n.startswith("s") else "random", "set12_psnr": v}
                           for n, v in {"s1": 25.37, "s2": 25.46, "r0": 25.41, "r1": 25.36, "r2": 25.30}.items()]}

    def from_zero(results):
        ranks, gap = my_summary(results)
        return {k: v - 1 for k, v in ranks.items()}, gap

    def population_sd(results):
        ranks, gap = my_summary(results)
        rand = [g["set12_psnr"] for g in results["genotypes"] if g["kind"] == "random"]
        return ranks, gap * statistics.stdev(rand) / statistics.pstdev(rand)
    assert_right_and_wrong(capsys, ex.check_search_vs_random, my_summary, from_zero, population_sd, args=(study,))


# --- notebook 6 -------------------------------------------------------------
def my_pixel_shuffle(x, r):
    n, c, h, w = x.shape
    return x.reshape(n, c // (r * r), r, r, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c // (r * r), h * r, w * r)


def test_pixel_shuffle(capsys):
    def swapped(x, r):
        n, c, h, w = x.shape
        return x.reshape(n, c // (r * r), r, r, h, w).permute(0, 1, 4, 3, 5, 2).reshape(n, c // (r * r), h * r, w * r)
    assert_right_and_wrong(capsys, ex.check_pixel_shuffle, my_pixel_shuffle, swapped,
                           lambda x, r: torch.pixel_shuffle(x, r))
    # torch's own is back afterwards
    assert torch.pixel_shuffle(torch.zeros(1, 4, 1, 1), 2).shape == (1, 1, 2, 2)
    assert "switched off" in verdict(capsys, ex.check_pixel_shuffle, lambda x, r: torch.pixel_shuffle(x, r))


def my_psnr_y(sr, hr, scale):
    def y(img):
        return (65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2] + 16.0) / 255.0
    a, b = y(sr)[scale:-scale, scale:-scale], y(hr)[scale:-scale, scale:-scale]
    return 10 * math.log10(1.0 / float(np.mean((a - b) ** 2)))


def test_psnr_y(capsys):
    assert_right_and_wrong(capsys, ex.check_psnr_y, my_psnr_y,
                           lambda sr, hr, s: 10 * math.log10(1 / float(np.mean((sr - hr)[s:-s, s:-s] ** 2))),  # RGB
                           lambda sr, hr, s: my_psnr_y(np.pad(sr, ((s, s), (s, s), (0, 0))),
                                                       np.pad(hr, ((s, s), (s, s), (0, 0))), s))   # no shave


# --- notebook 7 -------------------------------------------------------------
def my_cells_in_supernet(layers, levels, cell_sharing):
    mask = move_mask(layers, levels)
    if cell_sharing:
        return sum(len(reachable(l, levels)) for l in range(layers))
    return int(mask.sum())


def test_cells_in_supernet(capsys):
    assert_right_and_wrong(capsys, ex.check_cells_in_supernet, my_cells_in_supernet,
                           lambda L, S, c: L * S if c else int(move_mask(L, S).sum()),     # unreachable nodes
                           lambda L, S, c: sum(len(reachable(l, S)) for l in range(L)))  # sharing always


def my_arch_params(layers, levels, blocks, n_ops, sharing):
    return math.prod(my_alpha_shape(layers, levels, blocks, n_ops, sharing)) + layers * levels * 3


def test_arch_params_match_describe(capsys):
    from hinas_lib.describe import describe
    for mode in ("layer", "tied", "cell"):
        cfg = get_preset("tiny", "denoise").replace(space=dict(layers=3, blocks=3, alpha_sharing=mode))
        assert describe(cfg)["arch_params"] == my_arch_params(3, 3, 3, 7, mode)
    assert_right_and_wrong(capsys, ex.check_arch_params, my_arch_params,
                           lambda L, S, B, O, m: math.prod(my_alpha_shape(L, S, B, O, m)),      # no beta
                           lambda L, S, B, O, m: my_arch_params(L, S, B, O, "layer"))


def test_auto_choice(capsys):
    def mine(sigma, trained):
        fixed = {n: s for n, s in trained.items() if s}
        gaps = {n: min(abs(v - sigma) for v in s) for n, s in fixed.items()}
        return min(gaps, key=gaps.get)

    def last_on_tie(sigma, trained):
        fixed = {n: s for n, s in trained.items() if s}
        best = min(min(abs(v - sigma) for v in s) for s in fixed.values())
        return [n for n, s in fixed.items() if min(abs(v - sigma) for v in s) == best][-1]
    assert_right_and_wrong(capsys, ex.check_auto_choice, mine, last_on_tie,
                           lambda sigma, trained: next(iter(trained)))


def test_a_raising_answer_is_a_wrong_answer(capsys):
    assert "raised ZeroDivisionError" in verdict(capsys, ex.check_count_paths, lambda L, S: 1 / 0)


@pytest.mark.parametrize("check", [ex.check_top2, ex.check_viterbi, ex.check_supernet_forward])
def test_a_stub_is_unanswered_for_the_older_checks_too(capsys, check):
    assert verdict(capsys, check, lambda *a: None) == "not answered yet"


def test_a_wrong_tensor_of_the_right_shape_says_how_many_values_differ(capsys):
    out = verdict(capsys, ex.check_pixel_shuffle, lambda x, r: torch.zeros_like(my_pixel_shuffle(x, r)))
    assert "right shape (1, 1, 6, 10) but" in out and "of its 60 values differ" in out
    out = verdict(capsys, ex.check_psnr_y, lambda sr, hr, s: np.float64(12.5))
    assert "yours 12.5, expected" in out and "np.float64" not in out


def test_a_wrong_alpha_index_is_named_without_printing_the_network(capsys):
    out = verdict(capsys, ex.check_alpha_index, lambda l, s, m: l)
    assert "net.alpha_for(1, 0) returns" in out and "Conv2d" not in out and out.count("\n") == 0
