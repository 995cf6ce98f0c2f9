"""The course's exercises, checked: answers to its questions, and pieces of HiNAS the learner builds.

:func:`check` compares an answer (a number, a shape, a list, a tensor) with the right value.
Each ``check_*`` runs the learner's function on cases chosen to catch the usual mistakes
(a greedy width path, ``none`` counted as an edge's strength, beta ignored or normalised over
the wrong moves, a cell run once per path instead of once per node) and compares it with the
library's own implementation. Both print ``not answered yet``, ``correct`` or ``not quite:
<what went wrong>`` and never raise: a wrong answer must not stop the notebook.
"""
from __future__ import annotations

import copy
import math
import statistics
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .config import get_preset
from .derive import derive_cell
from .describe import candidate_architectures, cell_space_size
from .genotype import edge_index, edges_per_cell
from .grid import all_paths, count_paths, incoming, move_mask, path_error, path_log_prob, reachable, viterbi
from .history import selected_epoch
from .metrics import psnr
from .search import arch_step, make_optimizers, weight_step
from .supernet import CompactSuperNet, build_supernet
from .supernet_base import alpha_shape
from .zoo import nearest_model

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
            got = f(beta.clone(), mask.clone())
            if got is None and i == 0:
                raise _NotAnswered
            path = [int(s) for s in got]
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
    _verdict_or_unanswered(fn, run)


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
            mine = f(alpha.clone(), list(prims), blocks)
            if mine is None and i == 0:
                raise _NotAnswered
            got, want = _canon(mine), _canon(derive_cell(alpha, prims, blocks))
            if got != want:
                bad = next(b for b, (x, y) in enumerate(zip(got, want)) if x != y) if len(got) == len(want) else None
                where = f"block {bad}: yours {got[bad]}, expected {want[bad]}" if bad is not None else \
                    f"{len(got)} blocks, need {len(want)}"
                trap = " (here `none` is the strongest op on every edge: it must not count)" if i == 6 else ""
                return f"case {i}{trap}, {where}"
        return None
    _verdict_or_unanswered(fn, run)


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
    """Stands in for what the learner's function is to build (the supernet's own forward,
    torch's pixel shuffle) while it runs."""

    def __init__(self, name, message=None):
        self.name = name
        self.message = message or f"use the supernet's modules (stem, routers, cells, proj, head), not net.{name}"

    def __call__(self, *a, **k):
        raise RuntimeError(self.message)


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
            if got is None and seed == 0:
                raise _NotAnswered
            if not isinstance(got, torch.Tensor) or got.shape != want.shape:
                return f"network {seed}: expected a tensor of shape {tuple(want.shape)}, got " + \
                    (str(tuple(got.shape)) if isinstance(got, torch.Tensor) else type(got).__name__)
            err = float((got - want).abs().max())
            if not math.isfinite(err) or err > 1e-9:
                return (f"network {seed}: largest difference from the supernet's output {err:.3g} "
                        "(check which beta weights each input gets and that each node runs its cell once)")
        return None
    _verdict_or_unanswered(fn, run)


__all__ = ["check", "NOT_ANSWERED", "check_viterbi", "check_top2", "check_supernet_forward", "mini_supernet",
           "greedy_trap"]


# ---------------------------------------------------------------------------
# Notebook 5: searched cells against random cells (benchmarks/results/search_vs_random.json)
def search_vs_random_answers(results: dict) -> dict:
    """From a search-vs-random result (``genotypes`` rows with ``name``, ``kind``, ``set12_psnr``):
    ``ranks``, each searched genotype's rank among the random ones on Set12 (1 + how many random
    genotypes score higher), and ``gap_in_std``, the searched mean minus the random mean in random
    standard deviations (sample, n - 1; None with fewer than two random genotypes)."""
    rand = [g["set12_psnr"] for g in results["genotypes"] if g["kind"] == "random"]
    found = [g for g in results["genotypes"] if g["kind"] == "searched"]
    ranks = {g["name"]: 1 + sum(v > g["set12_psnr"] for v in rand) for g in found}
    spread = statistics.stdev(rand) if len(rand) > 1 else 0.0
    mean_found = statistics.mean(g["set12_psnr"] for g in found) if found else None
    gap = None if not spread or mean_found is None else (mean_found - statistics.mean(rand)) / spread
    return {"ranks": ranks, "gap_in_std": gap}


