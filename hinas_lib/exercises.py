"""The course's exercises, checked: answers to its questions, and pieces of HiNAS the learner builds.

:func:`check` compares an answer (a number, a shape, a list, a tensor) with the right value.
Each ``check_*`` runs the learner's function on cases chosen to catch the usual mistakes
(a greedy width path, ``none`` counted as an edge's strength, beta ignored or normalised over
the wrong moves, a cell run once per path instead of once per node) and compares it with the
library's own implementation. Both print ``not answered yet``, ``correct`` or ``not quite:
<what went wrong>`` and never raise: a wrong answer must not stop the notebook.
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence

import torch

from .config import get_preset
from .derive import derive_cell
from .genotype import edges_per_cell
from .grid import move_mask, path_error, path_log_prob, viterbi
from .supernet import CompactSuperNet

NOT_ANSWERED = "not answered yet"


def check(answer, expected, hint: str, *, tol: Optional[float] = None) -> None:
    """Check an exercise's answer and print the verdict; never raises (a wrong
    answer must not stop the notebook, nor nbval). Returns nothing, so that a
    check as a cell's last line does not print twice.

    Args:
        answer: the learner's value (None: not answered yet).
        expected: the right value (numbers, tuples/lists, strings, tensors), or
            a predicate ``expected(answer) -> bool`` when many answers are right.
        hint: shown when the answer is wrong.
        tol: absolute tolerance for numbers.

    Prints:
        ``not answered yet``, ``correct`` or ``not quite: <hint>``.
    """
    if answer is None:
        verdict = NOT_ANSWERED
    else:
        try:
            ok = _same(answer, expected, tol)
        except Exception as e:  # noqa: BLE001 (any mistake in the answer is a wrong answer)
            ok, hint = False, f"{hint} (comparing raised {type(e).__name__}: {e})"
        verdict = "correct" if ok else f"not quite: {hint}"
    print(verdict)


def _same(a, b, tol) -> bool:
    if callable(b) and not isinstance(b, torch.Tensor):
        return bool(b(a))
    if isinstance(b, torch.Tensor) or isinstance(a, torch.Tensor):
        a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
        return a.shape == b.shape and bool(torch.allclose(a, b, atol=tol or 1e-6, rtol=0))
    if isinstance(b, (list, tuple)):
        return isinstance(a, (list, tuple)) and len(a) == len(b) and all(_same(x, y, tol) for x, y in zip(a, b))
    if isinstance(b, float) or (tol is not None and isinstance(b, (int, float))):
        return isinstance(a, (int, float)) and abs(float(a) - float(b)) <= (tol or 1e-9)
    return a == b


def _verdict(fn, run: Callable[[Callable], Optional[str]]) -> None:
    if fn is None:
        print(NOT_ANSWERED)
        return
    try:
        problem = run(fn)
    except Exception as e:  # noqa: BLE001 (any mistake in the answer is a wrong answer)
        problem = f"your function raised {type(e).__name__}: {e}"
    print("correct" if problem is None else f"not quite: {problem}")


# ---------------------------------------------------------------------------
def greedy_trap():
    """beta (2 layers, 3 levels) where taking the likeliest move at each layer (keep, 0.6, then
    0.5) loses to the best path (raise, 0.4, then keep, 0.98): 0.30 < 0.39."""
    mask = move_mask(2, 3)
    p = torch.full((2, 3, 3), 1e-9)
    p[0, 0, 1], p[0, 0, 2] = 0.6, 0.4            # out of the stem: keep or raise
    p[1, 0, 1], p[1, 0, 2] = 0.5, 0.5            # out of level 0
    p[1, 1, 0], p[1, 1, 1], p[1, 1, 2] = 0.01, 0.98, 0.01  # out of level 1
    return p.log().masked_fill(~mask, -50.0), mask


def _viterbi_cases() -> List:
    gen = torch.Generator().manual_seed(0)
    cases = [greedy_trap()]
    for layers, levels in ((1, 3), (3, 3), (5, 3), (4, 4), (6, 2)):
        for _ in range(3):
            cases.append((3 * torch.randn(layers, levels, 3, generator=gen), move_mask(layers, levels)))
    return cases


def check_viterbi(fn: Optional[Callable]) -> None:
    """``fn(beta, mask) -> [level per layer]``: the most probable width path (see
    :func:`hinas_lib.grid.viterbi`; any path of the best probability is right)."""
    def run(f):
        for i, (beta, mask) in enumerate(_viterbi_cases()):
            path = [int(s) for s in f(beta.clone(), mask.clone())]
            L, S = mask.shape[:2]
            if len(path) != L:
                return f"case {i} ({L} layers): your path has {len(path)} levels, need one per layer"
            err = path_error(path, S)
            if err:
                return f"case {i}: {err}"
            best_path, best = viterbi(beta, mask)
            got = path_log_prob(beta, mask, path)
            if got < best - 1e-9:
                trap = " (the greedy trap: the likeliest first move is not on the best path)" if i == 0 else ""
                return (f"case {i}{trap}: your path {path} has log-probability {got:.4f}; "
                        f"{best_path} has {best:.4f}")
        return None
    _verdict(fn, run)


# ---------------------------------------------------------------------------
def _top2_cases(primitives: Sequence[str], blocks: int) -> List[torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    E, O = edges_per_cell(blocks), len(primitives)
    cases = [torch.randn(E, O, generator=gen) for _ in range(6)]
    trap = torch.randn(E, O, generator=gen) * 0.1
    trap[:, primitives.index("none")] = 5.0  # none strongest everywhere: must not decide anything
    trap[0, primitives.index("none")] = 9.0
    cases.append(trap)
    return cases


def _canon(cell) -> tuple:
    return tuple(tuple(sorted((str(op), int(j)) for op, j in block)) for block in cell)


def check_top2(fn: Optional[Callable], primitives: Optional[Sequence[str]] = None, blocks: int = 4) -> None:
    """``fn(alpha, primitives, blocks) -> cell``: the derivation rule for one cell (see
    :func:`hinas_lib.derive.derive_cell`). ``alpha`` is (edges, ops) logits; the cell is a
    tuple per block of its two ``(op, input)`` edges (their order does not matter)."""
    prims = list(primitives or get_preset("tiny").space.primitives)

    def run(f):
        for i, alpha in enumerate(_top2_cases(prims, blocks)):
            got, want = _canon(f(alpha.clone(), list(prims), blocks)), _canon(derive_cell(alpha, prims, blocks))
            if got != want:
                bad = next(b for b, (x, y) in enumerate(zip(got, want)) if x != y) if len(got) == len(want) else None
                where = f"block {bad}: yours {got[bad]}, expected {want[bad]}" if bad is not None else \
                    f"{len(got)} blocks, need {len(want)}"
                trap = " (here `none` is the strongest op on every edge: it must not count)" if i == 6 else ""
                return f"case {i}{trap}, {where}"
        return None
    _verdict(fn, run)


# ---------------------------------------------------------------------------
def mini_supernet(seed: int = 0) -> CompactSuperNet:
    """A 2-layer compact supernet (2 blocks, F = 4, widths 1/1.5/2, cell sharing) with alpha and
    beta far from uniform, in float64: the exercise's network."""
    cfg = get_preset("tiny", "denoise").replace(space=dict(layers=2, blocks=2, filters=4))
    torch.manual_seed(seed)
    net = CompactSuperNet(cfg).double().eval()
    with torch.no_grad():
        net.alpha.normal_(0, 2)
        net.beta.normal_(0, 2)
    return net


