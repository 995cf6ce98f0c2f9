"""The outer (width) search space: move mask, masked softmax, Viterbi."""
import math
import random

import pytest
import torch

from hinas_lib.config import get_preset
from hinas_lib.grid import (all_paths, count_paths, masked_log_softmax, masked_softmax, move_mask,
                            path_log_prob, reachable, dest_level, viterbi)
from hinas_lib.supernet import CompactSuperNet

LO, K, R = 0, 1, 2  # lower, keep, raise (moves out of a node)


def _moves(mask, l, s):
    return {k for k in range(3) if mask[l, s, k]}


def test_reachable_and_dest_level():
    assert reachable(-1, 3) == [0]
    assert reachable(0, 3) == [0, 1]
    assert reachable(1, 3) == [0, 1, 2]
    assert reachable(5, 3) == [0, 1, 2]
    assert reachable(4, 1) == [0]
    assert [dest_level(1, k) for k in range(3)] == [0, 1, 2]


def test_move_mask_L3_S3_by_hand():
    m = move_mask(3, 3)
    assert m.shape == (3, 3, 3) and m.dtype == torch.bool
    # into layer 0: only the stem (level 0) has moves out, to levels 0 and 1
    assert _moves(m, 0, 0) == {K, R}
    assert _moves(m, 0, 1) == set() and _moves(m, 0, 2) == set()
    # into layer 1: layer 0 has levels 0 and 1; level 2 does not exist there
    assert _moves(m, 1, 0) == {K, R}
    assert _moves(m, 1, 1) == {LO, K, R}
    assert _moves(m, 1, 2) == set()
    # into layer 2: all three levels exist in layer 1; nothing leaves the grid
    assert _moves(m, 2, 0) == {K, R}
    assert _moves(m, 2, 1) == {LO, K, R}
    assert _moves(m, 2, 2) == {LO, K}
    assert int(m.sum()) == 2 + 2 + 3 + 2 + 3 + 2


def test_move_mask_single_level():
    m = move_mask(4, 1)
    assert m.shape == (4, 1, 3)
    assert m[:, 0, K].all() and not m[:, 0, R].any() and not m[:, 0, LO].any()


def test_masked_softmax_zero_for_masked_and_rows_sum():
    torch.manual_seed(1)
    for L, S in [(3, 3), (4, 2), (2, 4), (1, 1)]:
        mask = move_mask(L, S)
        beta = 5 * torch.randn(L, S, 3)
        w = masked_softmax(beta, mask)
        assert torch.isfinite(w).all()
        assert torch.all(w[~mask] == 0)           # exactly 0, not just small
        assert torch.all(w[mask] > 0)
        rows = w.sum(-1)
        exists = mask.any(-1)
        torch.testing.assert_close(rows[exists], torch.ones(int(exists.sum())))
        assert torch.all(rows[~exists] == 0)
        for l in range(L):  # rows are the nodes of the previous layer
            assert set(torch.nonzero(exists[l]).flatten().tolist()) == set(reachable(l - 1, S))


def test_masked_softmax_gradients_are_finite_and_zero_when_masked():
    mask = move_mask(3, 3)
    beta = torch.randn(3, 3, 3, requires_grad=True)
    w = masked_softmax(beta, mask)
    (w * torch.randn(3, 3, 3)).sum().backward()
    assert torch.isfinite(beta.grad).all()
    assert torch.all(beta.grad[~mask] == 0)


@pytest.mark.parametrize("alpha_sharing,cell_sharing", [("layer", True), ("cell", False)])
def test_supernet_beta_grad_exactly_zero_on_masked_moves(alpha_sharing, cell_sharing):
    cfg = get_preset("tiny").replace(space={"layers": 3, "alpha_sharing": alpha_sharing,
                                            "cell_sharing": cell_sharing})
    net = CompactSuperNet(cfg)
    x = torch.randn(2, 1, 12, 12)
    ((net(x) - x) ** 2).mean().backward()
    g = net.beta.grad
    assert g is not None and torch.isfinite(g).all()
    assert torch.all(g[~net.mask] == 0)
    # moves out of a node with two or more choices do learn
    multi = net.mask & (net.mask.sum(-1, keepdim=True) >= 2)
    assert (g[multi] != 0).all()