def check_search_vs_random(fn: Optional[Callable], results: dict) -> None:
    """Notebook 5's exercise on the search-vs-random study: ``fn(results) -> (ranks, gap)``,
    ``ranks`` ({searched name: rank among the random genotypes, 1 = above all of them}) and ``gap``
    (the searched mean above the random mean, in random sample standard deviations), checked
    against :func:`search_vs_random_answers` on the study's ``results`` and on made-up studies
    (a search above every random cell; one with a single searched genotype)."""
    made_up = [{"genotypes": [{"name": n, "kind": k, "set12_psnr": v} for n, k, v in rows]} for rows in (
        [("s", "searched", 25.9), ("r1", "random", 25.1), ("r2", "random", 25.4), ("r3", "random", 25.2)],
        [("r1", "random", 25.0), ("a", "searched", 25.2), ("r2", "random", 25.3), ("b", "searched", 24.8),
         ("r3", "random", 25.5), ("r4", "random", 25.1)])]

    def same(got, want):
        ranks, gap = got
        return dict(ranks) == want["ranks"] and math.isclose(float(gap), want["gap_in_std"], abs_tol=1e-6)

    _cases(fn, [(results,)] + [(r,) for r in made_up], search_vs_random_answers, same,
           lambda a: "the study" if a[0] is results else
           f"a made-up study of {len(a[0]['genotypes'])} genotypes",
           "rank = 1 + how many random genotypes score higher; gap = (searched mean - random mean) / "
           "statistics.stdev(random), the sample standard deviation (n - 1)")


__all__ += ["search_vs_random_answers", "check_search_vs_random"]


# ---------------------------------------------------------------------------
# The build-it exercises of every notebook, on one pattern: the learner's function runs on cases
# chosen to catch the usual mistakes, and its results are compared with the library's. A function
# still returning None (the notebook's stub) is "not answered yet".
class _NotAnswered(Exception):
    pass


def _cases(fn: Optional[Callable], cases, want: Callable, same: Callable, show: Callable,
           hint: str = "", hide=()) -> None:
    """Run ``fn(*args)`` for each ``args`` in ``cases`` against ``want(*args)``; ``same(got,
    want) -> bool``; ``show(args)`` names a case in the verdict; ``hide``: (object, attribute)
    pairs the learner's function may not call (replaced while it runs)."""
    def run(f):
        for i, args in enumerate(cases):
            saved = [(obj, name, getattr(obj, name)) for obj, name in hide]
            for obj, name in hide:
                setattr(obj, name, _Hidden(name, f"build it yourself: {name} is switched off while your function runs"))
            try:
                got = f(*[a.clone() if isinstance(a, torch.Tensor) else a for a in args])
            finally:
                for obj, name, v in saved:
                    setattr(obj, name, v)
            if got is None:
                if i == 0:
                    raise _NotAnswered
                return f"case {i} ({show(args)}): your function returned None"
            expected = want(*args)
            try:
                ok = same(got, expected)
            except Exception as e:  # noqa: BLE001 (an answer of the wrong kind is a wrong answer)
                ok, got = False, f"{got!r} ({type(e).__name__}: {e})"
            if not ok:
                return f"case {i} ({show(args)}): {_difference(got, expected)}" + (f"; {hint}" if hint else "")
        return None

    _verdict_or_unanswered(fn, run)


def _difference(got, expected) -> str:
    """What a wrong answer got wrong, in a few words."""
    if isinstance(got, torch.Tensor) and isinstance(expected, torch.Tensor) and got.shape == expected.shape:
        bad = ~torch.isclose(got.double(), expected.double(), rtol=0, atol=1e-6)
        return (f"your tensor has the right shape {tuple(got.shape)} but {int(bad.sum())} of its "
                f"{got.numel()} values differ")
    return f"yours {_short(got)}, expected {_short(expected)}"


def _short(v) -> str:
    if isinstance(v, torch.Tensor):
        return f"a tensor of shape {tuple(v.shape)}"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    text = repr(v)
    return text if len(text) <= 120 else text[:117] + "..."


def _int_equal(a, b) -> bool:
    return not isinstance(a, bool) and int(a) == a and int(a) == b


