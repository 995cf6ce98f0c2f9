"""End-to-end engine tests: search, resume, retrain, evaluate, restore, CLI, bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hinas_lib import data, viz
from hinas_lib.checkpoint import CheckpointError, load_checkpoint
from hinas_lib.cli import main
from hinas_lib.config import Config, DataConfig, SearchConfig, SpaceConfig, TaskConfig, TrainConfig
from hinas_lib.config import get_preset
from hinas_lib.datasets import dihedral, undo_dihedral
from hinas_lib.evaluate import evaluate, run_model
from hinas_lib.inference import receptive_radius, tiled_forward
from hinas_lib.model_files import load_model
from hinas_lib.genotype import Genotype
from hinas_lib.network import CompactNet
from hinas_lib.runtime import TrainingError
from hinas_lib.search import Searcher
from hinas_lib.tasks import get_task
from hinas_lib.train import Trainer


def _smooth_image(rng, h, w, channels):
    """A smooth random picture (sum of a few gradients and blobs), in [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    planes = []
    for _ in range(channels):
        a = rng.uniform(-1, 1, 4)
        img = a[0] * xx + a[1] * yy + 0.3 * np.sin(6 * a[2] * xx + 4 * a[3] * yy)
        planes.append((img - img.min()) / (np.ptp(img) + 1e-8))
    img = planes[0] if channels == 1 else np.stack(planes, -1)
    return img.astype(np.float32)


@pytest.fixture(scope="module")
def image_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("val", 2), ("test", 2)):
        for c, tag in ((1, "grey"), (3, "rgb")):
            d = root / tag / split
            d.mkdir(parents=True)
            for i in range(n):
                data.save_image(d / f"img{i}.png", _smooth_image(rng, 36, 40, c))
    return root


def small_config(image_dirs, task="denoise", scale=2, **search) -> Config:
    tag = "grey" if task == "denoise" else "rgb"
    d = image_dirs / tag
    s = dict(epochs=3, warmup_epochs=1, steps_per_epoch=2, batch_size=2, crop=16 if task == "denoise" else 8,
             val_batches=1, checkpoint_every=1)
    s.update(search)
    return Config(
        name="test",
        task=TaskConfig(task=task, channels=1 if task == "denoise" else 3, scale=scale),
        space=SpaceConfig(layers=2, blocks=2, filters=4),
        search=SearchConfig(**s),
        train=TrainConfig(filters=4, epochs=2, steps_per_epoch=3, batch_size=2, crop=16 if task == "denoise" else 8),
        data=DataConfig(train_dir=str(d / "train"), val_dir=str(d / "val"), test_dir=str(d / "test")),
    )


def retrain_genotype() -> Genotype:
    """Two cells of convs, a separable conv and a skip, the second one wider: what the retraining
    tests train."""
    cell = ((("conv_3x3", 1), ("skip_connect", 0)), (("sep_conv_3x3", 1), ("conv_3x3", 2)))
    return Genotype(cells=(cell, cell), path=(0, 1), width_factors=(1.0, 1.5, 2.0))


def test_search_writes_run_directory(image_dirs, tmp_path):
    cfg = small_config(image_dirs)
    res = Searcher(cfg, tmp_path / "run", progress=False, write_figures=viz.write_search_figures).run()
    out = tmp_path / "run"
    for name in ("genotype.json", "genotype_best.json", "config.yaml", "log.jsonl", "checkpoint.pt"):
        assert (out / name).is_file(), name
    assert Genotype.load(out / "genotype.json") == res.genotype
    assert Config.from_yaml(out / "config.yaml") == cfg
    log = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 1, 2]
    assert log[0]["arch_loss"] is None and log[1]["arch_loss"] is not None  # warm-up, then search
    assert np.array(log[-1]["alpha"]).shape == (2, 5, 7)
    assert all(np.isfinite(r["val_psnr"]) for r in log)
    # the architecture moved only after warm-up
    a0, a1 = np.array(log[0]["alpha"]), np.array(log[-1]["alpha"])
    assert not np.allclose(a0, a1)
    assert load_checkpoint(out / "checkpoint.pt", kind="search")["step"] == 6
    assert (out / "figures" / "alpha.png").is_file()


