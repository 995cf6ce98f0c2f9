"""Figures: graphviz sources/renders (with and without `dot`) and matplotlib figures."""
import json
import warnings

import matplotlib

matplotlib.use("Agg")  # tests only: the library itself never picks a backend
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from hinas_lib import graphs, viz
from hinas_lib.genotype import Genotype, edges_per_cell
from hinas_lib.grid import MOVES, move_mask, reachable
from hinas_lib.ops import PRIMITIVES

L, B, S = 3, 3, 3


@pytest.fixture
def geno():
    cells = [
        [(("conv_3x3", 1), ("skip_connect", 0)), (("sep_conv_3x3", 2), ("dil_conv_3x3", 1)),
         (("sep_conv_5x5", 3), ("conv_3x3", 0))],
        [(("dil_conv_5x5", 0), ("conv_3x3", 1)), (("skip_connect", 2), ("sep_conv_3x3", 0)),
         (("conv_3x3", 2), ("dil_conv_3x3", 3))],
        [(("sep_conv_5x5", 1), ("dil_conv_5x5", 0)), (("conv_3x3", 2), ("skip_connect", 1)),
         (("sep_conv_3x3", 3), ("conv_3x3", 2))],
    ]
    return Genotype(cells=cells, path=(1, 2, 1), width_factors=(1.0, 1.5, 2.0))


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def layer_ops(g, l):
    return {op for block in g.cells[l] for op, _ in block}


def hide_dot(monkeypatch, tmp_path):
    """Make `dot` unfindable, as on a pip-only install."""
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(graphs, "_warned", False)  # the warn-once state lives where render does


# ---------------------------------------------------------------------------
# graphviz
# ---------------------------------------------------------------------------

def test_cell_graph_source_names_every_op_and_node(geno):
    for l in range(L):
        src = viz.cell_graph(geno, l).source
        for op in layer_ops(geno, l):
            assert op in src
        for label in ("c_{l-2}", "c_{l-1}", "c_{l}", "rankdir=LR"):
            assert label in src
        # 2 edges per block plus one edge from every block into the output
        assert src.count("->") == 2 * B + B


@pytest.mark.skipif(not viz.has_dot(), reason="Graphviz `dot` not installed")
def test_cells_render_to_svg(geno, tmp_path):
    for l in range(L):
        out = viz.render(viz.cell_graph(geno, l), tmp_path / f"cell_layer{l}", fmt="svg")
        assert out == tmp_path / f"cell_layer{l}.svg" and out.is_file()
        svg = out.read_text()
        for op in layer_ops(geno, l):
            assert op in svg
        assert (tmp_path / f"cell_layer{l}.gv").is_file()


@pytest.mark.skipif(not viz.has_dot(), reason="Graphviz `dot` not installed")
def test_render_png_and_show(geno, tmp_path):
    out = viz.render(viz.genotype_graph(geno), tmp_path / "sub" / "all", fmt="png")
    assert out.suffix == ".png" and out.read_bytes()[:4] == b"\x89PNG"
    g = viz.cell_graph(geno, 0)
    bundle = viz.show(g)._repr_mimebundle_()
    # PNG too: JupyterLab draws no SVG in a notebook it does not trust yet
    assert bundle["image/png"][:4] == b"\x89PNG" and bundle["image/svg+xml"].lstrip().startswith("<?xml")


def test_genotype_graph_has_a_cluster_per_layer(geno):
    src = viz.genotype_graph(geno).source
    for l in range(L):
        assert f"cluster_{l}" in src
        assert f"layer {l} ({geno.width_factors[geno.path[l]]:g}x)" in src
    assert set(geno.ops()) <= {op for op in PRIMITIVES if op in src}


def test_width_path_graph(geno):
    src = viz.width_path_graph(geno).source
    for l in range(L):
        assert f"layer {l}" in src
    assert src.count("color=red penwidth=3") == L  # one highlighted move per layer
    assert "1.5x" in src
    # a plain path works too; levels default to what the path reaches
    src2 = viz.width_path_graph([0, 1, 1, 0], levels=3).source
    assert all(f"layer {l}" in src2 for l in range(4))
    assert src2.count("color=red penwidth=3") == 4