# --- notebook 1: the cell --------------------------------------------------
def check_edge_index(fn: Optional[Callable]) -> None:
    """``fn(blocks) -> [(block, input), ...]``: every mixed edge of a cell in the library's
    order (:func:`hinas_lib.genotype.edge_index`): block i reads inputs 0 .. i+1."""
    _cases(fn, [(b,) for b in range(1, 7)], edge_index,
           lambda g, w: [tuple(int(v) for v in e) for e in g] == [tuple(e) for e in w],
           lambda a: f"blocks = {a[0]}",
           "block by block; block i has 2 + i inputs (the cell's two, then the blocks before it)")


def check_alpha_for_weight(fn: Optional[Callable]) -> None:
    """``fn(k, weight, n) -> n logits`` whose softmax gives op ``k`` exactly ``weight``."""
    cases = [(6, 0.99, 7), (0, 0.5, 7), (3, 1 / 7, 7), (2, 0.9, 5), (4, 0.999, 8), (1, 0.05, 7)]

    def same(got, w):
        a = torch.as_tensor(got, dtype=torch.float64).flatten()
        return a.numel() == len(w[1]) and bool(torch.isfinite(a).all()) and \
            abs(float(torch.softmax(a, 0)[w[0]]) - w[2]) < 1e-4

    _cases(fn, cases, lambda k, w, n: (k, [0.0] * n, w), same,
           lambda a: f"op {a[0]} at weight {a[1]:.4g} among {a[2]} ops",
           "softmax(a)[k] = e^a_k / (e^a_k + (n - 1)) when the others are 0: solve for a_k")


def check_cell_space_size(fn: Optional[Callable]) -> None:
    """``fn(blocks, n_ops) -> int``: the number of discrete cells (block i keeps 2 of its
    2 + i inputs, each with one of ``n_ops`` ops other than ``none``)."""
    cases = [(1, 6), (2, 6), (3, 4), (4, 6), (5, 2), (3, 1)]
    _cases(fn, cases, cell_space_size, _int_equal, lambda a: f"B = {a[0]}, {a[1]} ops",
           "per block: (pairs of inputs) x (ops on each of the two edges); multiply over blocks")


# --- notebook 2: LWAS ------------------------------------------------------
_SHARINGS = ("layer", "tied", "cell")


def check_alpha_shape(fn: Optional[Callable]) -> None:
    """``fn(layers, levels, blocks, n_ops, sharing) -> tuple``: the shape of alpha."""
    cases = [(4, 3, 3, 7, "layer"), (4, 3, 3, 7, "tied"), (4, 3, 3, 7, "cell"), (2, 4, 4, 7, "cell"),
             (6, 3, 5, 8, "layer"), (1, 2, 2, 5, "tied")]
    _cases(fn, cases, lambda L, S, B, O, m: alpha_shape(m, L, S, edges_per_cell(B), O),
           lambda g, w: tuple(int(v) for v in g) == tuple(w),
           lambda a: f"L = {a[0]}, {a[1]} widths, B = {a[2]}, {a[3]} ops, {a[4]!r}",
           "tied keeps a leading 1; per-cell has a slice per (layer, level), reachable or not")


def _sharing_net(mode: str):
    cfg = get_preset("tiny", "denoise").replace(space=dict(layers=3, blocks=2, filters=4, alpha_sharing=mode))
    torch.manual_seed(0)
    net = build_supernet(cfg)
    with torch.no_grad():
        net.alpha.normal_()
    return net


def check_alpha_index(fn: Optional[Callable]) -> None:
    """``fn(layer, level, sharing) -> k``: the index of the alpha slice the cell of grid node
    (layer, level) reads, ``alpha[k]`` (an int or a tuple), for every node of a 3-layer grid."""
    nets = {m: _sharing_net(m) for m in _SHARINGS}
    cases = [(l, s, m) for m in _SHARINGS for l, s in nets[m].nodes]

    class Slice:  # the expected answer, named in a verdict without printing the network
        def __init__(self, net, layer, level):
            self.net, self.layer, self.level = net, layer, level

        def __repr__(self):
            return f"the slice that net.alpha_for({self.layer}, {self.level}) returns"

    def same(got, want):
        k = tuple(got) if isinstance(got, (list, tuple)) else got
        return torch.equal(want.net.alpha[k], want.net.alpha_for(want.layer, want.level))

    _cases(fn, cases, lambda l, s, m: Slice(nets[m], l, s), same,
           lambda a: f"node (layer {a[0]}, level {a[1]}), sharing {a[2]!r}",
           "layer-wise: the layer's own slice; tied: the one slice there is; per-cell: (layer, level)")


