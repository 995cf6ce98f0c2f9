"""The course's interactive widgets, driven from code (no browser): set a
control's value, check what was computed and that the picture changed."""
import math

import matplotlib

matplotlib.use("Agg")
import pytest
import torch

pytest.importorskip("ipywidgets")

from hinas_lib import course, explorers
from hinas_lib.cells import MixedOp
from hinas_lib.genotype import Genotype
from hinas_lib.grid import all_paths, path_error
from hinas_lib.network import CompactNet
from hinas_lib.widgets import shown_images

PNG = b"\x89PNG"


@pytest.fixture
def cfg(monkeypatch):
    monkeypatch.setenv(course.FAST_ENV, "1")
    return course.course_config()


def one_png(output):
    imgs = shown_images(output)
    assert len(imgs) == 1 and imgs[0][:4] == PNG
    return imgs[0]


def test_mixed_edge_sliders_move_the_weights_and_the_output(cfg):
    ex = explorers.MixedEdgeExplorer(cfg.space.primitives, size=48)
    prims = list(cfg.space.primitives)
    assert torch.allclose(ex.state["weights"], torch.full((len(prims),), 1 / len(prims)))
    before = one_png(ex.output)

    ex.sliders["skip_connect"].value = 4.0
    w = ex.state["weights"]
    assert int(w.argmax()) == prims.index("skip_connect") and float(w.sum()) == pytest.approx(1.0)
    assert one_png(ex.output) != before
    # the picture is the library's MixedOp with these weights, nothing else
    with torch.no_grad():
        ref = ex.op(ex.x, w)[0, 0].numpy()
    assert (ex.state["output"] == ref).all()
    # skip_connect dominating: the output is close to the input picture
    x = ex.x[0, 0].numpy()
    assert abs(ex.state["output"] - x).mean() < abs(ex.op_outputs[prims.index("conv_3x3")] - x).mean()

    ex.set_alpha([6.0 if p == "none" else 0.0 for p in prims])  # `none` takes the weight: output fades
    assert abs(ex.state["output"]).max() < 0.05 * abs(x).max() + 0.05
    assert isinstance(ex.op, MixedOp)


def test_width_path_picker_offers_only_legal_moves(cfg):
    c = cfg.replace(space={"layers": 4})
    pick = explorers.WidthPathPicker(c)
    S = len(c.space.width_factors)
    assert pick.state["path"] == [0, 0, 0, 0]
    seen = set()
    for target in all_paths(4, S):
        pick.set_path(target)
        assert pick.state["path"] == target
        seen.add(tuple(target))
        prev = 0
        for d, s in zip(pick.dropdowns, target):  # each dropdown offers exactly the legal levels
            assert sorted(v for _, v in d.options) == [t for t in (prev - 1, prev, prev + 1) if 0 <= t < S]
            prev = s
    assert len(seen) == len(all_paths(4, S))

    pick.set_path([1, 2, 2, 2])
    pick.dropdowns[0].value = 0           # layer 1 can no longer be at 2x: clamped to 1.5x
    assert pick.state["path"] == [0, 1, 2, 2] and path_error(pick.state["path"], S) is None
    geno = Genotype(cells=pick.cells, path=(0, 1, 2, 2), width_factors=c.space.width_factors)
    assert pick.state["params"] == CompactNet(geno, c).num_params()
    wide = pick.state["params"]
    pick.set_path([0, 0, 0, 0])
    assert pick.state["params"] < wide
    one_png(pick.output)


def test_denoise_explorer_follows_the_slider_and_picks_the_nearest_model():
    ex = explorers.DenoiseExplorer(model=explorers.AUTO, models=["denoise-s30", "denoise-s50"], size=64)
    assert ex.state["model"] == "denoise-s30" and ex.state["sigma"] == 30
    low = ex.state["psnr"]["noisy"]
    before = one_png(ex.output)
    ex.sigma.value = 50
    assert ex.state["model"] == "denoise-s50"
    assert ex.state["psnr"]["noisy"] < low - 3  # more noise
    assert one_png(ex.output) != before
    ex.model.value = "denoise-s30"
    assert ex.state["model"] == "denoise-s30"
    assert set(ex.state["psnr"]) == {"noisy", "NLM", "HiNAS (denoise-s30)"}


