"""The search-vs-random study: random genotypes, the supernet's view of a genotype, the search
trajectories and the results file (its runs themselves are CPU-hours: benchmarks/state/)."""
import json
import random
from collections import Counter

import pytest
import torch

from benchmarks import search_vs_random as svr
from hinas_lib.config import get_preset
from hinas_lib.derive import derive_genotype
from hinas_lib.genotype import Genotype
from hinas_lib.grid import all_paths
from hinas_lib.sampling import random_genotype
from hinas_lib.supernet import CompactSuperNet

PRIMS = get_preset("tiny").space.primitives


def test_random_genotypes_are_legal_reproducible_and_cover_the_space():
    draws = [random_genotype(random.Random(k), 3, 4, PRIMS) for k in range(300)]
    assert random_genotype(random.Random(7), 3, 4, PRIMS) == draws[7]
    ops = Counter(op for g in draws for op in g.ops())
    assert "none" not in ops and set(ops) == set(PRIMS) - {"none"}
    # uniform over the 6 ops: each near 1/6 of 300 x 24 edges
    assert all(abs(n / (300 * 24) - 1 / 6) < 0.03 for n in ops.values())
    for g in draws:
        for cell in g.cells:
            for i, ((_, a), (_, b)) in enumerate(cell):
                assert a < b < 2 + i  # two distinct earlier states
    paths = Counter(g.path for g in draws)
    assert set(paths) == {tuple(p) for p in all_paths(3, 3)}


def test_random_genotype_refuses_bad_arguments():
    with pytest.raises(TypeError, match="rng"):
        random_genotype(3, 3, 4, PRIMS)
    with pytest.raises(ValueError, match="other than 'none'"):
        random_genotype(random.Random(0), 3, 4, ["none"])


def _supernet():
    cfg = get_preset("tiny", "denoise").replace(space=dict(layers=3, blocks=4, filters=4))
    torch.manual_seed(0)
    return CompactSuperNet(cfg), cfg


@pytest.mark.parametrize("k", range(4))
def test_the_supernet_set_to_a_genotype_derives_that_genotype(k):
    net, cfg = _supernet()
    g = random_genotype(random.Random(k), 3, 4, cfg.space.primitives)
    a, b = svr.discrete_arch(net, g)
    with torch.no_grad():
        net.alpha.copy_(a)
        net.beta.copy_(b)
    assert derive_genotype(net) == g
    w = net.alpha_weights()
    # one-hot: every edge puts all its weight on one op; the unused edges on none
    assert torch.equal(w.max(-1).values, torch.ones_like(w[..., 0]))
    n_none = int((w[..., PRIMS.index("none")] == 1).sum())
    assert n_none == 3 * (14 - 8)  # 14 edges per cell, 8 used
    bw = net.beta_weights()
    prev = 0
    for l, s in enumerate(g.path):
        assert float(bw[l, prev, s - prev + 1].detach()) == 1.0
        prev = s