@pytest.mark.parametrize("stop", [1, 3, 4])
def test_resume_is_exact(image_dirs, tmp_path, stop):
    cfg = small_config(image_dirs)
    full = Searcher(cfg, tmp_path / "full", progress=False, write_figures=False).run()
    Searcher(cfg, tmp_path / "cut", progress=False, write_figures=False).run(stop_after=stop)
    resumed = Searcher(cfg, tmp_path / "cut", progress=False, resume=True, write_figures=False).run()
    assert torch.equal(full.net.alpha, resumed.net.alpha)
    assert torch.equal(full.net.beta, resumed.net.beta)
    assert full.genotype == resumed.genotype
    for (k, a), (_, b) in zip(full.net.state_dict().items(), resumed.net.state_dict().items()):
        assert torch.equal(a, b), k
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("elapsed_s", "cpu_s", "mem_mib")} for r in h]
    assert strip(full.history) == strip(resumed.history)
    assert (tmp_path / "full" / "log.jsonl").read_text().count("\n") == 3
    assert (tmp_path / "cut" / "log.jsonl").read_text().count("\n") == 3


def test_search_refuses_to_overwrite_and_checks_config(image_dirs, tmp_path):
    cfg = small_config(image_dirs)
    Searcher(cfg, tmp_path / "r", progress=False).run(stop_after=1)
    with pytest.raises(CheckpointError, match="--resume"):
        Searcher(cfg, tmp_path / "r", progress=False)
    other = cfg.replace(space={"filters": 6})
    with pytest.raises(CheckpointError, match="another configuration"):
        Searcher(other, tmp_path / "r", progress=False, resume=True)


def test_nan_loss_is_reported_and_checkpoint_survives(image_dirs, tmp_path):
    cfg = small_config(image_dirs)
    s = Searcher(cfg, tmp_path / "r", progress=False, write_figures=False)
    s.run(stop_after=2)
    before = (tmp_path / "r" / "checkpoint.pt").read_bytes()
    with torch.no_grad():
        s.net.stem.weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match="NaN|nan"):
        s.run()
    assert (tmp_path / "r" / "checkpoint.pt").read_bytes() == before


@pytest.mark.parametrize("task,scale", [("denoise", 2), ("sr", 2), ("sr", 3)])
def test_search_train_eval_end_to_end(image_dirs, tmp_path, task, scale):
    cfg = small_config(image_dirs, task, scale, epochs=2, warmup_epochs=1)
    res = Searcher(cfg, tmp_path / "s", progress=False, write_figures=False).run()
    tr = Trainer(cfg, res.genotype, tmp_path / "t", progress=False, val_size=0)
    out = tr.run()
    assert (tmp_path / "t" / "model.pt").is_file()
    net, cfg2, ckpt = load_model(tmp_path / "t" / "model.pt")
    assert cfg2 == cfg and Genotype.from_dict(ckpt["genotype"]) == res.genotype
    # the stored genotype matches the stored weights (load_state_dict is strict)
    assert sum(p.numel() for p in net.parameters()) == out.net.num_params()
    images = data.load_folder(image_dirs / ("grey" if task == "denoise" else "rgb") / "test", cfg.task.channels)
    ev = evaluate(net, cfg, images, progress=False)
    assert len(ev["images"]) == 2
    for k in ("input_psnr", "baseline_psnr", "ours_psnr", "ours_ssim"):
        assert np.isfinite(ev["mean"][k])


def test_train_resume_is_exact(image_dirs, tmp_path):
    cfg = small_config(image_dirs)
    g = retrain_genotype()
    full = Trainer(cfg, g, tmp_path / "a", progress=False, val_size=0).run()
    Trainer(cfg, g, tmp_path / "b", progress=False, val_size=0).run(stop_after=4)
    res = Trainer(cfg, g, tmp_path / "b", progress=False, val_size=0, resume=True).run()
    for (k, a), (_, b) in zip(full.net.state_dict().items(), res.net.state_dict().items()):
        assert torch.equal(a, b), k
    assert full.best_psnr == res.best_psnr


