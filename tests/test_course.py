"""The notebooks' glue: fast mode, course configs, helpers."""
import pytest

from hinas_lib import course
from hinas_lib.config import Config, get_preset


@pytest.mark.parametrize("value,expected", [
    (None, False), ("1", True), ("yes", True), ("true", True), ("0", False), ("", False), ("off", False),
    ("False", False),
])
def test_fast_mode_follows_the_environment(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(course.FAST_ENV, raising=False)
    else:
        monkeypatch.setenv(course.FAST_ENV, value)
    assert course.fast_mode() is expected


def test_full_mode_is_the_tiny_preset(monkeypatch):
    monkeypatch.delenv(course.FAST_ENV, raising=False)
    assert course.course_config().to_dict() == get_preset("tiny").to_dict()
    assert course.course_config("sr", 3).to_dict() == get_preset("tiny", task="sr", scale=3).to_dict()


@pytest.mark.parametrize("task,scale", [("denoise", 2), ("sr", 2), ("sr", 4)])
def test_fast_config_is_smaller_valid_and_keeps_the_space(monkeypatch, task, scale):
    monkeypatch.setenv(course.FAST_ENV, "1")
    fast = course.course_config(task, scale)
    full = course.course_config(task, scale, fast=False)
    # valid: survives a round trip through the validating constructors
    assert Config.from_dict(fast.to_dict()).to_dict() == fast.to_dict()
    assert fast.task == full.task and fast.space == full.space  # shapes/counts do not depend on the mode
    fs, ts = fast.search, full.search
    assert fs.epochs * fs.steps_per_epoch < ts.epochs * ts.steps_per_epoch
    assert fs.crop < ts.crop and fs.batch_size <= ts.batch_size
    assert 1 <= fs.warmup_epochs < fs.epochs  # at least one epoch searches the architecture
    ft, tt = fast.train, full.train
    assert ft.epochs * ft.steps_per_epoch < tt.epochs * tt.steps_per_epoch
    assert ft.crop <= tt.crop and ft.filters == tt.filters
    assert fast.search.epochs * fast.search.steps_per_epoch <= 10
    # the explicit argument wins over the environment
    assert course.course_config(task, scale, fast=False).to_dict() == full.to_dict()


def test_eval_images_are_cropped_smaller_in_fast_mode(monkeypatch):
    monkeypatch.setenv(course.FAST_ENV, "1")
    cfg = course.course_config("sr", 3)
    small = course.eval_images(cfg)
    assert [n for n, _ in small] == ["camera", "astronaut", "coffee"]
    for _, a in small:
        assert max(a.shape[:2]) <= course.EVAL_SIZE[True]
        assert a.shape[0] % 3 == 0 and a.shape[1] % 3 == 0 and a.shape[2] == 3
    monkeypatch.setenv(course.FAST_ENV, "0")
    big = course.eval_images(cfg)
    assert all(b.shape[0] > s.shape[0] for (_, b), (_, s) in zip(big, small))
    assert course.val_size() > course.val_size(fast=True)


def test_threads(monkeypatch):
    import torch
    monkeypatch.delenv(course.THREADS_ENV, raising=False)
    # full mode: the cores not busy with other jobs (here: 2 cores, one busy, then none)
    monkeypatch.setattr(course, "auto_threads", lambda: (1, "1 of 2 cores free"))
    assert course.default_threads(fast=True) == 1 and course.default_threads(fast=False) == 1
    monkeypatch.setattr(course, "auto_threads", lambda: (2, "2 of 2 cores free"))
    assert course.default_threads(fast=False) == 2
    monkeypatch.setenv(course.THREADS_ENV, "3")
    assert course.default_threads(fast=True) == 3
    monkeypatch.setenv(course.THREADS_ENV, "0")
    with pytest.raises(ValueError):
        course.default_threads()
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv(course.FAST_ENV, "1")
        assert "fast mode" in course.setup(seed=0, threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_search_panel_starts_from_the_config(monkeypatch):
    pytest.importorskip("ipywidgets")
    monkeypatch.setenv(course.FAST_ENV, "1")
    cfg = course.course_config()
    seen = []
    panel = course.search_panel(cfg, on_run=seen.append)
    got = panel.config()
    assert got.space == cfg.space and got.task == cfg.task
    for k in ("epochs", "warmup_epochs", "steps_per_epoch", "batch_size", "crop", "w_lr", "a_lr"):
        assert getattr(got.search, k) == getattr(cfg.search, k)
    assert panel.click_run() is not None and len(seen) == 1
    sr = course.course_config("sr", 3)
    assert course.search_panel(sr).config().task.scale == 3


def _record(epoch, alpha, beta, arch=True):
    return {"epoch": epoch, "train_loss": 1.0 / (epoch + 1), "val_loss": 1.1 / (epoch + 1),
            "arch_loss": 0.5 if arch else None, "val_psnr": 20.0 + epoch, "alpha": alpha.tolist(),
            "beta": beta.tolist()}


def test_live_plot_redraws_inside_its_widget_every_epoch(monkeypatch):
    """The curves and heatmaps must change after epoch 0 (display handles froze them
    inside the search panel): each Output holds one PNG, replaced every epoch."""
    import matplotlib
    matplotlib.use("Agg")
    import torch
    pytest.importorskip("ipywidgets")
    from hinas_lib.widgets import shown_images
    monkeypatch.setenv(course.FAST_ENV, "1")
    cfg = course.course_config()
    live = course.LivePlot(cfg)
    assert set(live.outputs) == set(course.LivePlot.DEFAULT_KINDS)
    g = torch.Generator().manual_seed(0)
    seen = {k: [] for k in live.kinds}
    for epoch in range(3):
        live(_record(epoch, torch.randn(2, 5, 7, generator=g), torch.randn(2, 3, 3, generator=g), arch=epoch > 0))
        for kind in live.kinds:
            (png,) = shown_images(live.outputs[kind])  # replaced, not appended
            seen[kind].append(png)
        assert f"epoch {epoch + 1} of {cfg.search.epochs}" in live.status.value
    for kind, pngs in seen.items():
        assert len(set(pngs)) == 3, f"{kind} did not change between epochs"
    assert len(live.history) == 3
    assert len(live.figure("losses").axes[0].lines[0].get_xdata()) == 3
    for kind in course.LivePlot.KINDS:  # every kind can be drawn
        assert live.figure(kind) is not None
    with pytest.raises(ValueError):
        course.LivePlot(cfg, kinds=("nope",))


def test_tables():
    text = course.format_rows([{"a": 1.23456, "b": "x"}], ["a", "b"], {"a": ".2f"})
    assert text.splitlines()[2].split() == ["1.23", "x"]


@pytest.mark.parametrize("task", ["denoise", "sr"])
def test_shipped_model_beats_its_baseline_and_says_where_it_comes_from(monkeypatch, task):
    monkeypatch.setenv(course.FAST_ENV, "1")
    cfg = course.course_config(task)
    name = course.SHIPPED[task]
    res, info = course.evaluate_shipped(name, cfg, size=96)
    assert res["mean"]["ours_psnr"] > res["mean"]["baseline_psnr"]
    text = course.provenance(info)
    assert text.startswith(f"shipped model (zoo/{name}") and "zoo/RESULTS.md" in text
    # what it cost, read from info.json, not hard-coded
    if "cpu_hours" in info:
        assert f"{info['cpu_hours']['total']:.1f} CPU-hours: search" in text
    else:
        assert f"trained {info['train_seconds'] / 60:.0f} CPU-minutes" in text
    with pytest.raises(ValueError, match="not for this notebook"):
        course.evaluate_shipped(course.SHIPPED["sr" if task == "denoise" else "denoise"], cfg, size=48)


def test_design_line_names_the_style():
    cfg = course.course_config(fast=True)
    assert course.design(cfg).startswith("design compact")
    assert "README" in course.design(cfg)


def test_setup_mentions_hinas_threads(monkeypatch):
    import torch
    monkeypatch.delenv(course.THREADS_ENV, raising=False)
    before = torch.get_num_threads()
    try:
        assert "HINAS_THREADS unset" in course.setup(threads=1)
        monkeypatch.setenv(course.THREADS_ENV, "1")
        assert "HINAS_THREADS=1" in course.setup()
    finally:
        torch.set_num_threads(before)


def test_check_answers_never_raises(capsys):
    import torch

    def verdict(*args, **kw):
        assert course.check(*args, **kw) is None  # printed only: a cell ending in check() shows it once
        return capsys.readouterr().out.strip()

    assert verdict(None, 3, "hint") == course.NOT_ANSWERED
    assert verdict(3, 3, "hint") == "correct"
    assert verdict(4, 3, "count again") == "not quite: count again"
    assert verdict((1, 2), [1, 2], "h") == "correct" and verdict([1], [1, 2], "h").startswith("not quite")
    assert verdict(0.3001, 0.3, "h", tol=1e-3) == "correct"
    assert verdict(torch.ones(2), torch.ones(2), "h") == "correct"
    assert verdict(torch.ones(3), torch.ones(2), "h").startswith("not quite")
    assert verdict("abc", 1.0, "h").startswith("not quite")  # wrong type: a verdict, not an exception
    assert verdict([1, 2], lambda a: sum(a) == 3, "h") == "correct"
    assert verdict([1], lambda a: a[5] == 0, "h").startswith("not quite: h (comparing raised IndexError")


def test_the_names_notebooks_call_stay_on_course_and_viz():
    """Saved notebooks call ``course.X`` and ``viz.X``; the names live in their own modules now."""
    from hinas_lib import exercises, liveplot, viz
    assert [n for n in course.__all__ if not hasattr(course, n)] == []
    assert [n for n in viz.__all__ if not hasattr(viz, n)] == []
    assert course.check is exercises.check and course.LivePlot is liveplot.LivePlot


def test_notebook_4_search_and_its_run_folder_per_mode(monkeypatch):
    """Notebook 5 loads notebook 4's search from a fixed folder, one per mode (their configs differ)."""
    fast, full = course.search_loop_config(fast=True), course.search_loop_config(fast=False)
    assert fast.search.epochs == 4 and fast.search.warmup_epochs == 1
    assert full.to_dict() == course.course_config(fast=False).to_dict()
    assert course.search_loop_dir(fast=False) == course.repo_root() / "runs" / "course" / "04-search"
    assert course.search_loop_dir(fast=True).name == "04-search-fast"
    monkeypatch.setenv(course.FAST_ENV, "1")
    assert course.search_loop_config().to_dict() == fast.to_dict()


def test_retrained_ablation_is_judged_against_the_seed_spread():
    from hinas_lib.ablation import compare_retrained, retrain_ablation
    from hinas_lib.genotype import default_genotype

    cfg = course.course_config(fast=True).replace(train={"epochs": 1, "steps_per_epoch": 2, "crop": 16})
    sp = cfg.space
    rows = [{"variant": v, "genotype": default_genotype(sp.layers, sp.blocks, sp.width_factors)} for v in ("a", "b")]
    images = course.eval_images(cfg, 24)[:1]
    runs = retrain_ablation(cfg, rows, ["a", "b"], images, seeds=(0, 1), val_size=16)
    assert [(r["variant"], r["seed"]) for r in runs] == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert runs[0]["psnr"] != runs[1]["psnr"]            # the seed changes the network
    assert runs[0]["psnr"] == pytest.approx(runs[2]["psnr"])   # same genotype, same seed: same network
    with pytest.raises(ValueError, match="not in the ablation's rows"):
        retrain_ablation(cfg, rows, ["c"], images)

    fake = [{"variant": "a", "psnr": p} for p in (20.0, 21.0)] + [{"variant": "b", "psnr": p} for p in (20.2, 21.2)]
    c = compare_retrained(fake, "a", "b")
    assert c["diff"] == pytest.approx(0.2) and c["noise"] == pytest.approx(1.0) and c["verdict"] == "within noise"
    fake[2]["psnr"], fake[3]["psnr"] = 23.0, 23.5
    assert compare_retrained(fake, "a", "b")["verdict"] == "b better"
    assert compare_retrained(fake, "b", "a")["verdict"] == "b better"
    assert compare_retrained(fake[::2], "a", "b")["verdict"] == "no noise estimate (one seed)"