def test_denoise_explorer_auto_leaves_the_blind_model_to_the_user():
    ex = explorers.DenoiseExplorer(model=explorers.AUTO, models=["denoise-blind", "denoise-s30", "denoise-s70"],
                                   size=64, sigma=65)
    assert ex.state["model"] == "denoise-s70"  # the blind model would tie at every sigma
    ex.model.value = "denoise-blind"
    assert ex.state["model"] == "denoise-blind"
    assert ex.state["psnr"]["HiNAS (denoise-blind)"] > ex.state["psnr"]["noisy"] + 3


def test_denoise_explorer_auto_choice_leaves_the_widgets_alone():
    """Notebook 7's exercise check asks what AUTO picks at sigma 60: answering it must
    neither move the learner's slider nor redraw the picture whose title is the answer."""
    ex = explorers.DenoiseExplorer(model=explorers.AUTO, models=["denoise-s30", "denoise-s50", "denoise-s70"],
                                   size=64, sigma=30)
    ex.model.value = "denoise-s30"
    before, state = one_png(ex.output), dict(ex.state)
    assert ex.auto_choice(60) in ("denoise-s50", "denoise-s70") and ex.auto_choice(25) == "denoise-s30"
    assert ex.sigma.value == 30 and ex.model.value == "denoise-s30"
    assert ex.state == state and one_png(ex.output) == before
    ex.model.value = explorers.AUTO
    ex.sigma.value = 60
    assert ex.state["model"] == ex.auto_choice(60)  # the same rule as the live slider


def test_mixed_edge_slider_column_keeps_its_width():
    """At 1400 px the figure beside the sliders squeezed their column, hiding handles and
    readouts: the column must not shrink, and the row wraps instead."""
    ex = explorers.MixedEdgeExplorer(["none", "skip_connect"], size=32)
    column = ex.widget.children[0]
    assert column.layout.flex == "0 0 auto" and column.layout.width
    assert ex.widget.layout.flex_flow == "row wrap"


def test_sr_explorer_switches_models_with_the_scale():
    ex = explorers.SRExplorer(models={2: "sr-x2", 4: "sr-x4"}, size=96)
    assert ex.state["scale"] == 2 and ex.state["lr_shape"][-1] == 48
    ex.scale.value = 4
    assert ex.state["model"] == "sr-x4" and ex.state["lr_shape"][-1] == 24
    psnr = ex.state["psnr"]
    assert psnr["HiNAS (sr-x4)"] > psnr["bicubic"]  # the shipped model beats its baseline here too
    one_png(ex.output)


def test_viterbi_explorer_redraws_the_path_viterbi_decodes():
    from hinas_lib import grid

    ex = explorers.ViterbiExplorer(layers=3, beta=torch.zeros(3, 3, 3), node=(0, 0))
    mask = grid.move_mask(3, 3)
    # uniform beta: staying at 1x has the most probable moves (2 choices out of (0,0), 3 out of (0,1))
    assert ex.state["path"] == [0, 0, 0] == grid.viterbi(torch.zeros(3, 3, 3), mask)[0]
    before = one_png(ex.output)
    assert [s.disabled for s in ex.sliders] == [True, False, False]   # the stem cannot lower

    ex.sliders[2].value = 3.0            # raise out of the stem
    assert float(ex.beta[0, 0, 2]) == 3.0
    assert ex.state["path"][0] == 1 and ex.state["path"] == grid.viterbi(ex.beta, mask)[0]
    assert ex.state["prob"] == pytest.approx(float(torch.exp(torch.tensor(
        grid.path_log_prob(ex.beta, mask, ex.state["path"])))))
    assert one_png(ex.output) != before

    # a node whose moves are all weak: greedy walks into it, Viterbi goes round it
    ex.set_beta(0, 0, [0.0, 0.0, 0.3])       # raise slightly preferred out of the stem...
    ex.set_beta(1, 1, [0.0, 0.0, 0.0])       # ...but node (0,1) spreads its weight over three moves
    ex.set_beta(2, 1, [0.0, 0.0, 0.0])
    assert ex.state["greedy"][0] == 1 and ex.state["path"][0] == 0
    assert ex.state["path"] == grid.viterbi(ex.beta, mask)[0]
    assert ex.state["prob"] > ex.state["greedy_prob"]
    assert ex.node.value == (2, 1) and [s.value for s in ex.sliders] == [0.0, 0.0, 0.0]