def test_retraining_validates_on_the_held_out_images(image_dirs, tmp_path):
    """The paper presets hold images out of both search halves (``data.holdout_fraction``):
    retraining trains on the two halves together and validates on the held-out ones only."""
    from hinas_lib.splits import split_images
    cfg = small_config(image_dirs).replace(data={"val_dir": None, "holdout_fraction": 0.25})
    sp = split_images(cfg)
    hold = {n for n, _ in sp["holdout"]}
    assert hold and sp["train"] and sp["val"]
    tr = Trainer(cfg, retrain_genotype(), tmp_path / "t", progress=False, val_size=0)
    assert sorted(tr.train_ds.names) == sorted(n for n, _ in sp["train"] + sp["val"])
    assert sorted(name for _, _, name in tr.val_set) == sorted(hold)


def test_retraining_starts_from_given_weights(image_dirs, tmp_path):
    """``init_weights`` (the zoo's branches and warm restarts) replaces the random start, and
    the run then trains on from it."""
    cfg = small_config(image_dirs)
    g = retrain_genotype()
    first = Trainer(cfg, g, tmp_path / "a", progress=False, val_size=0).run()
    start = {k: v.clone() for k, v in first.net.state_dict().items()}
    tr = Trainer(cfg.replace(train={"seed": 7}), g, tmp_path / "b", progress=False, val_size=0, init_weights=start)
    for k, v in tr.net.state_dict().items():
        assert torch.equal(v, start[k]), k
    tr.run(stop_after=1)
    assert any(not torch.equal(v, start[k]) for k, v in tr.net.state_dict().items())


@pytest.mark.parametrize("field,limit", [("grad_clip_value", 1e-4), ("grad_clip", 1e-3)])
def test_retraining_clips_gradients(image_dirs, tmp_path, field, limit):
    """The authors' retraining clips each gradient value to +-5 (``grad_clip_value``, the
    paper presets); ``grad_clip`` bounds the norm. The first step's gradients, clipped, are
    the unclipped run's clamped (value) or scaled down to the limit (norm)."""
    cfg = small_config(image_dirs)
    g = retrain_genotype()

    def first_grads(c, folder):
        tr = Trainer(c, g, tmp_path / folder, progress=False, val_size=0)
        tr.run(stop_after=1)  # the step's gradients stay on the parameters until the next step
        return [p.grad.clone() for p in tr.net.parameters() if p.grad is not None]

    free = first_grads(cfg, "free")
    clipped = first_grads(cfg.replace(train={field: limit}), "clipped")
    assert len(clipped) == len(free) > 0
    if field == "grad_clip_value":
        assert max(float(x.abs().max()) for x in free) > 10 * limit  # the limit bites
        for a, b in zip(clipped, free):
            torch.testing.assert_close(a, b.clamp(-limit, limit))
    else:
        norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(x) for x in free])))
        assert norm > 10 * limit
        for a, b in zip(clipped, free):
            torch.testing.assert_close(a, b * (limit / norm), rtol=1e-4, atol=1e-12)


@pytest.mark.parametrize("task,scale,channels", [("denoise", 1, 1), ("sr", 2, 3), ("sr", 3, 3)])
def test_tiled_inference_equals_whole(task, scale, channels):
    torch.manual_seed(0)
    cfg = Config(task=TaskConfig(task=task, channels=channels, scale=max(scale, 2) if task == "sr" else 2),
                 space=SpaceConfig(layers=2, blocks=2, filters=4), train=TrainConfig(filters=4))
    cell = ((("dil_conv_5x5", 1), ("sep_conv_3x3", 0)), (("conv_3x3", 2), ("skip_connect", 1)))
    g = Genotype(cells=(cell, cell), path=(0, 1), width_factors=(1.0, 1.5, 2.0))
    net = CompactNet(g, cfg).eval()
    r = receptive_radius(net, channels)
    assert r > 4
    x = torch.rand(1, channels, 77, 85)
    s = cfg.task.scale if task == "sr" else 1
    with torch.no_grad():
        whole = net(x)
    tiled = tiled_forward(net, x, tile=32, overlap=r, scale=s)
    assert tiled.shape == whole.shape
    torch.testing.assert_close(tiled, whole, rtol=1e-5, atol=1e-5)
    # too little context does change the result: the overlap is what makes them equal
    short = tiled_forward(net, x, tile=32, overlap=1, scale=s)
    assert (short - whole).abs().max() > 1e-4
    # the default path (no overlap given) measures the radius itself, under no_grad too
    with torch.no_grad():
        auto = tiled_forward(net, x, tile=32, scale=s)
    torch.testing.assert_close(auto, whole, rtol=1e-5, atol=1e-5)