def check_candidates(fn: Optional[Callable]) -> None:
    """``fn(layers, levels, blocks, n_ops, sharing) -> int``: candidate architectures (``n_ops``:
    the ops other than ``none``), as :func:`hinas_lib.describe.candidate_architectures`."""
    cases = [(2, 3, 3, 6, "layer"), (3, 3, 3, 6, "tied"), (4, 3, 2, 6, "cell"), (1, 3, 2, 6, "tied"),
             (5, 2, 2, 4, "layer"), (3, 4, 3, 6, "tied")]
    _cases(fn, cases, candidate_architectures, _int_equal,
           lambda a: f"L = {a[0]}, {a[1]} widths, B = {a[2]}, {a[3]} ops, {a[4]!r}",
           "(cells per layer, or one cell for all when tied) x the number of width paths")


# --- notebook 3: the outer space -------------------------------------------
def check_incoming(fn: Optional[Callable]) -> None:
    """``fn(mask, layer, level) -> [(source level, k), ...]``: every possible move into a node
    (any order), read from ``mask[layer, source, k]`` (:func:`hinas_lib.grid.incoming`)."""
    cases = [(move_mask(L, S), l, s) for L, S in ((3, 3), (5, 3), (4, 4), (3, 2)) for l in range(L)
             for s in range(S)]
    _cases(fn, cases, incoming,
           lambda g, w: sorted(tuple(int(v) for v in e) for e in g) == sorted(w),
           lambda a: f"{a[0].shape[0]} layers x {a[0].shape[1]} widths, node ({a[1]}, {a[2]})"
           + ("" if a[2] in reachable(a[1], a[0].shape[1]) else ", unreachable"),
           "the move k out of level src lands on src - 1 + k; it exists where mask[layer, src, k]")


def check_count_paths(fn: Optional[Callable]) -> None:
    """``fn(layers, levels) -> int``: the number of width paths (:func:`hinas_lib.grid.count_paths`)."""
    cases = [(1, 3), (2, 3), (3, 3), (5, 3), (4, 4), (6, 2), (10, 3), (8, 5)]
    _cases(fn, cases, count_paths, _int_equal, lambda a: f"{a[0]} layers x {a[1]} widths",
           "ways[s] after layer l = sum of ways[src] over the moves src -> s; the stem is level 0")


def check_beta_for_path(fn: Optional[Callable]) -> None:
    """``fn(path, levels) -> beta`` of shape (len(path), levels, 3) under which Viterbi decodes
    exactly ``path``."""
    cases = [([0], 3), ([1], 3), ([0, 1, 2, 1], 3), ([1, 1, 0, 0, 1], 3), ([1, 2, 3, 2, 2], 4),
             ([0, 0, 0, 0, 0, 0], 3), ([1, 2, 2, 2], 3)]

    def same(got, want):
        path, levels = want
        b = torch.as_tensor(got, dtype=torch.float64)
        return tuple(b.shape) == (len(path), levels, 3) and viterbi(b, move_mask(len(path), levels))[0] == path

    _cases(fn, cases, lambda p, S: (list(p), S), same, lambda a: f"path {a[0]}, {a[1]} widths",
           "beta[l, s, k] scores the move k out of level s into layer l; make the path's moves win "
           "(the first move leaves the stem, level 0)")


# --- notebook 4: the search loop -------------------------------------------
def _twins(cfg):
    torch.manual_seed(0)
    base = build_supernet(cfg).train()
    return copy.deepcopy(base), copy.deepcopy(base)


def _close(a: List[torch.Tensor], b: List[torch.Tensor]) -> bool:
    return all(torch.allclose(x.detach(), y.detach(), atol=1e-6, rtol=1e-5) for x, y in zip(a, b))


def _step_problem(where: str, got, want: float, loss: str, frozen, before, frozen_name: str, hint: str):
    """What is wrong with one step of the learner's (None when nothing): the loss it returned,
    and the parameters the step must leave alone (``frozen``: unmoved from ``before``, no
    gradient left on them, which the next step of the other kind would add to its own)."""
    if not math.isclose(float(got), want, rel_tol=1e-5, abs_tol=1e-7):
        return f"{where}: you returned {float(got):.6f}, the {loss} loss is {want:.6f}"
    if not _close(frozen, before):
        return f"{where}: {frozen_name} moved (this step must change only the others)"
    if any(p.grad is not None and bool(p.grad.abs().sum()) for p in frozen):
        return f"{where}: {frozen_name} keep a gradient after your step; the next step would add it to its own ({hint})"
    return None


