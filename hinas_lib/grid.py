"""The outer search space: a grid of layers x width levels.

Node (l, s) is layer l at width level s; the stem sits at level 0 before
layer 0 (call it layer -1). Out of every node go up to three moves into the
next layer, indexed k = 0, 1, 2:

* k = 0 *lower*: to level s-1 (fewer channels),
* k = 1 *keep*:  to level s,
* k = 2 *raise*: to level s+1 (more channels).

``beta[l, s, k]`` weighs the move from node (l-1, s) into layer l. As in
Auto-DeepLab, the softmax runs over the moves *leaving* a node, so softmax(beta)
are transition probabilities: every path from the stem has a probability (the
product of its moves' weights), they sum to 1 over all paths, and Viterbi finds
the most probable one. A move exists only if both its ends exist; the levels
reachable at layer l are 0 .. min(l+1, S-1). Impossible moves are masked to
-inf before the softmax, so they get exactly zero weight.
"""
from __future__ import annotations

import itertools
from typing import Iterator, List, Optional, Sequence, Tuple

import torch

# The one definition of the move order: beta[..., k] is the weight of MOVES[k].
MOVES = ("lower", "keep", "raise")

# Width levels as multiples of F (the paper's 1x, 1.5x, 2x).
DEFAULT_WIDTH_FACTORS = (1.0, 1.5, 2.0)


def channel_widths(filters: int, factors: Sequence[float], *, floor: bool = False) -> List[int]:
    """Channels of each width level: ``round(F * factor)``, at least 1
    (``floor``: ``int(F * factor)``, as the authors' code computes them)."""
    return [max(1, int(filters * w) if floor else int(round(filters * w))) for w in factors]


def reachable(layer: int, levels: int) -> List[int]:
    """Width levels that exist at ``layer`` (layer -1 is the stem)."""
    if layer < 0:
        return [0]
    return list(range(min(layer + 1, levels - 1) + 1))


def dest_level(s: int, k: int) -> int:
    """Level reached from level ``s`` by move ``k``."""
    return s - 1 + k


def move_index(src: int, dst: int) -> int:
    """The move k that goes from level ``src`` to level ``dst`` (inverse of dest_level)."""
    return dst - src + 1


def move_mask(layers: int, levels: int) -> torch.Tensor:
    """Bool tensor (L, S, 3): True where move k out of node (l-1, s) is possible."""
    mask = torch.zeros(layers, levels, 3, dtype=torch.bool)
    for l in range(layers):
        here = set(reachable(l, levels))
        for s in reachable(l - 1, levels):
            for k in range(3):
                if dest_level(s, k) in here:
                    mask[l, s, k] = True
    return mask


def possible_moves(mask: torch.Tensor) -> Iterator[Tuple[int, int, int, int]]:
    """Yield ``(layer, source level, k, destination level)`` for every possible move."""
    L, S, _ = mask.shape
    for l in range(L):
        for s in range(S):
            for k in range(3):
                if mask[l, s, k]:
                    yield l, s, k, dest_level(s, k)


def incoming(mask: torch.Tensor, layer: int, level: int) -> List[Tuple[int, int]]:
    """``(source level, k)`` of every possible move into node (layer, level)."""
    out = []
    for k in range(3):
        src = level + 1 - k
        if 0 <= src < mask.shape[1] and mask[layer, src, k]:
            out.append((src, k))
    return out


def masked_softmax(beta: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim with impossible moves at exactly 0 weight.
    Rows with no possible move (nodes that do not exist) are all zeros."""
    logits = beta.masked_fill(~mask, float("-inf"))
    w = torch.softmax(logits, dim=-1)
    return torch.nan_to_num(w, nan=0.0)


def masked_log_softmax(beta: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(beta.masked_fill(~mask, float("-inf")), dim=-1)


def _valid_moves(mask: torch.Tensor, path) -> List[Tuple[int, int]]:
    """(source level, k) of each step of ``path``, or [] if the path is impossible."""
    if len(path) != mask.shape[0] or path_error(path, mask.shape[1]) is not None:
        return []
    prev, steps = 0, []
    for s in path:
        steps.append((prev, move_index(prev, s)))
        prev = s
    return steps


def path_error(path: Sequence[int], levels: int) -> Optional[str]:
    """Why ``path`` is not a legal width path through ``levels`` levels (None if it is).

    The one statement of the rule: the stem is at level 0 and every layer moves
    at most one level from the previous one, staying within 0 .. levels-1.
    """
    prev = 0
    for l, s in enumerate(path):
        if not 0 <= s < levels:
            return f"path[{l}] = {s} is not a width level (0..{levels - 1})"
        if abs(s - prev) > 1:
            return f"path[{l}] = {s} jumps more than one level from {prev}"
        prev = s
    return None


def path_log_prob(beta: torch.Tensor, mask: torch.Tensor, path) -> float:
    """log P(path) = sum over layers of log softmax(beta)[l, previous level, move taken]."""
    steps = _valid_moves(mask, path)
    if not steps:
        return float("-inf")
    logp = masked_log_softmax(beta.detach().double(), mask)
    return float(sum(logp[l, src, k] for l, (src, k) in enumerate(steps)))


def viterbi(beta: torch.Tensor, mask: torch.Tensor) -> Tuple[List[int], float]:
    """Most probable width path by dynamic programming (not a greedy or DFS walk).

    score[l][s] = best log-probability of any path from the stem to node (l, s);
    each node looks at its (up to three) predecessors only: O(L * S * 3).
    Ties are broken towards the lower level (fewer channels) for determinism.
    """
    L, S, _ = beta.shape
    logp = masked_log_softmax(beta.detach().double().cpu(), mask.cpu())
    neg = float("-inf")
    score = [[neg] * S for _ in range(L)]
    back = [[-1] * S for _ in range(L)]
    for l, src, k, dst in possible_moves(mask):
        base = 0.0 if l == 0 else score[l - 1][src]
        cand = base + float(logp[l, src, k])
        if cand > score[l][dst] or (cand == score[l][dst] and back[l][dst] > src):
            score[l][dst], back[l][dst] = cand, src
    end = max(range(S), key=lambda s: (score[L - 1][s], -s))
    best = score[L - 1][end]
    path = [end]
    for l in range(L - 1, 0, -1):
        path.append(back[l][path[-1]])
    return path[::-1], best


def all_paths(layers: int, levels: int) -> List[List[int]]:
    """Every valid path, by brute force (for tests and for counting)."""
    mask = move_mask(layers, levels)
    return [list(c) for c in itertools.product(range(levels), repeat=layers) if _valid_moves(mask, c)]


def count_paths(layers: int, levels: int) -> int:
    """Number of valid width paths, by dynamic programming."""
    mask = move_mask(layers, levels)
    ways = [1 if s == 0 else 0 for s in range(levels)]  # the stem
    for l in range(layers):
        nxt = [0] * levels
        for l2, src, k, dst in possible_moves(mask[l:l + 1]):
            nxt[dst] += ways[src]
        ways = nxt
    return sum(ways)
