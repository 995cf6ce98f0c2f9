"""The course's build-it exercises: a right answer passes, each usual mistake fails."""
import itertools

import pytest
import torch

from hinas_lib import exercises as ex
from hinas_lib.derive import derive_cell
from hinas_lib.genotype import edge_index
from hinas_lib.grid import all_paths, incoming, masked_softmax, path_log_prob, reachable, viterbi


def verdict(capsys, check, fn, *args):
    check(fn, *args)
    return capsys.readouterr().out.strip()


def brute_force(beta, mask):
    L, S = mask.shape[:2]
    return max(all_paths(L, S), key=lambda p: path_log_prob(beta, mask, p))


def greedy(beta, mask):
    w = masked_softmax(beta, mask)
    path, s = [], 0
    for l in range(mask.shape[0]):
        k = int(w[l, s].argmax())
        s = s - 1 + k
        path.append(s)
    return path


def test_viterbi_exercise(capsys):
    assert verdict(capsys, ex.check_viterbi, None) == "not answered yet"
    assert verdict(capsys, ex.check_viterbi, lambda b, m: viterbi(b, m)[0]) == "correct"
    assert verdict(capsys, ex.check_viterbi, brute_force) == "correct"
    out = verdict(capsys, ex.check_viterbi, greedy)
    assert out.startswith("not quite: case 0 (the greedy trap")
    assert "not quite" in verdict(capsys, ex.check_viterbi, lambda b, m: [0] * (m.shape[0] - 1))
    assert "raised ZeroDivisionError" in verdict(capsys, ex.check_viterbi, lambda b, m: 1 / 0)


def test_the_greedy_trap_is_a_trap():
    beta, mask = ex.greedy_trap()
    assert greedy(beta, mask) == [0, 0] and viterbi(beta, mask)[0] == [1, 1]


def top2_counting_none(alpha, prims, blocks):
    w = torch.softmax(alpha, -1)
    cell = []
    for i in range(blocks):
        edges = [(e, j) for e, (b, j) in enumerate(edge_index(blocks)) if b == i]
        best = sorted(edges, key=lambda ej: -float(w[ej[0]].max()))[:2]
        cell.append(tuple((prims[max((k for k in range(len(prims)) if prims[k] != "none"),
                                     key=lambda k: float(w[e, k]))], j) for e, j in best))
    return tuple(cell)


def test_top2_exercise(capsys):
    assert verdict(capsys, ex.check_top2, lambda a, p, b: derive_cell(a, p, b)) == "correct"
    # the two edges in the other order are still right
    flipped = lambda a, p, b: tuple(tuple(reversed(blk)) for blk in derive_cell(a, p, b))  # noqa: E731
    assert verdict(capsys, ex.check_top2, flipped) == "correct"
    out = verdict(capsys, ex.check_top2, top2_counting_none)
    assert out.startswith("not quite: case ")
    first_two = lambda a, p, b: tuple((("conv_3x3", 0), ("conv_3x3", 1)) for _ in range(b))  # noqa: E731
    assert "not quite" in verdict(capsys, ex.check_top2, first_two)


def reference_forward(net, x, beta_axis=-1, per_path=False):
    """The supernet's forward from its modules (the exercise's answer)."""
    bw = masked_softmax(net.beta, net.mask) if beta_axis == -1 else torch.softmax(
        net.beta.masked_fill(~net.mask, float("-inf")), dim=1).nan_to_num(0.0)
    aw = net.alpha_weights()
    stem = net.stem(x)
    prev, prev2 = {0: stem}, {0: stem}
    for l in range(net.L):
        cur = {}
        for s in reachable(l, net.S):
            s0 = prev2[min(s, max(prev2))]
            terms = []
            for src, k in incoming(net.mask, l, s):
                key = f"{l}_{src}_{k}"
                h = net.routers[key](prev[src]) if key in net.routers else prev[src]
                terms.append(bw[l, src, k] * h)
            cell = net.cells[f"{l}_{s}_0"]
            if per_path:
                cur[s] = sum(cell(s0, t, aw[l], False) for t in terms)
            else:
                cur[s] = cell(s0, sum(terms), aw[l], False)
        prev2, prev = prev, cur
    feat = sum(net.proj[str(s)](h) for s, h in prev.items()) + stem
    return net.head(feat, x)


def test_supernet_forward_exercise(capsys):
    assert verdict(capsys, ex.check_supernet_forward, reference_forward) == "correct"
    wrong_axis = lambda n, x: reference_forward(n, x, beta_axis=1)  # noqa: E731 (softmax over incoming)
    assert "not quite: network 0" in verdict(capsys, ex.check_supernet_forward, wrong_axis)
    per_path = lambda n, x: reference_forward(n, x, per_path=True)  # noqa: E731 (no cell sharing)
    assert "not quite" in verdict(capsys, ex.check_supernet_forward, per_path)
    cheat = lambda n, x: n(x)  # noqa: E731
    assert "use the supernet's modules" in verdict(capsys, ex.check_supernet_forward, cheat)
    # and the network is whole again afterwards
    net = ex.mini_supernet()
    assert net(torch.rand(1, 1, 8, 8, dtype=torch.float64)).shape == (1, 1, 8, 8)


def _study(set12):
    return {"genotypes": [{"name": n, "kind": "searched" if n.startswith("s") else "random", "set12_psnr": v}
                          for n, v in set12.items()]}


def test_search_vs_random_answers(capsys):
    res = _study({"s1": 25.37, "s2": 25.46, "r0": 25.41, "r1": 25.36, "r2": 25.30})
    want = ex.search_vs_random_answers(res)
    assert want["ranks"] == {"s1": 2, "s2": 1}
    rand = [25.41, 25.36, 25.30]
    sd = (sum((v - sum(rand) / 3) ** 2 for v in rand) / 2) ** 0.5
    assert want["gap_in_std"] == pytest.approx(((25.37 + 25.46) / 2 - sum(rand) / 3) / sd)

    # too few random genotypes for a standard deviation: no gap to give
    assert ex.search_vs_random_answers(_study({"s1": 25.0, "r0": 24.0}))["gap_in_std"] is None