def test_masked_log_softmax_consistent():
    mask = move_mask(3, 3)
    beta = torch.randn(3, 3, 3, dtype=torch.float64)
    lp = masked_log_softmax(beta, mask)
    torch.testing.assert_close(lp[mask].exp(), masked_softmax(beta, mask)[mask])
    exists = mask.any(-1, keepdim=True).expand_as(mask)
    assert torch.all(lp[~mask & exists] == -math.inf)  # impossible move of an existing node


# ---------------------------------------------------------------- paths
def _ref_paths(L, S):
    """Independent enumeration: start next to the stem (level 0), move <= 1 level per layer."""
    out = [[]]
    for _ in range(L):
        out = [p + [s] for p in out for s in range(S) if abs(s - (p[-1] if p else 0)) <= 1]
    return out


def _ref_move(prev, s):
    """Index of the move that goes from level ``prev`` to level ``s`` (s = prev - 1 + k)."""
    return s - prev + 1


def _ref_log_prob(beta, mask, path):
    lp = masked_log_softmax(beta.double(), mask)
    total, prev = 0.0, 0
    for l, s in enumerate(path):
        total += float(lp[l, prev, _ref_move(prev, s)])
        prev = s
    return total


def _path_beta(L, S, target, strength=50.0):
    beta = torch.zeros(L, S, 3)
    prev = 0
    for l, s in enumerate(target):
        beta[l, prev, _ref_move(prev, s)] = strength
        prev = s
    return beta


@pytest.mark.parametrize("L", range(1, 7))
@pytest.mark.parametrize("S", range(1, 5))
def test_count_paths_matches_enumeration(L, S):
    ref = _ref_paths(L, S)
    assert count_paths(L, S) == len(ref)
    mask = move_mask(L, S)
    for p in ref:  # each step of each valid path is an allowed move
        prev = 0
        for l, s in enumerate(p):
            assert mask[l, prev, _ref_move(prev, s)]
            prev = s


def test_count_paths_small_values():
    assert count_paths(1, 3) == 2          # [0], [1]
    assert count_paths(2, 3) == 5          # 00 01 10 11 12
    assert count_paths(3, 1) == 1
    assert count_paths(3, 2) == 8




@pytest.mark.parametrize("L,S", [(1, 3), (2, 3), (3, 3), (4, 2)])
def test_count_paths_equals_len_all_paths(L, S):
    assert count_paths(L, S) == len(all_paths(L, S))
    assert sorted(all_paths(L, S)) == sorted(_ref_paths(L, S))


def test_all_paths_single_level():
    assert all_paths(3, 1) == [[0, 0, 0]] and count_paths(3, 1) == 1


def test_path_log_prob_of_valid_level_changes():
    mask = move_mask(3, 3)
    beta = torch.randn(3, 3, 3)
    for p in ([1, 2, 2], [0, 1, 0], [1, 1, 2]):
        assert path_log_prob(beta, mask, p) == pytest.approx(_ref_log_prob(beta, mask, p))


def test_path_log_prob_of_invalid_path_is_minus_inf():
    mask = move_mask(3, 3)
    beta = torch.zeros(3, 3, 3)
    assert path_log_prob(beta, mask, [2, 2, 2]) == -math.inf   # layer 0 cannot be at level 2
    assert path_log_prob(beta, mask, [0, 2, 2]) == -math.inf   # jumps two levels
    assert path_log_prob(beta, mask, [0, 0, 0]) == pytest.approx(math.log(1 / 2) * 3)
    assert path_log_prob(beta, mask, [0, 0, 0]) == pytest.approx(_ref_log_prob(beta, mask, [0, 0, 0]))