def _positions(src):
    """node id -> (x, y) from the pinned positions of a neato graph's source."""
    import re
    return {m.group(1): tuple(float(v) for v in m.group(2).split(","))
            for m in re.finditer(r'^\s*(\w+) \[.*?pos="([-\d.]+,[-\d.]+)!"', src, re.M)}


def test_width_path_graph_keeps_levels_on_rows_and_layers_in_columns():
    src = viz.width_path_graph([0, 0, 0, 1], levels=3).source
    pos = _positions(src)
    for l in range(4):
        for s in range(3):
            x, y = pos[f"n{l}_{s}"]
            assert y == pos[f"n0_{s}"][1], "a level must be one row"
            assert x == pos[f"n{l}_0"][0], "a layer must be one column"
    assert pos["stem"][1] == pos["n0_0"][1]  # the stem sits at level 0: 1x -> 1x is horizontal
    assert pos["n0_0"][1] > pos["n0_1"][1] > pos["n0_2"][1]  # narrowest on top
    assert viz.width_path_graph([0]).engine == "neato"  # neato honours the pinned positions


@pytest.mark.skipif(not viz.has_dot(), reason="Graphviz not installed")
def test_width_path_graph_renders_a_straight_keep_path(tmp_path):
    out = viz.render(viz.width_path_graph([0, 0, 0], levels=3), tmp_path / "wp", fmt="svg")
    assert out.suffix == ".svg" and "layer 2" in out.read_text()


@pytest.mark.skipif(not viz.has_dot(), reason="Graphviz not installed")
def test_genotype_graph_fits_a_page(tmp_path):
    import re
    big = Genotype(cells=[[(("sep_conv_5x5", 1), ("dil_conv_5x5", 0))] * 4] * 4, path=(0, 1, 2, 1))
    out = viz.render(viz.genotype_graph(big), tmp_path / "g", fmt="svg")
    width_pt = float(re.search(r'<svg width="([\d.]+)pt"', out.read_text()).group(1))
    assert width_pt <= 9 * 72 + 1  # PAGE_SIZE: at most 9 inches wide
    out = viz.render(viz.search_cell_graph(4), tmp_path / "c", fmt="svg")
    assert float(re.search(r'<svg width="([\d.]+)pt"', out.read_text()).group(1)) <= 9 * 72 + 1


def test_mixed_edge_and_search_cell_graphs():
    src = viz.mixed_edge_graph(PRIMITIVES, weights=[1.0] + [0.0] * (len(PRIMITIVES) - 1)).source
    for p in PRIMITIVES:
        assert p in src
    assert src.count("-> sum") == len(PRIMITIVES) and "x 1.00" in src
    src = viz.search_cell_graph(B).source
    assert src.count("α[") == edges_per_cell(B)


def test_render_without_dot_writes_source_and_warns_once(geno, tmp_path, monkeypatch):
    hide_dot(monkeypatch, tmp_path)
    assert not viz.has_dot()
    g = viz.cell_graph(geno, 1)
    with pytest.warns(RuntimeWarning, match="apt-get install graphviz") as rec:
        out = viz.render(g, tmp_path / "cell1", fmt="svg")
    assert "brew install graphviz" in str(rec[0].message)
    assert out == tmp_path / "cell1.gv" and out.read_text() == g.source
    assert not (tmp_path / "cell1.svg").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second time: no warning
        assert viz.render(g, tmp_path / "again", fmt="png").suffix == ".gv"


def test_show_without_dot_gives_source_and_hint(geno, tmp_path, monkeypatch):
    hide_dot(monkeypatch, tmp_path)
    shown = viz.show(viz.cell_graph(geno, 0))
    assert isinstance(shown, viz.DotSource)
    text = repr(shown)
    assert text.startswith("digraph") and "conda install graphviz" in text


# ---------------------------------------------------------------------------
# matplotlib
# ---------------------------------------------------------------------------

E, O = edges_per_cell(B), len(PRIMITIVES)