def test_supernet_psnr_restores_the_supernet_and_ignores_other_last_nodes():
    from hinas_lib.tasks import get_task
    net, cfg = _supernet()
    task = get_task(cfg)
    torch.manual_seed(1)
    clean = torch.rand(3, 1, 24, 24)
    items = [(c + 0.1 * torch.randn_like(c), c) for c in clean]
    calib = [(torch.rand(2, 1, 16, 16), None) for _ in range(3)]
    g = random_genotype(random.Random(3), 3, 4, cfg.space.primitives)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    p1 = svr.supernet_psnr(net, g, calib, items, task, torch.device("cpu"))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(m.momentum == 0.1 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    # the other last-layer nodes' projections are off: changing them changes nothing
    with torch.no_grad():
        for s, proj in net.proj.items():
            if int(s) != g.path[-1]:
                proj.weight.normal_()
    p2 = svr.supernet_psnr(net, g, calib, items, task, torch.device("cpu"))
    assert p1 == pytest.approx(p2, abs=1e-9) and 0 < p1 < 100


def _log(tmp_path, genos, alphas):
    lines = []
    for e, (g, a) in enumerate(zip(genos, alphas)):
        lines.append(json.dumps({"epoch": e, "step": 10 * (e + 1), "alpha": a, "genotype": g.to_dict()}))
    p = tmp_path / "log.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_search_trajectory_measures_spread_changes_and_skips(tmp_path):
    g0 = random_genotype(random.Random(0), 3, 4, PRIMS)
    cells = [list(map(list, c)) for c in g0.cells]
    cells[0][0] = [("skip_connect", 0), ("skip_connect", 1)]
    g1 = Genotype(cells=cells, path=g0.path)
    uniform = torch.zeros(3, 14, 7).tolist()
    peaked = torch.zeros(3, 14, 7)
    peaked[..., 2] = 1.0
    rows = svr.search_trajectory(_log(tmp_path, [g0, g1], [uniform, peaked.tolist()]), PRIMS)
    assert rows[0]["spread_mean"] == 0.0 and rows[0]["changed_edges"] is None
    e = torch.e
    assert rows[1]["spread_mean"] == pytest.approx(e / (e + 6) - 1 / (e + 6), rel=1e-6)
    before = sum(op == "skip_connect" for op in g0.ops())
    assert rows[1]["skip_edges"] == sum(op == "skip_connect" for op in g1.ops()) >= 2
    changed = sum(1 for a, b in zip(g0.cells[0][0], g1.cells[0][0]) if a != b)
    assert rows[1]["changed_edges"] == changed
    assert rows[0]["skip_edges"] == before


def _fake_result(state, name, seed, set12, heldout):
    d = state / "train" / f"{name}-seed{seed}"
    d.mkdir(parents=True)
    g = random_genotype(random.Random(hash(name) % 1000), 3, 4, PRIMS)
    (d / "result.json").write_text(json.dumps({
        "name": name, "kind": svr.kind_of(name), "seed": seed, "set12_psnr": set12, "set12_ssim": 0.7,
        "heldout_psnr": heldout, "heldout_ssim": 0.6, "params": 1000, "macs_per_px": 5000.0,
        "cpu_hours": 0.4, "steps": 2000, "genotype": g.to_dict()}))


def test_report_writes_the_documented_results(tmp_path, monkeypatch):
    state = tmp_path / "state"
    monkeypatch.setattr(svr, "STATE", state)
    for attr, name in (("RESULTS_JSON", "r.json"), ("PAGE", "page.md"), ("PLOT", "p.png"),
                       ("SPREAD_PLOT", "s.png")):
        monkeypatch.setattr(svr, attr, tmp_path / name)
    monkeypatch.setattr(svr, "search_dir", lambda seed: tmp_path / "no-search")
    rand = [25.0, 25.2, 25.4, 25.6, 25.8, 26.0, 26.2, 26.4]
    for k, v in enumerate(rand):
        _fake_result(state, f"random-{k:02d}", 0, v, v - 1)
    _fake_result(state, "zoo-search", 0, 26.1, 25.1)
    _fake_result(state, "zoo-search", 1, 26.15, 25.1)
    _fake_result(state, "search-s1", 0, 26.5, 25.5)
    (state / "supernet.json").write_text(json.dumps({"search_seed": 1, "psnr": {
        f"random-{k:02d}": 20 + k for k in range(8)} | {"zoo-search": 25.5, "search-s1": 30.0}}))
    res = svr.report()
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved == json.loads(json.dumps(res))
    rows = {r["name"]: r for r in saved["genotypes"]}
    assert set(rows["search-s1"]) >= {"name", "kind", "set12_psnr", "heldout_psnr", "supernet_psnr", "params",
                                     "macs_per_px"}
    assert rows["search-s1"]["rank_among_random"] == 1 and rows["zoo-search"]["rank_among_random"] == 3
    assert rows["random-00"]["rank_among_random"] is None
    assert saved["random_set12_mean"] == pytest.approx(25.7)
    assert saved["seed_spread_set12"] == {"zoo-search": pytest.approx(0.05)}
    # supernet order equals the stand-alone order here: tau = 1
    assert saved["kendall_tau"] == pytest.approx(1.0) and saved["kendall_n"] == 10
    assert saved["complete"] is True
    page = (tmp_path / "page.md").read_text()
    assert "Kendall tau 1.00" in page and "Status: incomplete" not in page
    assert (tmp_path / "p.png").stat().st_size > 0 and (tmp_path / "s.png").stat().st_size > 0


def test_an_unfinished_study_says_so(tmp_path, monkeypatch):
    state = tmp_path / "state"
    monkeypatch.setattr(svr, "STATE", state)
    monkeypatch.setattr(svr, "search_dir", lambda seed: tmp_path / "no-search")
    _fake_result(state, "random-00", 0, 25.0, 24.0)
    res = svr.collect()
    assert res["complete"] is False and res["kendall_tau"] is None
    assert "Status: incomplete" in svr._page(res)


def test_the_queue_starts_with_the_seed_check_and_holds_every_genotype():
    q = svr.queue()
    assert q[:2] == ["train:zoo-search:0", "train:zoo-search:1"]
    assert len(q) == len(set(q))
    trained = {j.split(":")[1] for j in q if j.startswith("train:")}
    assert trained == set(svr.names())
    with pytest.raises(SystemExit):
        svr.main(["run", "--only", "train:nothing:0"])


# ---------------------------------------------------------------------------
# DARTS-'s auxiliary skip (search.aux_skip), the compact design's option against collapse
def test_the_auxiliary_skip_adds_aux_times_the_input_to_every_edge():
    from hinas_lib.cells import SearchCell
    net, cfg = _supernet()
    w = net.alpha_weights()
    net.aux_skip = 0.7
    w2 = net.edge_weights()
    k = cfg.space.primitives.index("skip_connect")
    assert torch.allclose(w2[..., k], w[..., k] + 0.7) and torch.equal(
        torch.cat([w2[..., :k], w2[..., k + 1:]], -1), torch.cat([w[..., :k], w[..., k + 1:]], -1))
    # a mixed edge with the shifted weights = the edge + 0.7 x (the plain and the fused cell alike)
    cell = SearchCell(4, 4, 4, 2, cfg.space.primitives).double().eval()
    x0, x1 = torch.rand(1, 4, 8, 8, dtype=torch.float64), torch.rand(1, 4, 8, 8, dtype=torch.float64)
    ww = torch.softmax(torch.randn(5, 7, dtype=torch.float64), -1)
    shifted = ww.clone()
    shifted[:, k] += 0.7
    edge = cell.edges[0]
    s = cell.pre0(x0)
    assert torch.allclose(edge(s, shifted[0]), edge(s, ww[0]) + 0.7 * s, atol=1e-12)
    # the derivation reads alpha alone: the auxiliary skip does not make skip_connect win
    net.aux_skip = 0.0
    before = derive_genotype(net)
    net.aux_skip = 5.0
    assert derive_genotype(net) == before


def test_a_search_with_the_auxiliary_skip_decays_it_and_refuses_other_designs(tmp_path):
    from hinas_lib.config import ConfigError
    from hinas_lib.search import Searcher
    cfg = get_preset("tiny", "denoise").replace(
        space=dict(layers=2, blocks=2, filters=4),
        search=dict(epochs=3, warmup_epochs=1, steps_per_epoch=1, batch_size=2, crop=24, val_batches=1,
                    aux_skip=1.0))
    seen = []
    s = Searcher(cfg, None, progress=False, on_epoch=lambda rec: seen.append(s.net.aux_skip))
    s.run()
    assert seen == pytest.approx([1.0, 2 / 3, 1 / 3])
    with pytest.raises(ConfigError, match="aux_skip"):
        get_preset("paper-denoise").replace(search=dict(aux_skip=1.0)).check_searchable()
    with pytest.raises(ConfigError, match="aux_skip"):
        cfg.replace(search=dict(aux_skip=-1.0))


def test_the_auxiliary_skip_is_the_same_in_the_fused_and_the_plain_supernet():
    from hinas_lib.fused import PerfOptions
    cfg = get_preset("tiny", "denoise").replace(space=dict(layers=3, blocks=3, filters=4))
    torch.manual_seed(0)
    fast = CompactSuperNet(cfg).double()
    plain = CompactSuperNet(cfg, PerfOptions.plain()).double()
    plain.load_state_dict(fast.state_dict())
    x = torch.rand(2, 1, 12, 12, dtype=torch.float64)
    outs = []
    for net in (fast, plain):
        net.aux_skip = 0.6
        outs.append(net(x))
        net.aux_skip = 0.0
        outs.append(net(x))
    assert torch.allclose(outs[0], outs[2], atol=1e-10) and not torch.allclose(outs[0], outs[1], atol=1e-4)


def test_each_study_search_has_its_own_folder_and_settings():
    assert svr.search_dir("search-s1").name == "seed1"  # the first study search's folder, kept
    assert svr.search_dir("auxskip-s2").name == "auxskip-seed2"
    assert len({svr.search_dir(n) for n in svr.SEARCHES}) == len(svr.SEARCHES)
    assert svr.search_config("auxskip-s1").search.aux_skip == 1.0
    assert svr.search_config("search-s2").search.aux_skip == 0.0 and svr.search_config("search-s2").search.seed == 2
    assert svr.search_config("search-s1").check_searchable() is not None
