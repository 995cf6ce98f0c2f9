"""The outer search space: a grid of layers x width levels.

Node (l, s) is layer l at width level s. The stem sits at level 0 before layer
0. Into each node come up to three moves, indexed k = 0, 1, 2:

* k = 0 *raise*: from level s-1 of the previous layer (a wider node next),
* k = 1 *keep*:  from level s,
* k = 2 *lower*: from level s+1.

A move is possible only if its source node exists; the levels reachable at
layer l are 0 .. min(l+1, S-1) (one level per layer, starting from the stem).
``beta`` has shape (L, S, 3); impossible moves are masked to -inf before the
softmax so they get exactly zero weight.
"""
from __future__ import annotations

import itertools
from typing import List, Tuple

import torch

MOVES = ("raise", "keep", "lower")


def reachable(layer: int, levels: int) -> List[int]:
    """Width levels that exist at ``layer`` (layer -1 is the stem)."""
    if layer < 0:
        return [0]
    return list(range(min(layer + 1, levels - 1) + 1))


def source_level(s: int, k: int) -> int:
    return s - 1 + k


def move_mask(layers: int, levels: int) -> torch.Tensor:
    """Bool tensor (L, S, 3): True where move k into node (l, s) is possible."""
    mask = torch.zeros(layers, levels, 3, dtype=torch.bool)
    for l in range(layers):
        prev = set(reachable(l - 1, levels))
        for s in reachable(l, levels):
            for k in range(3):
                if source_level(s, k) in prev:
                    mask[l, s, k] = True
    return mask


def masked_softmax(beta: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim with impossible moves at exactly 0 weight.
    Rows with no possible move (nodes that do not exist) are all zeros."""
    logits = beta.masked_fill(~mask, float("-inf"))
    w = torch.softmax(logits, dim=-1)
    return torch.nan_to_num(w, nan=0.0)


def masked_log_softmax(beta: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(beta.masked_fill(~mask, float("-inf")), dim=-1)


def path_log_prob(beta: torch.Tensor, mask: torch.Tensor, path) -> float:
    """Sum over layers of log softmax(beta)[l, path[l], move taken]."""
    logp = masked_log_softmax(beta.detach().double(), mask)
    prev, total = 0, 0.0
    for l, s in enumerate(path):
        k = prev - s + 1  # inverse of source_level: prev = s - 1 + k
        if not (0 <= k < 3) or not mask[l, s, k]:
            return float("-inf")
        total += float(logp[l, s, k])
        prev = s
    return total


def viterbi(beta: torch.Tensor, mask: torch.Tensor) -> Tuple[List[int], float]:
    """Most probable width path by dynamic programming (not a greedy or DFS walk).

    score[l][s] = best log-probability of any valid path ending at node (l, s);
    each layer looks at the three possible predecessors only, O(L * S * 3).
    Ties are broken towards the lower level (fewer channels) for determinism.
    """
    L, S, _ = beta.shape
    logp = masked_log_softmax(beta.detach().double().cpu(), mask.cpu())
    neg = float("-inf")
    score = [[neg] * S for _ in range(L)]
    back = [[-1] * S for _ in range(L)]
    for l in range(L):
        for s in range(S):
            for k in range(3):
                if not mask[l, s, k]:
                    continue
                src = source_level(s, k)
                base = 0.0 if l == 0 else score[l - 1][src]
                cand = base + float(logp[l, s, k])
                if cand > score[l][s] or (cand == score[l][s] and back[l][s] > src):
                    score[l][s], back[l][s] = cand, src
    end = max(range(S), key=lambda s: (score[L - 1][s], -s))
    best = score[L - 1][end]
    path = [end]
    for l in range(L - 1, 0, -1):
        path.append(back[l][path[-1]])
    return path[::-1], best


def all_paths(layers: int, levels: int) -> List[List[int]]:
    """Every valid path, by brute force (for tests and for counting)."""
    mask = move_mask(layers, levels)
    out = []
    for cand in itertools.product(range(levels), repeat=layers):
        prev, ok = 0, True
        for l, s in enumerate(cand):
            k = prev - s + 1  # inverse of source_level: prev = s - 1 + k
            if not (0 <= k < 3 and mask[l, s, k]):
                ok = False
                break
            prev = s
        if ok:
            out.append(list(cand))
    return out


def count_paths(layers: int, levels: int) -> int:
    """Number of valid width paths, by dynamic programming."""
    mask = move_mask(layers, levels)
    ways = [1 if s == 0 else 0 for s in range(levels)]  # the stem
    for l in range(layers):
        nxt = [0] * levels
        for s in range(levels):
            for k in range(3):
                if mask[l, s, k]:
                    nxt[s] += ways[source_level(s, k)]
        ways = nxt
    return sum(ways)
