"""Task plug-ins: the registry, ``with_level``, the JPEG task and paired (real degraded) data."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hinas_lib import data
from hinas_lib.cli import main as cli_main
from hinas_lib.config import ConfigError, get_preset
from hinas_lib.datasets import (PairedEvalDataset, PairedPatchDataset, centre_crop_pair, match_inputs,
                                real_inputs)
from hinas_lib.evaluate import evaluate
from hinas_lib.genotype import Genotype
from hinas_lib.model_files import save_model
from hinas_lib.network import build_network
from hinas_lib.tasks import (TASKS, JpegDeblock, get_task, jpeg_compress, register_task, task_class,
                             with_level)
from hinas_lib.tasks.base import Task

ROOT = Path(__file__).resolve().parents[1]


def _images(n=3, size=(40, 56), channels=1, seed=0):
    rng = np.random.default_rng(seed)
    shape = size if channels == 1 else size + (3,)
    # smooth-ish pictures with edges, as 8-bit values (what files hold)
    out = []
    for i in range(n):
        a = rng.integers(0, 256, size=shape).astype(np.float32)
        a[: size[0] // 2] = 200.0
        out.append((f"img{i}.png", (a / 255.0).astype(np.float32)))
    return out


# ----------------------------------------------------------------------------- registry, levels

def test_every_task_is_registered_by_its_module_and_asked_not_named():
    assert set(TASKS) == {"denoise", "sr", "jpeg"}
    for name, cls in TASKS.items():
        assert cls.name == name and cls.__module__ == f"hinas_lib.tasks.{'sr' if name == 'sr' else name}"
        assert cls.level_flag.startswith("--") and cls.tiny_crops and cls.fast_crops
        cfg = get_preset("tiny", name)  # every task has a tiny preset sized by the task
        assert cfg.search.crop == cls.tiny_crops[0] and cfg.train.crop == cls.tiny_crops[1]
    with pytest.raises(ValueError, match="registered twice"):
        @register_task
        class Other(Task):
            name = "jpeg"


@pytest.mark.parametrize("task,level,field,expect", [
    ("denoise", 50, "eval_sigma", 50.0), ("sr", 3, "scale", 3), ("jpeg", 20, "eval_quality", 20)])
def test_with_level_sets_each_tasks_level(task, level, field, expect):
    cfg = with_level(get_preset("tiny", task), level)
    assert getattr(cfg.task, field) == expect
    assert get_task(cfg).level() == expect


def test_with_level_clears_a_blind_range_and_refuses_the_wrong_flag():
    blind = get_preset("tiny").replace(task={"sigmas": [50.0], "sigma_range": [0.0, 75.0]})
    cfg = with_level(blind, 25, flag="--sigma")
    assert cfg.task.sigma_range is None and cfg.task.sigmas == (25.0,) and cfg.task.eval_sigma == 25.0
    with pytest.raises(ConfigError, match=r"^--quality: the config is for denoise .*--sigma"):
        with_level(blind, 20, flag="--quality")
    with pytest.raises(ConfigError, match="task.qualities"):
        with_level(get_preset("tiny", "jpeg"), 101)
    with pytest.raises(ConfigError, match="integer"):
        with_level(get_preset("tiny", "jpeg"), 10.5)


def test_cli_quality_reaches_the_config_and_is_refused_for_denoising(tmp_path, capsys):
    from hinas_lib.cli import build_config, make_parser
    args = make_parser().parse_args(["describe", "--task", "jpeg", "--quality", "30"])
    t = build_config(args).task
    assert t.qualities == (30,) and t.eval_quality == 30
    assert cli_main(["describe", "--quality", "30"]) == 2
    assert "--quality: the config is for denoise" in capsys.readouterr().err
    assert cli_main(["describe", "--task", "jpeg", "--quality", "0"]) == 2


def test_qualities_are_type_checked_for_every_task():
    with pytest.raises(ConfigError, match="task.qualities"):
        get_preset("tiny").replace(task={"qualities": ["ten"]})


# ----------------------------------------------------------------------------- the JPEG task

def test_jpeg_compress_is_pillows_jpeg_of_the_8bit_image():
    img = torch.from_numpy(_images(1, channels=1)[0][1])[None]
    for q in (10, 40, 90):
        out = jpeg_compress(img, q)
        buf = io.BytesIO()
        Image.fromarray((img[0].numpy() * 255).round().astype(np.uint8)).save(buf, format="JPEG", quality=q)
        ref = np.asarray(Image.open(buf), dtype=np.float32) / 255
        assert torch.equal(out[0], torch.from_numpy(ref))
    errs = [float((jpeg_compress(img, q) - img).abs().mean()) for q in (10, 20, 40, 90)]
    assert errs == sorted(errs, reverse=True) and errs[-1] < errs[0] / 2  # more quality, less error
    rgb = torch.rand(3, 24, 32)
    assert jpeg_compress(rgb, 30).shape == (3, 24, 32)
    with pytest.raises(ValueError, match="1..100"):
        jpeg_compress(img, 0)


def test_jpeg_task_draws_its_qualities_and_evaluates_deterministically():
    cfg = get_preset("tiny", "jpeg").replace(task={"qualities": [10, 40]})
    task = get_task(cfg)
    g = torch.Generator().manual_seed(0)
    assert {task.draw_quality(g) for _ in range(40)} == {10, 40}
    gt = torch.from_numpy(_images(1)[0][1])[None]
    a, b = task.eval_pair(gt, "x"), task.eval_pair(gt, "y")
    assert torch.equal(a[0], b[0]) and torch.equal(a[0], jpeg_compress(gt, 10))  # no seed: JPEG is deterministic
    assert not torch.equal(task.eval_pair(gt, "x", level=40)[0], a[0])
    assert task.format_level(10) == "q10" and task.describe_level() == "quality=10"


def test_jpeg_tv_baseline_improves_on_the_jpeg_input():
    # a smooth picture with an edge: blocking is what TV removes
    y, x = np.mgrid[0:64, 0:64]
    img = (0.3 + 0.4 * (x > 30) + 0.2 * np.sin(y / 9.0)).astype(np.float32)
    task = get_task(get_preset("tiny", "jpeg"))
    gt = torch.from_numpy(img)[None]
    lq, _ = task.eval_pair(gt, "edge")
    mse = lambda a: float(((a - gt) ** 2).mean())  # noqa: E731
    assert mse(task.baseline(lq)) < mse(lq)


def test_a_jpeg_network_searches_and_trains_in_fast_mode(tmp_path):
    from hinas_lib import course
    from hinas_lib.search import Searcher
    from hinas_lib.train import Trainer
    cfg = course.course_config("jpeg", fast=True).replace(search={"epochs": 1, "warmup_epochs": 0},
                                                          train={"epochs": 1})
    res = Searcher(cfg, out_dir=tmp_path / "s", progress=False).run()
    t = Trainer(cfg, res.genotype, out_dir=tmp_path / "t", progress=False, val_size=48)
    out = t.run()
    assert (tmp_path / "t" / "model.pt").exists() and np.isfinite(out.best_psnr)


# ----------------------------------------------------------------------------- paired data

def _write(folder: Path, images, fmt="png", transform=lambda a: a):
    folder.mkdir(parents=True, exist_ok=True)
    for name, a in images:
        data.save_image(folder / f"{Path(name).stem}.{fmt}", transform(a))


def test_match_inputs_pairs_by_stem_and_names_every_problem(tmp_path):
    imgs = _images(2, size=(32, 48))
    _write(tmp_path / "lq", imgs, transform=lambda a: a * 0.5)
    got = match_inputs(imgs, tmp_path / "lq", 1)
    assert [g.shape for g in got] == [(32, 48)] * 2
    assert np.abs(got[0] - imgs[0][1] * 0.5).max() <= 0.5 / 255 + 1e-6  # the 8-bit file of it
    with pytest.raises(data.ImageError, match=r"no degraded input for clean image 'other.png'"):
        match_inputs(imgs + [("other.png", imgs[0][1])], tmp_path / "lq", 1)
    with pytest.raises(data.ImageError, match=r"input is 32x48, its clean image 'img0.png' needs 16x24 \(x2"):
        match_inputs(imgs, tmp_path / "lq", 1, scale=2)
    _write(tmp_path / "lq", imgs[:1], fmt="bmp")
    with pytest.raises(data.ImageError, match="two inputs named 'img0'"):
        match_inputs(imgs, tmp_path / "lq", 1)


def test_paired_patches_cut_the_same_window_with_the_same_flip():
    imgs = _images(2, size=(40, 56))
    cfg = get_preset("tiny", "denoise")
    task = get_task(cfg)
    inputs = [a * 0.5 + 0.25 for _, a in imgs]  # a known "degradation"
    ds = task.patch_dataset(imgs, 16, inputs=inputs)
    assert isinstance(ds, PairedPatchDataset)
    ds.generator = torch.Generator().manual_seed(3)
    for i in range(16):
        lq, gt = ds[i]
        assert lq.shape == gt.shape == (1, 16, 16)
        assert torch.allclose(lq, gt * 0.5 + 0.25)


def test_paired_sr_patches_line_up_at_scale():
    rng = np.random.default_rng(1)
    gt = rng.random((48, 64)).astype(np.float32)
    lq = gt.reshape(24, 2, 32, 2).mean(axis=(1, 3))  # 2x2 means: commute with every flip/rotation
    task = get_task(get_preset("tiny", "sr", 2).replace(task={"channels": 1}))
    ds = task.patch_dataset([("a", gt)], 8, inputs=[lq])
    ds.generator = torch.Generator().manual_seed(0)
    for i in range(12):
        lq_p, gt_p = ds[i]
        assert lq_p.shape == (1, 8, 8) and gt_p.shape == (1, 16, 16)
        assert torch.allclose(torch.nn.functional.avg_pool2d(gt_p[None], 2)[0], lq_p, atol=1e-6)
    with pytest.raises(ValueError, match="data.rescale"):
        task.patch_dataset([("a", gt)], 8, inputs=[lq], rescale=(0.8, 1.2))


def test_paired_eval_and_centre_crops_keep_the_pairing():
    gt = np.arange(20 * 30, dtype=np.float32).reshape(20, 30) / 600
    lq = gt[::2, ::2]
    a, b = centre_crop_pair(lq, gt, 12, 2)
    assert a.shape == (6, 6) and b.shape == (12, 12) and np.array_equal(b[::2, ::2], a)
    task = get_task(get_preset("tiny", "sr", 2).replace(task={"channels": 1}))
    ds = PairedEvalDataset([lq[:, :-1]], [gt], ["g"], task)  # the clean image 2 px wider: cropped
    x, y, name = ds[0]
    assert x.shape == (1, 10, 14) and y.shape == (1, 20, 28) and name == "g"


def test_paired_config_fields_are_checked():
    with pytest.raises(ConfigError, match="data.train_lq_dir"):
        get_preset("tiny").replace(data={"train_lq_dir": "x"})
    with pytest.raises(ConfigError, match="data.test_lq_dir"):
        get_preset("tiny").replace(data={"test_lq_dir": "x"})
    with pytest.raises(ConfigError, match="data.rescale"):
        get_preset("tiny").replace(data={"train_dir": "a", "train_lq_dir": "b", "rescale": [0.8, 1.2]})
    assert real_inputs([], None, None) is None


def _jpeg_model(tmp_path, channels=1):
    cfg = get_preset("tiny", "jpeg")
    g = Genotype.load(ROOT / "zoo" / "denoise-s30" / "genotype.json")
    cfg = cfg.replace(space=dict(layers=len(g.path), blocks=len(g.cells[0])), train=dict(filters=8))
    torch.manual_seed(0)
    net = build_network(g, cfg).eval()
    save_model(tmp_path / "model.pt", net, cfg, g, {})
    return tmp_path / "model.pt"


def test_prepared_jpeg_pairs_evaluate_exactly_like_the_synthesised_degradation(tmp_path, capsys):
    src = tmp_path / "src"
    imgs = [(f"p{i}.png", np.clip(a, 0, 1)) for i, (_, a) in enumerate(_images(2, size=(40, 48), channels=3))]
    _write(src, imgs)
    out = tmp_path / "set"
    r = subprocess.run([sys.executable, str(ROOT / "data_scripts" / "prepare_jpeg.py"), "--src", str(src),
                        "--out", str(out), "--qualities", "10", "30"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (out / "JPEG_q30").iterdir()) == ["p0.jpg", "p1.jpg"]
    model = _jpeg_model(tmp_path)
    res = {}
    for key, extra in (("synth", []), ("paired", ["--lq-data", str(out / "JPEG_q30")])):
        assert cli_main(["eval", "--model", str(model), "--data", str(out), "--quality", "30", "--json",
                         "--no-progress", "--threads", "1"] + extra) == 0
        res[key] = json.loads(capsys.readouterr().out)
    assert res["paired"]["paired"] and not res["synth"]["paired"] and res["paired"]["quality"] == 30
    assert res["paired"]["mean"] == res["synth"]["mean"]  # the same bytes: the same scores
    # and the pairs of another quality are not the same inputs
    assert cli_main(["eval", "--model", str(model), "--data", str(out), "--quality", "30", "--json",
                     "--no-progress", "--threads", "1", "--lq-data", str(out / "JPEG_q10")]) == 0
    assert json.loads(capsys.readouterr().out)["mean"]["input_psnr"] < res["synth"]["mean"]["input_psnr"]
    assert cli_main(["eval", "--model", str(model), "--lq-data", str(out)]) != 0
    assert "--lq-data: pairs the clean images of --data" in capsys.readouterr().err
    assert cli_main(["eval", "--model", str(model), "--sigma", "30", "--data", str(out)]) == 2


def test_training_on_paired_data_reads_the_real_inputs(tmp_path):
    from hinas_lib.train import Trainer
    imgs = _images(4, size=(48, 48))
    _write(tmp_path / "clean", imgs)
    _write(tmp_path / "lq", imgs, transform=lambda a: np.clip(a * 0.5 + 0.2, 0, 1))
    cfg = get_preset("tiny", "denoise").replace(
        data={"train_dir": str(tmp_path / "clean"), "train_lq_dir": str(tmp_path / "lq"), "val_fraction": 0.25},
        train={"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "crop": 16})
    g = Genotype.load(ROOT / "zoo" / "denoise-s30" / "genotype.json")
    cfg = cfg.replace(space=dict(layers=len(g.path), blocks=len(g.cells[0])))
    t = Trainer(cfg, g, out_dir=tmp_path / "run", progress=False, val_size=32)
    lq, gt = t.train_ds[0]
    assert isinstance(t.train_ds, PairedPatchDataset)
    assert torch.allclose(lq, (gt * 0.5 + 0.2).clamp(0, 1), atol=1.5 / 255)  # the file's input, not noise
    v_lq, v_gt, _ = t.val_set[0]
    assert v_gt.shape[-1] == 32 and torch.allclose(v_lq, (v_gt * 0.5 + 0.2).clamp(0, 1), atol=1.5 / 255)
    t.run()


def test_the_widget_sets_a_jpeg_quality_through_with_level():
    pytest.importorskip("ipywidgets")
    from hinas_lib.widgets import SearchPanel
    p = SearchPanel(task="jpeg")
    p.controls["quality"].value = 30
    cfg = p.config()
    assert cfg.task.qualities == (30,) and cfg.task.eval_quality == 30
    assert type(p.controls["quality"]).__name__ == "IntText"


def test_task_class_names_the_known_tasks():
    with pytest.raises(ValueError, match=r"unknown task 'deblur'; choose one of \['denoise', 'jpeg', 'sr'\]"):
        task_class("deblur")
    assert isinstance(get_task(get_preset("tiny", "jpeg")), JpegDeblock)


def test_a_model_file_whose_weights_do_not_fit_gets_one_short_line(tmp_path):
    from hinas_lib.checkpoint import CheckpointError
    from hinas_lib.model_files import load_model
    g = Genotype.load(ROOT / "zoo" / "denoise-s30" / "genotype.json")
    cfg = get_preset("tiny", "jpeg").replace(space=dict(layers=len(g.path), blocks=len(g.cells[0])))
    net = build_network(g, cfg, filters=8)  # F = 8 weights, but the config says F = 16
    save_model(tmp_path / "model.pt", net, cfg, g, {})
    with pytest.raises(CheckpointError) as e:
        load_model(tmp_path / "model.pt")
    msg = str(e.value)
    assert "weights do not match" in msg and "size mismatch for stem.weight" in msg and "more)" in msg
    assert len(msg) < 600 and "\n" not in msg


@pytest.mark.parametrize("channels", [1, 3])
def test_noisy_array_is_to_numpy_without_the_clamp(channels):
    """What the denoising baselines read: the layout of data.to_numpy (HxW, or HxWxC for colour),
    in float64, with the values outside [0, 1] that the noise put there kept."""
    from hinas_lib.tasks.denoise import noisy_array
    x = torch.rand(channels, 5, 7, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.3
    a = noisy_array(x)
    assert a.dtype == np.float64 and a.shape == data.to_numpy(x).shape
    assert a.min() < 0 and a.max() > 1
    assert np.allclose(np.clip(a, 0, 1), data.to_numpy(x))
