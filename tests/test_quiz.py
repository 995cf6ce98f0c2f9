"""The course quizzes: every notebook has one, every question is well formed, answers are
checked (a wrong one is reported wrong), and the widget shows feedback when clicked."""
from __future__ import annotations

import pytest

from hinas_lib import quiz
from hinas_lib.quizzes import QUIZZES, Question

NOTEBOOKS = ["01", "02", "03", "04", "05", "06", "07"]


def test_every_notebook_has_a_short_quiz():
    assert sorted(QUIZZES) == NOTEBOOKS
    for nb, qs in QUIZZES.items():
        assert 3 <= len(qs) <= 6, nb
        assert all(isinstance(q, Question) and q.why for q in qs), nb
        # not always the same position: a learner cannot game it
        assert len({q.answer for q in qs}) > 1, nb


def test_check_says_which_answers_are_right(capsys):
    qs = quiz.questions("04")
    right = [q.answer for q in qs]
    assert quiz.check("04", right) == [True] * len(qs)
    wrong = [(a + 1) % len(q.choices) for a, q in zip(right, qs)]
    assert quiz.check("04", wrong) == [False] * len(qs)
    out = capsys.readouterr().out
    assert f"{len(qs)} of {len(qs)} right" in out and "Not quite: the answer is" in out
    with pytest.raises(ValueError, match="questions; got 1 answers"):
        quiz.check("04", [0])
    with pytest.raises(ValueError, match="choose one of 0.."):
        quiz.check("04", [99] * len(qs))
    with pytest.raises(ValueError, match="no quiz for notebook '09'"):
        quiz.questions("09")


def test_malformed_questions_are_refused():
    with pytest.raises(ValueError, match="not one of the 2 choices"):
        Question("q?", ("a", "b"), 2, "why")
    with pytest.raises(ValueError, match="two choices are the same"):
        Question("q?", ("a", "a"), 0, "why")


def test_the_panel_gives_feedback_when_checked():
    pytest.importorskip("ipywidgets")
    panel = quiz.QuizPanel("01")
    panel._check()
    assert all("choose an answer first" in f.value for f in panel.feedback)
    for q, b in zip(panel.qs, panel.buttons):
        b.value = q.answer
    panel.buttons[0].value = (panel.qs[0].answer + 1) % len(panel.qs[0].choices)
    panel.check_button.click()
    assert "Not quite" in panel.feedback[0].value and all("Right." in f.value for f in panel.feedback[1:])
    assert panel.score.value == f"{len(panel.qs) - 1} of {len(panel.qs)} right"


def test_show_without_widgets_prints_the_questions(monkeypatch, capsys):
    import builtins
    real = builtins.__import__

    def no_widgets(name, *a, **k):
        if name == "ipywidgets":
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_widgets)
    assert quiz.show("02") is None
    out = capsys.readouterr().out
    assert "1. " in out and "(0) " in out and "quiz.check('02'" in out


# ---- answers of notebooks 01, 02, 03, 06, 07 checked against the library ----

def _answer(nb, i):
    q = QUIZZES[nb][i]
    return q.choices[q.answer]


def test_quiz_01_answers():
    from hinas_lib.genotype import edges_per_cell
    from hinas_lib.ops import AUTHORS_PRIMITIVES, PRIMITIVES

    assert int(_answer("01", 0)) == len(PRIMITIVES) == len(AUTHORS_PRIMITIVES) == 7
    assert "conv_3x3" in PRIMITIVES and not any("pool" in p for p in PRIMITIVES)
    import torch
    a = torch.randn(7)
    assert torch.allclose(torch.softmax(a, 0), torch.softmax(a + 3, 0))
    assert int(_answer("01", 2)) == edges_per_cell(3)


def test_quiz_02_answers():
    import torch

    from hinas_lib import course
    from hinas_lib.describe import describe
    from hinas_lib.supernet import SuperNet
    from hinas_lib.tasks import get_task

    cfg = course.course_config(fast=True)
    assert eval(_answer("02", 0)) == tuple(SuperNet(cfg).alpha.shape)
    d = {m: describe(cfg.replace(space={"alpha_sharing": m})) for m in ("tied", "layer", "cell")}
    assert min(d, key=lambda m: d[m]["candidate_architectures"]) == "tied" and _answer("02", 1).startswith("tied")
    assert len({v["supernet_params"] for v in d.values()}) == 1
    torch.manual_seed(0)
    net = SuperNet(cfg.replace(space={"alpha_sharing": "cell"}))
    clean = torch.rand(1, 1, 16, 16)
    g, = torch.autograd.grad(get_task(cfg).loss()(net(clean + 0.1 * torch.randn_like(clean)), clean), net.alpha)
    assert int(_answer("02", 3)) == int((g.flatten(0, 1).abs().sum(dim=(-2, -1)) > 0).sum())