def test_alpha_heatmap_shows_the_deviation_from_uniform(tmp_path):
    alpha = torch.zeros(E, O)
    alpha[0, 2] = 2.0  # one op of one edge gained weight
    fig = viz.plot_alpha_heatmap(alpha, PRIMITIVES, B)
    ax = fig.axes[0]
    data = ax.images[0].get_array()
    w = torch.softmax(alpha, -1).numpy()
    assert abs(float(data[0, 2]) - 100 * (w[0, 2] - 1 / O)) < 1e-4 and abs(float(data[1, 0])) < 1e-7  # points
    lo, hi = ax.images[0].get_clim()
    assert lo == -hi and ax.images[0].get_cmap().name == "RdBu_r"  # diverging, centred at 0
    assert [t.get_text() for t in ax.texts][2] == f"{100 * (w[0, 2] - 1 / O):+.2f}"
    assert min(t.get_fontsize() for t in ax.get_yticklabels()) >= 9  # legible


def test_alpha_heatmap_labels(tmp_path):
    fig = viz.plot_alpha_heatmap(torch.randn(E, O), PRIMITIVES, B, title="layer 0")
    ax = fig.axes[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows[:3] == ["b0<-s0", "b0<-s1", "b1<-s0"] and rows[-1] == "b2<-b1"
    assert [t.get_text() for t in ax.get_xticklabels()] == PRIMITIVES
    fig.savefig(tmp_path / "a.png")
    assert (tmp_path / "a.png").stat().st_size > 0
    with pytest.raises(ValueError, match="expected"):
        viz.plot_alpha_heatmap(torch.randn(E + 1, O), PRIMITIVES, B)


@pytest.mark.parametrize("shape,n_axes", [((L, E, O), L), ((1, E, O), 1),
                                          ((L, S, E, O), sum(len(reachable(l, S)) for l in range(L)))])
def test_plot_alphas_one_axis_per_cell(shape, n_axes, tmp_path):
    alpha = torch.nn.Parameter(torch.randn(shape))  # a live parameter is fine
    fig = viz.plot_alphas(alpha, PRIMITIVES, B)
    assert len([ax for ax in fig.axes if ax.images]) == n_axes  # (+ one colour bar each)
    fig.savefig(tmp_path / "alphas.png")


def test_plot_beta_and_width_grid(geno, tmp_path):
    beta = torch.randn(L, S, 3)
    fig = viz.plot_beta(beta, move_mask(L, S), width_factors=geno.width_factors)
    heat = [ax for ax in fig.axes if ax.images]
    assert len(heat) == L
    dev = heat[1].images[0].get_array()
    w = torch.softmax(beta[1, 0], -1).numpy()  # from level 0 at layer 0 every move but "lower" exists
    assert abs(float(dev[0, 1]) - 100 * (w[1] / w[1:].sum() - 0.5)) < 1e-4
    assert np.ma.getmaskarray(dev)[0, 0]  # impossible move: NaN, masked, no colour
    assert [t.get_text() for t in heat[0].get_xticklabels()] == list(MOVES)
    fig.savefig(tmp_path / "beta.png")

    fig = viz.plot_width_grid(beta=beta.tolist(), path=geno.path, width_factors=geno.width_factors)
    (ax,) = fig.axes
    assert len(ax.patches) + len(ax.texts) > 0
    assert [t.get_text() for t in ax.get_xticklabels()] == ["stem", "layer 0", "layer 1", "layer 2"]
    fig.savefig(tmp_path / "grid.png")

    fig2, ax2 = plt.subplots()  # drawing into the caller's axes returns the caller's figure
    assert viz.plot_width_grid(path=[0, 1, 1, 0], levels=3, ax=ax2) is fig2


@pytest.mark.parametrize("mode,n", [("tied", 1), ("layer", L), ("cell", None)])
def test_alpha_readers_follow_the_supernet(mode, n):
    from hinas_lib.config import get_preset
    from hinas_lib.supernet import CompactSuperNet
    cfg = get_preset("tiny").replace(space={"alpha_sharing": mode, "layers": L})
    net = CompactSuperNet(cfg)
    fig = viz.plot_alpha_readers(net)
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.texts]
    assert len(labels) == len(net.nodes)
    assert len(set(labels)) == (n or len(net.nodes))
    if mode == "layer":  # every node of layer l reads alpha[l]
        assert sorted(set(labels)) == [f"α[{l}]" for l in range(L)]