class _Hidden:
    """Stands in for the supernet's own forward while the learner's runs."""

    def __init__(self, name):
        self.name = name

    def __call__(self, *a, **k):
        raise RuntimeError(f"use the supernet's modules (stem, routers, cells, proj, head), not net.{self.name}")


def check_supernet_forward(fn: Optional[Callable]) -> None:
    """``fn(net, x) -> output``: the forward pass of :func:`mini_supernet` written with its
    modules: per node, the beta-weighted sum of its width-adapted inputs (beta: softmax over the
    moves *leaving* a node, :meth:`~hinas_lib.supernet_base.SuperNetBase.beta_weights`), one cell
    run on it (cell sharing), the last layer projected and summed, the long skip, the head."""
    def run(f):
        for seed in (0, 1):
            net = mini_supernet(seed)
            x = torch.rand(2, 1, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
            with torch.no_grad():
                want = net(x)
                net.features, net.forward = _Hidden("features"), _Hidden("forward")
                try:
                    got = f(net, x)
                finally:
                    del net.features, net.forward
            if not isinstance(got, torch.Tensor) or got.shape != want.shape:
                return f"network {seed}: expected a tensor of shape {tuple(want.shape)}, got " + \
                    (str(tuple(got.shape)) if isinstance(got, torch.Tensor) else type(got).__name__)
            err = float((got - want).abs().max())
            if not math.isfinite(err) or err > 1e-9:
                return (f"network {seed}: largest difference from the supernet's output {err:.3g} "
                        "(check which beta weights each input gets and that each node runs its cell once)")
        return None
    _verdict(fn, run)


__all__ = ["check", "NOT_ANSWERED", "check_viterbi", "check_top2", "check_supernet_forward", "mini_supernet",
           "greedy_trap"]


# ---------------------------------------------------------------------------
# Notebook 5: searched cells against random cells (benchmarks/results/search_vs_random.json)
def search_vs_random_answers(results: dict) -> dict:
    """From a search-vs-random result (``genotypes`` rows with ``name``, ``kind``, ``set12_psnr``):
    ``ranks``, each searched genotype's rank among the random ones on Set12 (1 + how many random
    genotypes score higher), and ``gap_in_std``, the searched mean minus the random mean in random
    standard deviations (sample, n - 1; None with fewer than two random genotypes)."""
    import statistics  # noqa: PLC0415 (only this exercise needs it)
    rand = [g["set12_psnr"] for g in results["genotypes"] if g["kind"] == "random"]
    found = [g for g in results["genotypes"] if g["kind"] == "searched"]
    ranks = {g["name"]: 1 + sum(v > g["set12_psnr"] for v in rand) for g in found}
    spread = statistics.stdev(rand) if len(rand) > 1 else 0.0
    mean_found = statistics.mean(g["set12_psnr"] for g in found) if found else None
    gap = None if not spread or mean_found is None else (mean_found - statistics.mean(rand)) / spread
    return {"ranks": ranks, "gap_in_std": gap}


def check_search_vs_random(ranks: Optional[dict], gap_in_std: Optional[float], results: dict) -> None:
    """Notebook 5's exercise on the search-vs-random study: ``ranks`` ({searched name: rank among
    the random genotypes, 1 = above all of them}) and ``gap_in_std`` (the searched mean above the
    random mean, in random standard deviations, to two decimals), each checked against
    :func:`search_vs_random_answers` of the same ``results``; one verdict line each."""
    want = search_vs_random_answers(results)
    check(ranks, lambda a: dict(a) == want["ranks"],
          "rank = 1 + the number of random genotypes with a higher Set12 PSNR, one entry per searched genotype")
    check(gap_in_std, want["gap_in_std"],
          "(mean of the searched Set12 PSNRs - mean of the random ones) / statistics.stdev(random ones), "
          "the sample standard deviation (n - 1)", tol=0.011)


__all__ += ["search_vs_random_answers", "check_search_vs_random"]