def check_weight_step(fn: Optional[Callable], cfg, loss_fn, x, y) -> None:
    """``fn(net, w_opt, loss_fn, x, y, grad_clip) -> float``: one weight step, as
    :func:`hinas_lib.search.weight_step` (training loss, gradients, the weights' gradient norm
    clipped to ``grad_clip``, SGD; alpha and beta neither move nor keep a gradient). Two steps in
    a row, at the config's clip and at a clip small enough to bite."""

    def run(f):
        for clip in (cfg.search.grad_clip, 1e-2):
            mine, ref = _twins(cfg)
            opt_m, opt_r = make_optimizers(mine, cfg)[0], make_optimizers(ref, cfg)[0]
            arch0 = [p.detach().clone() for p in mine.arch_parameters()]
            for step in range(2):
                got = f(mine, opt_m, loss_fn, x, y, clip)
                if got is None:
                    if step == 0 and clip == cfg.search.grad_clip:
                        raise _NotAnswered
                    return f"clip {clip:g}, step {step}: your function returned None, not the loss"
                want = weight_step(ref, opt_r, loss_fn, x, y, grad_clip=clip, device=x.device.type)
                where = f"clip {clip:g}, step {step}"
                problem = _step_problem(where, got, want, "training", mine.arch_parameters(), arch0, "alpha/beta",
                                        "set p.grad = None for them")
                if problem:
                    return problem
                if not _close(mine.weight_parameters(), ref.weight_parameters()):
                    return (f"{where}: your weights differ from the library's"
                            + (" (a second step: zero the old gradients first)" if step else
                               " (clip the norm of the weights' gradients only, before w_opt.step())"))
        return None
    _verdict_or_unanswered(fn, run)


def check_arch_step(fn: Optional[Callable], cfg, loss_fn, xv, yv) -> None:
    """``fn(net, a_opt, loss_fn, xv, yv) -> float``: one architecture step, as
    :func:`hinas_lib.search.arch_step` (validation loss, gradients for alpha and beta only,
    Adam); two steps in a row; the weights neither move nor keep a gradient."""

    def run(f):
        mine, ref = _twins(cfg)
        opt_m, opt_r = make_optimizers(mine, cfg)[1], make_optimizers(ref, cfg)[1]
        w0 = [p.detach().clone() for p in mine.weight_parameters()]
        for step in range(2):
            got = f(mine, opt_m, loss_fn, xv, yv)
            if got is None:
                if step == 0:
                    raise _NotAnswered
                return f"step {step}: your function returned None, not the loss"
            want = arch_step(ref, opt_r, loss_fn, xv, yv, device=xv.device.type)
            problem = _step_problem(f"step {step}", got, want, "validation", mine.weight_parameters(), w0,
                                    "the weights", "torch.autograd.grad with respect to alpha and beta only")
            if problem:
                return problem
            if not _close(mine.arch_parameters(), ref.arch_parameters()):
                return (f"step {step}: your alpha/beta differ from the library's"
                        + (" (zero or replace the old gradients before each step)" if step else ""))
        return None
    _verdict_or_unanswered(fn, run)


def _verdict_or_unanswered(fn, run) -> None:
    """Print the verdict on ``fn``: ``run(fn)`` returns None (right) or what went wrong, and may
    raise :class:`_NotAnswered` (the stub still returns None); anything else it raises is a
    wrong answer, reported, never raised."""
    def guarded(f):
        try:
            return run(f)
        except _NotAnswered:
            return _NotAnswered
    if fn is None:
        print(NOT_ANSWERED)
        return
    try:
        problem = guarded(fn)
    except Exception as e:  # noqa: BLE001 (any mistake in the answer is a wrong answer)
        problem = f"your function raised {type(e).__name__}: {e}"
    print(NOT_ANSWERED if problem is _NotAnswered else
          "correct" if problem is None else f"not quite: {problem}")