def test_denoise_explorer_can_show_bm3d_beside_nlm():
    pytest.importorskip("bm3d")
    ex = explorers.DenoiseExplorer(model="denoise-s30", size=48, bm3d=True)
    assert set(ex.state["psnr"]) == {"noisy", "NLM", "BM3D", "HiNAS (denoise-s30)"}
    assert ex.state["psnr"]["BM3D"] > ex.state["psnr"]["noisy"]


def test_sharing_explorer_follows_its_controls(cfg):
    from hinas_lib.describe import describe
    ex = explorers.SharingExplorer(cfg)
    one_png(ex.output)
    ex.mode.value, ex.layers.value, ex.blocks.value = "cell", 3, 2
    st = ex.state
    assert st["alpha_shape"] == (3, 3, 5, 7) and st["slices"] == 9 and st["cells"] == 8
    assert st["unread_slices"] == 1  # level 2 at layer 0: no path reaches it, its slice never moves
    d = describe(cfg.replace(space=dict(alpha_sharing="cell", layers=3, blocks=2)))
    assert st["architectures"] == d["candidate_architectures"] and st["arch_params"] == d["arch_params"]
    ex.mode.value = "tied"
    assert ex.state["alpha_shape"][0] == 1 and ex.state["unread_slices"] == 0
    ex.mode.value = "layer"
    assert ex.state["alpha_shape"] == (3, 5, 7) and ex.state["unread_slices"] == 0
    one_png(ex.output)


def _log(scale, epochs=3, layers=2, blocks=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    E = sum(2 + i for i in range(blocks))
    return [{"epoch": e, "alpha": (scale * (e + 1) * torch.randn(layers, E, 7, generator=g)).tolist()}
            for e in range(epochs)]


def test_derivation_explorer_shows_the_top2_rule_and_its_margins(cfg):
    from hinas_lib.derive import derive_cell
    prims = list(cfg.space.primitives)
    logs = {"decided": _log(2.0), "near uniform": _log(1e-3, epochs=5, layers=3), "two blocks": _log(1.0, blocks=2)}
    ex = explorers.DerivationExplorer(logs, prims)
    one_png(ex.output)
    alpha = torch.tensor(logs["decided"][-1]["alpha"], dtype=torch.float64)[0]
    assert ex.state["cell"] == derive_cell(alpha, prims, 3) and ex.state["epoch"] == 2
    m = ex.state["margins"]
    assert math.isnan(m[0]) and all(v >= 0 for v in m[1:])   # block 0 has two inputs: both kept
    decided = max(m[1:])
    ex.search.value = "near uniform"
    assert ex.epoch.max == 4 and ex.epoch.value == 4 and list(ex.layer.options) == [0, 1, 2]
    assert max(ex.state["margins"][1:]) < 0.01 < decided   # a coin toss against a decision
    ex.layer.value, ex.epoch.value = 2, 0
    alpha = torch.tensor(logs["near uniform"][0]["alpha"], dtype=torch.float64)[2]
    assert ex.state["cell"] == derive_cell(alpha, prims, 3) and ex.state["layer"] == 2
    ex.search.value = "two blocks"   # the number of blocks is read from each log's alpha
    assert len(ex.state["cell"]) == 2 and len(ex.state["margins"]) == 2