def _random_cases(n=200):
    rng = random.Random(1234)
    for trial in range(n):
        L, S = rng.randint(1, 5), rng.randint(1, 4)
        scale = rng.choice([0.1, 1.0, 10.0, 1e3, 1e5])
        g = torch.Generator().manual_seed(trial)
        yield trial, L, S, scale, scale * torch.randn(L, S, 3, generator=g)


def _check_viterbi_against(paths_fn, score_fn):
    for trial, L, S, scale, beta in _random_cases():
        mask = move_mask(L, S)
        path, score = viterbi(beta, mask)
        scores = {tuple(p): score_fn(beta, mask, p) for p in paths_fn(L, S)}
        best = max(scores.values())
        ctx = (trial, L, S, scale)
        assert math.isfinite(score) and len(path) == L, ctx
        assert tuple(path) in scores, ctx
        assert score == pytest.approx(best, rel=1e-12, abs=1e-9), ctx
        assert scores[tuple(path)] == pytest.approx(score, rel=1e-12, abs=1e-9), ctx


def test_viterbi_equals_brute_force_on_random_betas():
    """200 random betas (L 1..5, S 1..4, magnitudes up to 1e5) against an
    independent brute force over every valid path."""
    _check_viterbi_against(_ref_paths, _ref_log_prob)


def test_viterbi_equals_library_brute_force():
    _check_viterbi_against(all_paths, path_log_prob)


def test_viterbi_is_not_greedy():
    # Greedy (most likely next move) takes keep out of the stem (p=0.62) and then
    # has two equal moves (p=1/2): log p = -1.16. Raising first (p=0.38) leads to a
    # node whose keep move is nearly certain: log p = -0.97, the better path.
    mask = move_mask(2, 3)
    beta = torch.zeros(2, 3, 3)
    beta[0, 0] = torch.tensor([0.0, 0.5, 0.0])    # stem: keep slightly preferred
    beta[1, 1] = torch.tensor([0.0, 10.0, 0.0])   # from (0,1): keep almost surely
    path, score = viterbi(beta, mask)
    assert path == [1, 1]
    assert score == pytest.approx(_ref_log_prob(beta, mask, [1, 1]))
    assert score > max(_ref_log_prob(beta, mask, [0, 0]), _ref_log_prob(beta, mask, [0, 1]))


def test_path_probabilities_sum_to_one():
    """softmax(beta) are transition probabilities: over all paths they sum to 1."""
    for L, S in [(1, 3), (3, 3), (4, 2), (5, 4)]:
        mask = move_mask(L, S)
        beta = 3 * torch.randn(L, S, 3, generator=torch.Generator().manual_seed(L * 10 + S))
        total = sum(math.exp(path_log_prob(beta, mask, p)) for p in all_paths(L, S))
        assert total == pytest.approx(1.0, abs=1e-9)


def test_viterbi_ties_prefer_lower_levels():
    mask = move_mask(1, 3)
    assert viterbi(torch.zeros(1, 3, 3), mask)[0] == [0]  # [0] and [1] both have log-prob 0
    # L=2, S=2, beta = 0: all four paths score 2*log(1/2) exactly -> all-lowest path
    assert viterbi(torch.zeros(2, 2, 3), move_mask(2, 2))[0] == [0, 0]


@pytest.mark.parametrize("target", [[0, 0, 0, 0, 0], [1, 2, 2, 1, 0], [0, 1, 1, 2, 2], [1, 0, 1, 0, 1]])
def test_viterbi_follows_a_strongly_preferred_path(target):
    L, S = len(target), 3
    mask = move_mask(L, S)
    path, score = viterbi(_path_beta(L, S, target), mask)
    assert path == target
    assert score == pytest.approx(0.0, abs=1e-6)