def history(epochs=4, alpha_shape=(L, E, O)):
    g = torch.Generator().manual_seed(0)
    return [{"epoch": e, "alpha": torch.randn(alpha_shape, generator=g).tolist(),
             "beta": torch.randn(L, S, 3, generator=g).tolist(),
             "train_loss": 1.0 / (e + 1), "val_loss": 1.2 / (e + 1), "arch_loss": None if e < 2 else 0.5,
             "val_psnr": 20.0 + e, "val_ssim": 0.5 + 0.1 * e} for e in range(epochs)]


def test_trajectories_from_a_jsonl_log(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(h) + "\n" for h in history()))
    hist = viz.load_history(log)
    fig = viz.plot_trajectories(hist, "alpha", primitives=PRIMITIVES)
    assert len(fig.axes) == L
    assert all(len(ax.lines) == O for ax in fig.axes)
    assert list(fig.axes[0].lines[0].get_xdata()) == [0, 1, 2, 3]
    fig.savefig(tmp_path / "alpha_traj.png")

    fig = viz.plot_trajectories(hist, "beta")
    mask = move_mask(L, S)
    assert [len(ax.lines) for ax in fig.axes] == [int(mask[l].sum()) for l in range(L)]
    fig.savefig(tmp_path / "beta_traj.png")

    fig = viz.plot_trajectories(history(alpha_shape=(L, S, E, O)), "alpha")
    assert len(fig.axes) == L
    with pytest.raises(ValueError):
        viz.plot_trajectories(hist, "gamma")


def test_plot_losses(tmp_path):
    fig = viz.plot_losses(history())
    assert len(fig.axes) == 2  # loss axis + PSNR twin
    assert len(fig.axes[0].lines) == 3 and len(fig.axes[1].lines) == 1
    fig.savefig(tmp_path / "losses.png")


def test_image_grid(tmp_path):
    g = torch.Generator().manual_seed(0)
    grey = torch.rand(32, 32, generator=g).numpy()
    rgb = torch.rand(32, 32, 3, generator=g).numpy()
    low = torch.rand(16, 16, 3, generator=g).numpy()  # e.g. an SR input at half size
    fig = viz.image_grid([low, grey, rgb], ["input", "baseline", "ours"], crop=(8, 8, 12, 12))
    assert len(fig.axes) == 6  # images + zooms
    assert fig.axes[0].get_title() == "input"
    fig.savefig(tmp_path / "grid.png")
    fig = viz.image_grid([grey, rgb, grey], ncols=2)
    assert len(fig.axes) == 3
    with pytest.raises(ValueError, match="titles"):
        viz.image_grid([grey], ["a", "b"])


def test_the_search_draws_nothing_itself_the_front_end_passes_its_writer():
    from hinas_lib.config import get_preset
    from hinas_lib.search import Searcher
    with pytest.raises(TypeError, match="write_figures: a function writing the figures"):
        Searcher(get_preset("tiny"), None, progress=False, write_figures=True)
    assert callable(viz.write_search_figures)


def test_search_trajectory_plot_of_logged_searches(tmp_path):
    uniform = [{"epoch": 0, "step": 10, "alpha": torch.zeros(L, E, O).tolist()}]
    peaked = torch.zeros(L, E, O)
    peaked[..., 1] = 1.0
    rows = viz.search_trajectory(uniform + [{"epoch": 1, "step": 20, "alpha": peaked.tolist()}])
    assert rows[0]["spread_mean"] == 0.0 and rows[0]["changed_edges"] is None
    assert rows[1]["spread_max"] == pytest.approx(np.e / (np.e + O - 1) - 1 / (np.e + O - 1))
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(h) + "\n" for h in history()))
    logged = viz.search_trajectory(log)
    assert [r["epoch"] for r in logged] == [0, 1, 2, 3] and all(r["skip_edges"] == 0 for r in logged)
    fig = viz.plot_search_trajectory({"a": rows, "b": logged}, edges=2 * L)
    assert len(fig.axes) == 3
    assert len(fig.axes[0].lines) == 2 * 2 + 1      # mean and max per search, and the zero line
    assert len(fig.axes[1].lines) == 2              # changed edges: from the second epoch on
    assert f"(of {2 * L})" in fig.axes[2].get_title()
    fig.savefig(tmp_path / "trajectory.png")