def test_tiles_are_near_equal_largest_first_and_exact():
    """1600x1200 in tiles of at most 512: 4 x 3 tiles of 400 (no thin strip at the edge), each
    with its context; the interior tiles (the largest) run first, so the smaller ones reuse the
    memory they freed; the result is the whole-image one."""
    conv = torch.nn.Conv2d(1, 1, 3, padding=1).eval()
    seen = []

    def net(t):
        seen.append(tuple(t.shape[-2:]))
        return conv(t)

    torch.nn.init.normal_(conv.weight)
    x = torch.rand(1, 1, 1200, 1600)
    out = tiled_forward(net, x, tile=512, overlap=1)
    with torch.no_grad():
        assert torch.allclose(out, conv(x), atol=1e-6)
    assert len(seen) == 12
    areas = [h * w for h, w in seen]
    assert areas == sorted(areas, reverse=True) and seen[0] == (402, 402)
    assert {h for h, _ in seen} == {401, 402} and {w for _, w in seen} == {401, 402}


def test_tiles_blend_when_the_field_exceeds_max_overlap():
    """A network that sees further than max_overlap: tiles are blended, not cut,
    so the result stays close to whole-image inference with no seam."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(*[torch.nn.Conv2d(1, 1, 3, padding=2, dilation=2) for _ in range(6)]).eval()
    assert receptive_radius(net, 1) == 12
    x = torch.rand(1, 1, 70, 101)
    with torch.no_grad():
        whole = net(x)
    cut = tiled_forward(net, x, tile=32, overlap=4)
    blended = tiled_forward(net, x, tile=32, max_overlap=4)
    assert (blended - whole).abs().mean() < 2 * (cut - whole).abs().mean()  # same order of error

    # 101 columns in tiles of at most 32: four of 26 (near-equal), boundaries 25|26, 51|52, 77|78
    def seam(out):  # mean jump of the error across the tile boundary columns
        d = (out - whole).diff(dim=-1).abs().mean(dim=(0, 1, 2))
        return float(d[[25, 51, 77]].mean() / d.median())

    assert seam(blended) < 0.7 * seam(cut)


def test_restore_cli_on_an_image_larger_than_the_tile(image_dirs, tmp_path, capsys):
    """The default restore path (512-px tiles, radius measured) on a 600x530 photo."""
    cfg = small_config(image_dirs, epochs=1, warmup_epochs=0)
    cell = ((("conv_3x3", 1), ("skip_connect", 0)), (("dil_conv_3x3", 2), ("skip_connect", 1)))
    Trainer(cfg, Genotype(cells=(cell, cell), path=(0, 1)), tmp_path / "m", progress=False, val_size=0).run()
    big = tmp_path / "big.png"
    rng = np.random.default_rng(1)
    data.save_image(big, _smooth_image(rng, 530, 600, 1))
    assert main(["restore", "--model", str(tmp_path / "m" / "model.pt"), str(big), str(tmp_path / "o.png")]) == 0
    tiled = data.load_image(tmp_path / "o.png", channels=None)
    assert tiled.shape == (530, 600)
    assert main(["restore", "--model", str(tmp_path / "m" / "model.pt"), str(big), str(tmp_path / "w.png"),
                 "--tile", "0"]) == 0
    whole = data.load_image(tmp_path / "w.png", channels=None)
    assert np.abs(tiled - whole).max() <= 1 / 255 + 1e-6  # equal up to 8-bit rounding


def test_undo_dihedral_inverts_each_of_the_eight_views():
    x = torch.rand(2, 1, 5, 7)
    views = [dihedral(x, k) for k in range(8)]
    assert all(torch.equal(undo_dihedral(v, k), x) for k, v in enumerate(views))
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8  # eight different views


@pytest.mark.parametrize("task", ["denoise", "sr"])
def test_self_ensemble_is_the_mean_of_the_eight_views_turned_back(task):
    """x8 self-ensemble: the output on each flipped/rotated input is turned back and averaged;
    tiling gives the same result; a network that is already equivariant is unchanged."""
    torch.manual_seed(0)
    cfg = get_preset("tiny", task)
    s = get_task(cfg).scale
    net = torch.nn.Sequential(torch.nn.Conv2d(1, s * s, 3, padding=1), torch.nn.PixelShuffle(s)).eval()
    img = torch.rand(1, 45, 70)
    with torch.no_grad():
        want = sum(undo_dihedral(net(dihedral(img[None], k)), k) for k in range(8))[0] / 8
        plain = net(img[None])[0]
    got = run_model(net, img, cfg, self_ensemble=True)
    assert torch.allclose(got, want.clamp(0, 1), atol=1e-6)
    assert (got - plain.clamp(0, 1)).abs().max() > 1e-3  # a random kernel is not equivariant
    assert torch.allclose(run_model(net, img, cfg, tile=32, self_ensemble=True), got, atol=1e-5)
    if task == "denoise":
        sym = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False).eval()
        with torch.no_grad():
            sym.weight.copy_(torch.tensor([[1., 2., 1.], [2., 4., 2.], [1., 2., 1.]]) / 16)
        assert torch.allclose(run_model(sym, img, cfg, self_ensemble=True), run_model(sym, img, cfg), atol=1e-6)


def test_cli_contract(image_dirs, tmp_path, capsys):
    cfg = small_config(image_dirs, epochs=2, warmup_epochs=1)
    cfg_path = tmp_path / "cfg.yaml"
    cfg.to_yaml(cfg_path)
    run, run2 = tmp_path / "RUN", tmp_path / "RUN2"
    assert main(["search", "--config", str(cfg_path), "--out", str(run), "--no-progress"]) == 0
    assert (run / "genotype.json").is_file() and (run / "config.yaml").is_file()
    assert main(["train", "--config", str(cfg_path), "--genotype", str(run / "genotype.json"),
                 "--out", str(run2), "--no-progress", "--val-size", "0"]) == 0
    assert (run2 / "model.pt").is_file()
    capsys.readouterr()
    assert main(["eval", "--model", str(run2 / "model.pt"), "--data", str(image_dirs / "grey" / "test"),
                 "--sigma", "30", "--json", "--no-progress"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert {"input_psnr", "baseline_psnr", "ours_psnr"} <= set(res["mean"]) and len(res["images"]) == 2
    src = image_dirs / "grey" / "test" / "img0.png"
    assert main(["restore", "--model", str(run2 / "model.pt"), str(src), str(tmp_path / "out.png")]) == 0
    out = data.load_image(tmp_path / "out.png", channels=None)
    assert out.shape == data.load_image(src, channels=1).shape
    assert main(["restore", "--model", str(run2 / "model.pt"), str(src), str(tmp_path / "x8.png"),
                 "--self-ensemble"]) == 0
    x8 = data.load_image(tmp_path / "x8.png", channels=None)
    assert x8.shape == out.shape and np.abs(x8 - out).max() > 0
    capsys.readouterr()
    assert main(["eval", "--model", str(run2 / "model.pt"), "--data", str(image_dirs / "grey" / "test"),
                 "--sigma", "30", "--json", "--no-progress", "--self-ensemble"]) == 0
    res8 = json.loads(capsys.readouterr().out)
    assert res8["self_ensemble"] and not res["self_ensemble"] and res8["labels"]["ours"] == "HiNAS x8"
    assert res8["mean"]["input_psnr"] == res["mean"]["input_psnr"]  # same noisy images
    # a denoising model asked to do SR fails with a message
    assert main(["eval", "--model", str(run2 / "model.pt"), "--task", "sr"]) == 2
    assert "holds a 'denoise' model" in capsys.readouterr().err


def test_cli_stop_and_resume_with_the_runs_own_config(image_dirs, tmp_path, capsys):
    """`--stop-after N` says where it stopped; `--resume` with only `--out` reads the run's
    config.yaml and ends where an uninterrupted run ends (search and train)."""
    cfg = small_config(image_dirs, epochs=2, warmup_epochs=1)
    cfg_path = tmp_path / "cfg.yaml"
    cfg.to_yaml(cfg_path)
    whole, half = tmp_path / "WHOLE", tmp_path / "HALF"
    assert main(["search", "--config", str(cfg_path), "--out", str(whole), "--no-progress"]) == 0
    assert main(["search", "--config", str(cfg_path), "--out", str(half), "--no-progress", "--stop-after", "1"]) == 0
    total = cfg.search.epochs * cfg.search.steps_per_epoch
    assert f"stopped at step 1/{total}; continue with --resume" in capsys.readouterr().out
    assert not (half / "genotype.json").exists()
    assert main(["search", "--out", str(half), "--resume", "--no-progress"]) == 0  # no --config: the run's own
    assert "genotype written to" in capsys.readouterr().out
    assert Genotype.load(half / "genotype.json") == Genotype.load(whole / "genotype.json")
    a = load_checkpoint(whole / "checkpoint.pt", kind="search")
    b = load_checkpoint(half / "checkpoint.pt", kind="search")
    for k, v in a["model"].items():  # alpha, beta, weights and BN statistics
        assert torch.equal(v, b["model"][k]), k

    geno = str(whole / "genotype.json")
    t_whole, t_half = tmp_path / "T_WHOLE", tmp_path / "T_HALF"
    train = ["train", "--genotype", geno, "--no-progress", "--val-size", "0"]
    assert main([*train, "--config", str(cfg_path), "--out", str(t_whole)]) == 0
    assert main([*train, "--config", str(cfg_path), "--out", str(t_half), "--stop-after", "2"]) == 0
    total = cfg.train.epochs * cfg.train.steps_per_epoch
    assert f"stopped at step 2/{total}; continue with --resume" in capsys.readouterr().out
    assert main([*train, "--out", str(t_half), "--resume"]) == 0
    assert "model written to" in capsys.readouterr().out
    wa = load_checkpoint(t_whole / "model.pt", kind="model")["state_dict"]
    wb = load_checkpoint(t_half / "model.pt", kind="model")["state_dict"]
    for k, v in wa.items():
        assert torch.equal(v, wb[k]), k


def test_cli_bad_inputs(image_dirs, tmp_path, capsys):
    assert main(["describe", "--preset", "nope"]) == 2
    assert "unknown preset" in capsys.readouterr().err
    assert main(["describe", "--preset", "tiny", "--set", "space.width_factors=[2, 1]"]) == 2
    assert "space.width_factors" in capsys.readouterr().err
    assert main(["describe", "--preset", "tiny", "--task", "sr", "--scale", "5"]) == 2
    assert "task.scale" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"cells": [[[["conv_9x9", 0], ["conv_3x3", 1]]]], "path": [0]}')
    assert main(["train", "--preset", "tiny", "--genotype", str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "conv_9x9" in capsys.readouterr().err
    # an image smaller than the crop names the file and both sizes
    small = tmp_path / "small"
    small.mkdir()
    data.save_image(small / "tiny.png", np.zeros((10, 12), np.float32))
    data.save_image(small / "tiny2.png", np.zeros((10, 12), np.float32))
    assert main(["search", "--preset", "tiny", "--set", f"data.train_dir={small}", "--out",
                 str(tmp_path / "y"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "tiny" in err and "40" in err
    # an RGB image for a grey model: clear message unless --convert
    cfg = small_config(image_dirs, epochs=1, warmup_epochs=0)
    cell = ((("conv_3x3", 1), ("skip_connect", 0)), (("conv_3x3", 2), ("skip_connect", 1)))
    g = Genotype(cells=(cell, cell), path=(0, 0))
    Trainer(cfg, g, tmp_path / "m", progress=False, val_size=0).run()
    rgb = image_dirs / "rgb" / "test" / "img0.png"
    assert main(["restore", "--model", str(tmp_path / "m" / "model.pt"), str(rgb), str(tmp_path / "o.png")]) == 2
    assert "expects grey" in capsys.readouterr().err
    assert main(["restore", "--model", str(tmp_path / "m" / "model.pt"), str(rgb), str(tmp_path / "o.png"),
                 "--convert"]) == 0
    # unreadable file
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    assert main(["restore", "--model", str(tmp_path / "m" / "model.pt"), str(junk), str(tmp_path / "o.png")]) == 2
    assert "junk.png" in capsys.readouterr().err