def _selection_logs(extra=()) -> List:
    gen = torch.Generator().manual_seed(3)
    logs = []
    for n in (6, 10, 12):
        psnr = (24 + 2 * torch.rand(n, generator=gen)).tolist()
        ssim = (0.6 + 0.2 * torch.rand(n, generator=gen)).tolist()
        logs.append([{"epoch": e, "val_psnr": p, "val_ssim": q} for e, (p, q) in enumerate(zip(psnr, ssim))])
    # the best PSNR is not the best SSIM + PSNR/100; the best score comes before select_from
    trap = [(25.0, 0.70), (25.2, 0.80), (25.1, 0.71), (25.9, 0.69), (25.3, 0.72), (25.4, 0.705)]
    logs.append([{"epoch": e, "val_psnr": p, "val_ssim": q} for e, (p, q) in enumerate(trap)])
    return [(log, start) for log in logs for start in (0, 2)] + [(log, start) for log, start in extra]


def check_select_epoch(fn: Optional[Callable], logs=()) -> None:
    """``fn(log, select_from) -> epoch``: the epoch the authors' rule keeps
    (:func:`hinas_lib.history.selected_epoch` with ``by="ssim_psnr"``): the largest SSIM + PSNR/100
    among the epochs from ``select_from`` on, the earliest on a tie. ``logs``: more (log, select_from)
    cases, e.g. a real search's."""
    _cases(fn, _selection_logs(logs), lambda log, start: selected_epoch(log, start, "ssim_psnr"), _int_equal,
           lambda a: f"a log of {len(a[0])} epochs, select_from {a[1]}",
           "score = val_ssim + val_psnr / 100, only for epochs >= select_from; keep the epoch of the largest")


# --- notebook 5: derivation ------------------------------------------------
def check_path_prob(fn: Optional[Callable]) -> None:
    """``fn(beta, mask, path) -> float``: the probability of a width path, the product over its
    moves of beta's softmax over each node's *possible* outgoing moves."""
    gen = torch.Generator().manual_seed(5)
    cases = []
    for L, S in ((1, 3), (3, 3), (5, 3), (4, 4)):
        beta = 2 * torch.randn(L, S, 3, generator=gen, dtype=torch.float64)
        paths = all_paths(L, S)
        for i in torch.randint(len(paths), (2,), generator=gen).tolist():
            cases.append((beta, move_mask(L, S), paths[i]))
    _cases(fn, cases, lambda b, m, p: math.exp(path_log_prob(b, m, p)),
           lambda g, w: math.isclose(float(g), w, rel_tol=1e-6, abs_tol=1e-12),
           lambda a: f"{a[1].shape[0]} layers x {a[1].shape[1]} widths, path {a[2]}",
           "softmax over each node's moves with the impossible ones left out (grid.masked_softmax); "
           "the first move leaves the stem (level 0); multiply")


__all__ += ["check_edge_index", "check_alpha_for_weight", "check_cell_space_size", "check_alpha_shape",
            "check_alpha_index", "check_candidates", "check_incoming", "check_count_paths",
            "check_beta_for_path", "check_weight_step", "check_arch_step", "check_select_epoch",
            "check_path_prob"]


# --- notebook 6: super-resolution ------------------------------------------
def check_pixel_shuffle(fn: Optional[Callable]) -> None:
    """``fn(x, r) -> tensor``: pixel shuffle, (N, C r^2, H, W) -> (N, C, H r, W r), with
    reshape/permute; ``torch.pixel_shuffle`` (and ``nn.PixelShuffle``) are off while it runs."""
    gen = torch.Generator().manual_seed(6)
    cases = [(torch.randn(*shape, generator=gen), r) for shape, r in
             (((1, 4, 3, 5), 2), ((2, 9, 4, 4), 3), ((1, 32, 2, 3), 4), ((3, 8, 5, 2), 2))]
    _cases(fn, cases, lambda x, r: torch.pixel_shuffle(x, r),
           lambda g, w: isinstance(g, torch.Tensor) and g.shape == w.shape and torch.equal(g, w),
           lambda a: f"x of shape {tuple(a[0].shape)}, r = {a[1]}",
           "output (c, r*y + i, r*x + j) is input (c*r*r + i*r + j, y, x): split the channels into "
           "(C, r, r), move the two r axes next to H and W, merge",
           hide=((torch, "pixel_shuffle"), (F, "pixel_shuffle")))