def test_quiz_03_answers():
    import torch

    from hinas_lib import course, grid
    from hinas_lib.describe import describe
    from hinas_lib.explorers import greedy_path
    from hinas_lib.supernet import SuperNet

    assert _answer("03", 0) == grid.MOVES[2]
    assert grid.reachable(0, 3) == [0, 1] and "0 and 1" in _answer("03", 1)
    cfg = course.course_config(fast=True)
    keys = list(SuperNet(cfg).routers)
    assert keys and all(int(k.split("_")[2]) != grid.MOVES.index("keep") for k in keys)   # compact: keep is the identity
    beta = torch.zeros(3, 3, 3)
    beta[0, 0, 2] = 0.3
    mask = grid.move_mask(3, 3)
    assert greedy_path(beta, mask) != grid.viterbi(beta, mask)[0]     # greedy can miss the most probable path
    on, off = (describe(cfg.replace(space={"cell_sharing": s})) for s in (True, False))
    assert on["cells_in_supernet"] == on["grid_nodes"] < off["cells_in_supernet"]


def test_quiz_06_answers():
    import torch

    from hinas_lib import course
    from hinas_lib.config import get_preset
    from hinas_lib.tasks import get_task

    r = 3
    assert tuple(torch.nn.PixelShuffle(r)(torch.zeros(1, 3 * r * r, 5, 7)).shape) == (1, 3, 5 * r, 7 * r)
    assert get_task(course.course_config("sr", scale=3, fast=True)).metric_kwargs == {"crop_border": 3,
                                                                                    "test_y_channel": True}
    p = get_preset("paper-sr", task="sr")
    assert (p.search.w_lr_schedule, p.search.grad_clip, p.task.ssim_weight, p.task.loss_form) == \
        ("poly_cosine", 0.0, 0.6, "authors")
    assert "0.6" in _answer("06", 3) and "no gradient clipping" in _answer("06", 3)
    tiny = course.course_config("sr", fast=True)
    assert tiny.search.grad_clip > 0 and tiny.task.loss_form == "compact"


def test_quiz_07_answers():
    from benchmarks.search_step import VARIANTS

    from hinas_lib import course
    from hinas_lib.describe import describe

    assert VARIANTS["checkpoint"][:2] == (True, True) and VARIANTS["default"][:2] == (True, False)
    cfg = course.course_config(fast=True)
    on, off = (describe(cfg.replace(space={"cell_sharing": s})) for s in (True, False))
    assert on["candidate_architectures"] == off["candidate_architectures"] and on["alpha_shape"] == off["alpha_shape"]
    assert on["cells_in_supernet"] < off["cells_in_supernet"]


def test_quiz_04_and_05_answers_hold_in_the_library():
    import json

    import torch

    from hinas_lib import plots, schedules
    from hinas_lib.config import get_preset
    from hinas_lib.course import repo_root
    from hinas_lib.derive import derive_cell
    from hinas_lib.history import search_trajectory

    q04, q05 = QUIZZES["04"], QUIZZES["05"]
    # 04/2: heatmaps in percentage points of the deviation from 1/7
    assert "0.1439" in q04[1].choices[q04[1].answer] and 1 / 7 + 0.1 / plots.PP == pytest.approx(0.1439, abs=5e-5)
    # 04/4: the authors' score, and select_from -1 meaning the end of the warm-up
    assert "SSIM + PSNR/100" in q04[3].choices[q04[3].answer]
    assert schedules.selection_score(30.0, 0.8, "ssim_psnr") == pytest.approx(1.1)
    assert get_preset("tiny").search.select_from == -1
    # 04/5: the zoo's search ends with a spread of 0.024 (a committed log)
    last = search_trajectory(repo_root() / "zoo" / "state" / "denoise-search" / "log.jsonl")[-1]
    assert last["spread_mean"] == pytest.approx(0.024, abs=5e-4) and "0.024" in q04[4].text
    # 05/1: a strong none does not count as an edge's strength
    prims = get_preset("tiny").space.primitives
    alpha = torch.zeros(5, len(prims))
    alpha[3, prims.index("none")] = 3.0
    alpha[4, prims.index("sep_conv_3x3")] = 0.5
    kept = {j for _, j in derive_cell(alpha, prims, 2)[1]}
    assert 1 not in kept and "other than none" in q05[0].choices[q05[0].answer]
    # 05/5: the zoo model's Set12 figures
    info = json.loads((repo_root() / "zoo" / "denoise-s30" / "info.json").read_text())
    m = info["results"]["Set12 sigma 30"]["mean"]
    assert m["bm3d_psnr"] - m["baseline_psnr"] == pytest.approx(1.6, abs=0.05)
    assert "about 1.6 dB above NLM" in q05[4].choices[q05[4].answer]
    margin = m["ours_psnr"] - m["bm3d_psnr"]
    assert f"{margin:.2f} dB above BM3D" in q05[4].why and 0 < margin < 0.2  # "barely above"
    assert f"{m['ours_psnr']:.2f}" in q05[4].choices[q05[4].answer]
    assert f"{m['bm3d_psnr']:.2f}" in q05[4].choices[q05[4].answer]