def check_psnr_y(fn: Optional[Callable]) -> None:
    """``fn(sr, hr, scale) -> float``: SR's PSNR (H x W x 3 arrays in [0, 1]): the Y channel
    (``metrics.rgb_to_y``), ``scale`` pixels shaved off every border, as
    ``metrics.psnr(sr, hr, crop_border=scale, test_y_channel=True)``."""
    rng = np.random.default_rng(7)
    cases = []
    for h, w, scale in ((24, 30, 2), (27, 27, 3), (32, 20, 4)):
        hr = rng.random((h, w, 3))
        sr = np.clip(hr + rng.normal(0, [0.02, 0.05, 0.1], (h, w, 3)), 0, 1)
        sr[:scale] = 1 - hr[:scale]  # a bad border: it must not count
        cases.append((sr, hr, scale))
    _cases(fn, cases, lambda sr, hr, s: psnr(sr, hr, crop_border=s, test_y_channel=True),
           lambda g, w: math.isclose(float(g), w, rel_tol=0, abs_tol=1e-6),
           lambda a: f"{a[1].shape[0]}x{a[1].shape[1]} image, scale {a[2]}",
           "shave `scale` rows and columns on each side, convert both to Y, then 10 log10(1 / MSE)")


# --- notebook 7: ablations and the zoo -------------------------------------
def _grid_cfg(layers: int, levels: int, **space):
    factors = (1.0, 1.5, 2.0, 2.5)[:levels]
    return get_preset("tiny", "denoise").replace(space=dict(layers=layers, width_factors=factors, blocks=2,
                                                            filters=4, **space))


def check_cells_in_supernet(fn: Optional[Callable]) -> None:
    """``fn(layers, levels, cell_sharing) -> int``: the search cells a supernet holds, with cell
    sharing (one per reachable node) or without (one per move into a node); compared with
    ``len(supernet.cells)`` of the library's supernets."""
    cases = [(1, 3, True), (3, 3, True), (3, 3, False), (4, 3, False), (5, 2, False), (4, 4, False), (2, 3, False)]
    _cases(fn, cases, lambda L, S, c: len(build_supernet(_grid_cfg(L, S, cell_sharing=c)).cells), _int_equal,
           lambda a: f"{a[0]} layers x {a[1]} widths, cell sharing {'on' if a[2] else 'off'}",
           "sharing: one per reachable node (grid.reachable); without: one per possible move into a node")


def check_arch_params(fn: Optional[Callable]) -> None:
    """``fn(layers, levels, blocks, n_ops, sharing) -> int``: how many architecture parameters
    (alpha and beta) the supernet has."""
    cases = [(3, 3, 3, 7, "layer"), (3, 3, 3, 7, "tied"), (3, 3, 3, 7, "cell"), (12, 3, 4, 7, "tied"),
             (5, 4, 2, 8, "cell")]
    _cases(fn, cases, lambda L, S, B, O, m: math.prod(alpha_shape(m, L, S, edges_per_cell(B), O)) + L * S * 3,
           _int_equal, lambda a: f"L = {a[0]}, {a[1]} widths, B = {a[2]}, {a[3]} ops, {a[4]!r}",
           "alpha's numbers (its shape depends on the sharing) plus beta's: 3 moves per node, (L, S, 3)")


def check_auto_choice(fn: Optional[Callable]) -> None:
    """``fn(sigma, trained) -> name``: the model the denoising slider's ``auto`` runs
    (:func:`hinas_lib.zoo.nearest_model`): ``trained`` maps a name to the sigmas it was trained
    at, or None for a blind model; the nearest fixed-sigma model, the first on a tie."""
    zoo = {"denoise-s30": [30.0], "denoise-s50": [50.0], "denoise-s70": [70.0], "denoise-blind": None}
    other = {"b": [50.0], "a": [30.0], "c": [15.0, 25.0], "blind": None}
    cases = [(s, zoo) for s in (10, 40, 45, 60, 70, 100)] + [(s, other) for s in (40, 20, 5, 26)]
    _cases(fn, cases, nearest_model, lambda g, w: g == w, lambda a: f"sigma {a[0]}, models {list(a[1])}",
           "distance = the smallest |trained sigma - sigma|; skip blind models (None); min() keeps the first")


__all__ += ["check_pixel_shuffle", "check_psnr_y", "check_cells_in_supernet", "check_arch_params",
            "check_auto_choice"]
