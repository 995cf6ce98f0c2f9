"""Issue 25: silent wrong results, tracebacks and absurd values a third round of hostile
use found. Each case must give the right result or one line naming the input and the
setting, with the README's exit code."""
from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from hinas_lib import cli
from hinas_lib.checkpoint import CheckpointError, atomic_save
from hinas_lib.cli import EXIT_USAGE, build_config, main, make_parser
from hinas_lib.config import Config, ConfigError, SearchConfig, SpaceConfig, TaskConfig, TrainConfig, get_preset
from hinas_lib.genotype import Genotype, GenotypeError
from hinas_lib.model_files import load_model, model_checkpoint
from hinas_lib.network import CompactNet
from hinas_lib.runtime import pick_device

CELL = ((("conv_3x3", 1), ("skip_connect", 0)), (("conv_3x3", 2), ("skip_connect", 1)))
GENO = Genotype(cells=(CELL, CELL), path=(0, 0))


def tiny_config(channels: int = 1, task: str = "denoise") -> Config:
    return Config(name="test", task=TaskConfig(task=task, channels=channels),
                  space=SpaceConfig(layers=2, blocks=2, filters=4),
                  search=SearchConfig(epochs=1, warmup_epochs=0, steps_per_epoch=1, batch_size=2, crop=16,
                                      val_batches=1),
                  train=TrainConfig(filters=4, epochs=1, steps_per_epoch=1, batch_size=2, crop=16))


def write_model(path, channels: int = 1, task: str = "denoise", **drop):
    cfg = tiny_config(channels, task)
    torch.manual_seed(0)
    ckpt = model_checkpoint(CompactNet(GENO, cfg), cfg, GENO, {})
    for k in drop:
        ckpt.pop(k)
    atomic_save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def grey_model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("m") / "model.pt")


@pytest.fixture(scope="module")
def sr_model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("sr") / "model.pt", channels=3, task="sr")


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    assert err.count("\n") <= 1, f"more than one line on stderr: {err!r}"
    return code, err


# ----------------------------------------------------------------------------- --sigma, --scale, presets

def test_sigma_on_a_blind_config_trains_at_that_sigma(tmp_path):
    blind = get_preset("tiny").replace(task={"sigmas": [50.0], "sigma_range": [0.0, 75.0]})
    blind.to_yaml(tmp_path / "config.yaml")
    for cmd in ("search", "train"):
        args = make_parser().parse_args([cmd, "--config", str(tmp_path / "config.yaml"), "--sigma", "50",
                                         "--out", str(tmp_path / "r")] + (["--genotype", "g"] if cmd == "train" else []))
        t = build_config(args).task
        assert t.sigma_range is None and t.sigmas == (50.0,) and t.eval_sigma == 50.0
    args = make_parser().parse_args(["describe", "--config", str(tmp_path / "config.yaml")])
    assert build_config(args).task.sigma_range == (0.0, 75.0)  # without --sigma it stays blind


def test_sigma_and_scale_on_the_wrong_task_are_refused(capsys):
    code, err = run_cli(capsys, "describe", "--preset", "tiny", "--task", "sr", "--sigma", "30")
    assert code == EXIT_USAGE and "--sigma" in err
    code, err = run_cli(capsys, "describe", "--preset", "tiny", "--scale", "3")
    assert code == EXIT_USAGE and "--scale" in err and "denoise" in err
    code, err = run_cli(capsys, "describe", "--preset", "paper-denoise", "--scale", "2")
    assert code == EXIT_USAGE and "--scale" in err
    assert run_cli(capsys, "describe", "--preset", "tiny", "--task", "sr", "--scale", "3")[0] == 0


def test_scale_on_a_denoising_model_is_refused(capsys, grey_model):
    code, err = run_cli(capsys, "eval", "--model", grey_model, "--scale", "2", "--no-progress")
    assert code == EXIT_USAGE and "--scale" in err and "denoise" in err


@pytest.mark.parametrize("argv, named", [
    (["--preset", ""], "--preset"), (["--preset", " "], "--preset"), (["--config", ""], "--config"),
])
def test_empty_preset_or_config_is_refused(capsys, argv, named):
    code, err = run_cli(capsys, "describe", *argv)
    assert code == EXIT_USAGE and named in err


@pytest.mark.parametrize("argv, named", [
    (["--device", "cpu:1"], "cpu:1"), (["--threads", "4096"], "256"), (["--threads", "257"], "--threads"),
])
def test_cpu_index_and_thread_cap(capsys, tmp_path, argv, named):
    code, err = run_cli(capsys, "search", "--preset", "tiny", "--out", tmp_path / "r", "--no-progress", *argv)
    assert code == EXIT_USAGE and named in err
    assert not (tmp_path / "r").exists()
    assert pick_device("cpu:0").type == "cpu"


def test_warmup_must_leave_epochs_that_search_the_architecture(tmp_path, capsys):
    from hinas_lib.search import Searcher
    cfg = get_preset("tiny").replace(search={"epochs": 4})  # tiny's warm-up is 4 epochs
    with pytest.raises(ConfigError, match=r"^search.warmup_epochs: must be less than search.epochs=4"):
        Searcher(cfg, tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
    code, err = run_cli(capsys, "search", "--preset", "tiny", "--set", "search.epochs=4", "--out", tmp_path / "r",
                        "--no-progress")
    assert code == EXIT_USAGE and "search.warmup_epochs" in err
    get_preset("tiny").check_searchable()  # 10 epochs, 4 of warm-up
    # still a valid config to load or retrain from (older model.pt files may hold one)
    assert SearchConfig(epochs=3, warmup_epochs=3).warmup_epochs == 3


# ----------------------------------------------------------------------------- genotypes

def _geno_dict(**over):
    d = GENO.to_dict()
    d.update(over)
    return d


@pytest.mark.parametrize("over, words", [
    ({"path": "01"}, "'path' must be a list"),
    ({"path": ["0", "1"]}, "path entry '0'"),
    ({"path": [0, 1.5]}, "path entry 1.5"),
    ({"width_factors": "123"}, "'width_factors' must be a list"),
    ({"width_factors": ["1", "2"]}, "width factor '1'"),
    ({"width_factors": [1e-9, 1.0]}, "width_factors' must be numbers in"),
    ({"cells": [[[["conv_3x3", "1"], ["skip_connect", 0]]] * 2] * 2}, "input index '1'"),
    ({"cells": "abc"}, "'cells' must be a list"),
])
def test_genotype_strings_and_tiny_widths_are_refused(over, words):
    with pytest.raises(GenotypeError) as e:
        Genotype.from_dict(_geno_dict(**over))
    assert words in str(e.value)


def test_width_factor_range_in_configs():
    with pytest.raises(ConfigError, match=r"^space.width_factors"):
        SpaceConfig(width_factors=(1e-9, 1.0))
    with pytest.raises(ConfigError, match=r"^space.width_factors"):
        SpaceConfig(width_factors="123")


def test_deeply_nested_genotype_json_is_one_line(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(GenotypeError, match="deep.json.*nested too deeply"):
        Genotype.load(deep)
    code, err = run_cli(capsys, "train", "--preset", "tiny", "--genotype", deep, "--out", tmp_path / "r")
    assert code == EXIT_USAGE and "deep.json" in err


def test_genotype_load_names_a_wrong_argument_type():
    with pytest.raises(TypeError, match=r"^path: expected .*got int 123"):
        Genotype.load(123)


# ----------------------------------------------------------------------------- model.pt

@pytest.mark.parametrize("key", ["state_dict", "config", "genotype"])
def test_model_without_a_key_is_one_line(tmp_path, capsys, key):
    p = write_model(tmp_path / "model.pt", **{key: True})
    with pytest.raises(CheckpointError, match=f"model.pt: has no '{key}' entry"):
        load_model(p, "cpu")
    code, err = run_cli(capsys, "eval", "--model", p, "--no-progress")
    assert code == EXIT_USAGE and key in err and "model.pt" in err


# ----------------------------------------------------------------------------- images

def _png(w, h, rows):
    """A grey PNG whose header says ``w`` x ``h`` but whose (complete) zlib stream holds ``rows`` rows."""
    raw = b"".join(b"\x00" + bytes([128]) * w for _ in range(rows))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("w, h, rows", [(1000, 1000, 10), (9000, 9000, 1), (40, 30, 29)])
def test_png_with_fewer_rows_than_its_header_is_refused_fast(tmp_path, capsys, grey_model, w, h, rows):
    from hinas_lib.data import ImageError, load_image
    p = tmp_path / "short.png"
    p.write_bytes(_png(w, h, rows))
    with pytest.raises(ImageError, match="short.png: cannot read image, the file is damaged or truncated"):
        load_image(p, None)
    code, err = run_cli(capsys, "restore", "--model", grey_model, p, tmp_path / "o.png")
    assert code == EXIT_USAGE and "damaged or truncated" in err and not (tmp_path / "o.png").exists()
    p.write_bytes(_png(40, 30, 30))  # complete: read as it is
    assert load_image(p, None).shape == (30, 40)


@pytest.mark.parametrize("interlace", [0, 1])
@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "I;16"])
def test_complete_pngs_of_every_kind_still_load(tmp_path, mode, interlace):
    from hinas_lib.data import load_image
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (13, 21, 3), dtype=np.uint8)
    im = Image.fromarray(rgb)
    im = (Image.fromarray((rng.integers(0, 65536, (13, 21))).astype(np.uint16)) if mode == "I;16"
          else im.convert(mode))
    if mode == "RGBA":
        im.putalpha(255)
    im.save(tmp_path / "x.png", interlace=interlace)
    assert load_image(tmp_path / "x.png", None).shape[:2] == (13, 21)


def _pages(tmp_path, fmt, n=3):
    rng = np.random.default_rng(0)
    ims = [Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)) for _ in range(n)]
    p = tmp_path / f"pages.{fmt}"
    ims[0].save(p, save_all=True, append_images=ims[1:])
    return p


@pytest.mark.parametrize("fmt", ["tif", "gif", "png"])
def test_multi_page_files_are_refused_naming_the_page_count(tmp_path, capsys, grey_model, sr_model, fmt):
    p = _pages(tmp_path, fmt)
    code, err = run_cli(capsys, "restore", "--model", grey_model, p, tmp_path / "o.png")
    assert code == EXIT_USAGE and f"{p.name}: the" in err and "holds 3 pages" in err
    code, err = run_cli(capsys, "restore", "--model", sr_model, "--convert", p, tmp_path / "o.png")
    assert code == EXIT_USAGE and "holds 3 pages" in err
    if fmt == "gif":
        return  # eval reads folders of .png/.jpg/.bmp/.tif only
    (tmp_path / "set").mkdir()
    p.rename(tmp_path / "set" / p.name)
    code, err = run_cli(capsys, "eval", "--model", grey_model, "--data", tmp_path / "set", "--no-progress")
    assert code == EXIT_USAGE and "holds 3 pages" in err


def test_multi_page_float_tiff_read_by_tifffile_is_refused(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    from hinas_lib.data import ImageError, load_image
    tifffile.imwrite(tmp_path / "f.tif", np.full((4, 6, 8, 3), 0.25, np.float32), photometric="rgb")
    with pytest.raises(ImageError, match="f.tif: the TIFF file holds 4 pages"):
        load_image(tmp_path / "f.tif", None)


def _half_transparent(path):
    a = np.zeros((16, 20, 4), np.uint8)
    a[..., 0] = 255  # red everywhere, hidden on the right half
    a[:, :10, 3] = 255
    Image.fromarray(a, "RGBA").save(path)
    return path


def test_transparent_pixels_are_refused_unless_a_background_is_given(tmp_path, capsys, sr_model):
    from hinas_lib.data import load_image
    p = _half_transparent(tmp_path / "half.png")
    code, err = run_cli(capsys, "restore", "--model", sr_model, p, tmp_path / "o.png")
    assert code == EXIT_USAGE and "half.png: 160 of 320 pixels are transparent" in err and "--background" in err
    assert not (tmp_path / "o.png").exists()
    img = load_image(p, None, background="white")
    np.testing.assert_allclose(img[:, :10], np.broadcast_to([1.0, 0, 0], (16, 10, 3)))
    np.testing.assert_allclose(img[:, 10:], 1.0)  # white, not the hidden red
    code, err = run_cli(capsys, "restore", "--model", sr_model, "--background", "white", p, tmp_path / "o.png")
    assert code == 0 and Image.open(tmp_path / "o.png").size == (40, 32)
    code, err = run_cli(capsys, "restore", "--model", sr_model, "--background", "nocolour", p, tmp_path / "o.png")
    assert code == EXIT_USAGE and "--background" in err
    grey = np.zeros((8, 8, 2), np.uint8)
    grey[..., 1] = 128
    Image.fromarray(grey, "LA").save(tmp_path / "la.png")
    assert load_image(tmp_path / "la.png", None, background=(255, 255, 255)).shape == (8, 8)  # grey stays grey


# ----------------------------------------------------------------------------- run_model / tiled_forward inputs

@pytest.fixture(scope="module")
def grey_net():
    torch.manual_seed(0)
    cfg = tiny_config()
    return CompactNet(GENO, cfg).eval(), cfg


def test_run_model_converts_what_it_sensibly_can(grey_net):
    from hinas_lib.evaluate import run_model
    net, cfg = grey_net
    img = torch.rand(1, 20, 24)
    want = run_model(net, img, cfg)
    assert want.shape == (1, 20, 24)
    for same in (img.numpy(), img[0], img[0].numpy(), img.double(), img.numpy().astype(np.float64), img[None]):
        torch.testing.assert_close(run_model(net, same, cfg), want)
    torch.testing.assert_close(run_model(net, img[0].double().numpy(), cfg, tile=32), want)


@pytest.mark.parametrize("bad, err, words", [
    (lambda img: (img * 255).to(torch.uint8), TypeError, "img_tensor: expected float pixels in \\[0, 1\\], got uint8"),
    (lambda img: (img.numpy() * 255).astype(np.uint8), TypeError, "got uint8"),
    (lambda img: torch.rand(3, 20, 24), ValueError, "takes grey \\(1 channel\\).*got shape \\(3, 20, 24\\)"),
    (lambda img: img.permute(1, 2, 0),
     ValueError, "looks like H x W x C"),
    (lambda img: torch.rand(2, 1, 20, 24), ValueError, "one image"),
    (lambda img: torch.rand(1, 1, 1, 20, 24), ValueError, "got shape \\(1, 1, 1, 20, 24\\)"),
    (lambda img: torch.empty(1, 20, 24, device="meta"), ValueError, "meta tensor"),
    (lambda img: [[0.5]], TypeError, "got list"),
    (lambda img: torch.rand(1, 0, 24), ValueError, "empty"),
])
def test_run_model_refuses_what_it_cannot_convert_naming_the_shape(grey_net, bad, err, words):
    from hinas_lib.evaluate import run_model
    net, cfg = grey_net
    with pytest.raises(err, match=words):
        run_model(net, bad(torch.rand(1, 20, 24)), cfg)


def test_tiled_forward_checks_and_converts_its_input(grey_net):
    from hinas_lib.inference import tiled_forward
    net, _ = grey_net
    x = torch.rand(1, 1, 40, 36)
    want = tiled_forward(net, x, tile=32)
    assert want.shape == (1, 1, 40, 36)
    torch.testing.assert_close(tiled_forward(net, x[0, 0].double().numpy(), tile=32), want[0])
    torch.testing.assert_close(tiled_forward(net, x[0], tile=0), want[0])
    with pytest.raises(ValueError, match=r"x: the network takes grey \(1 channel\).*C=1.*got shape \(1, 3, 40, 36\)"):
        tiled_forward(net, torch.rand(1, 3, 40, 36), tile=32)
    with pytest.raises(ValueError, match="looks like H x W x C"):
        tiled_forward(net, np.random.default_rng(0).random((40, 36, 1)), tile=32)
    with pytest.raises(TypeError, match="got uint8"):
        tiled_forward(net, torch.zeros(1, 1, 40, 36, dtype=torch.uint8), tile=32)


# ----------------------------------------------------------------------------- zoo/grow_denoise.py

def _grow():
    import importlib.util
    from hinas_lib import zoo
    spec = importlib.util.spec_from_file_location("zoo_grow_denoise_h3", zoo.ZOO_DIR / "grow_denoise.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def grow(tmp_path, monkeypatch):
    g = _grow()
    (tmp_path / "data" / "Train400").mkdir(parents=True)
    monkeypatch.setattr(g, "set_threads", lambda n: None)  # (torch's thread count is process-wide)
    monkeypatch.chdir(tmp_path)  # main() changes folder; monkeypatch changes it back
    return g


@pytest.mark.parametrize("argv, named", [
    (["trunk", "--hours", "-1"], "--hours"), (["trunk", "--hours", "nan"], "--hours"),
    (["trunk", "--hours", "0"], "--hours"), (["trial", "g2-f24", "--hours", "inf"], "--hours"),
    (["status", "--threads", "-1"], "--threads"), (["status", "--threads", "100000"], "--threads"),
])
def test_grow_denoise_refuses_absurd_hours_and_threads(grow, tmp_path, capsys, monkeypatch, argv, named):
    monkeypatch.setattr(grow, "grow", lambda *a: pytest.fail("grew with an absurd setting"))
    assert grow.main(argv + ["--shared", str(tmp_path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ") and named in err and err.count("\n") == 1
    with pytest.raises(ValueError, match="--hours"):  # from Python too
        _grow().grow("g1-f32", float("nan"))


def test_grow_denoise_honours_shared_everywhere(grow, tmp_path, monkeypatch):
    assert grow.trunk_config(grow.TRUNK).data.train_dir == "../shared/data/Train400"  # the shipped state's
    mine = grow.trunk_config(grow.TRUNK, tmp_path)
    assert mine.data.train_dir == str(tmp_path.resolve() / "data" / "Train400")
    state = {"config": grow.trunk_config(grow.TRUNK).to_dict()}
    assert grow.branch_trunk(state, tmp_path).data.train_dir == mine.data.train_dir
    assert grow.branch_trunk(state, None).data.train_dir == "../shared/data/Train400"
    calls = []
    monkeypatch.setattr(grow, "grow", lambda recipe, hours, shared: calls.append((recipe, hours, shared)))
    monkeypatch.setattr(grow, "branch", lambda sigma, shared, *rest: calls.append((sigma, shared)))
    monkeypatch.setattr(grow, "add_point", lambda recipe, shared: calls.append((recipe, shared)) or {})
    (tmp_path / "sub").mkdir()
    for argv in (["trunk", "--hours", "0.5"], ["branches", "--sigmas", "30", "--no-page"], ["point"]):
        monkeypatch.chdir(tmp_path / "sub")
        assert grow.main(argv + ["--shared", ".."]) == 0  # relative to the caller's folder
    assert calls == [(grow.TRUNK, 0.5, tmp_path.resolve()), (30.0, tmp_path.resolve()),
                     (grow.TRUNK, tmp_path.resolve())]


def test_grow_denoise_refuses_a_state_trained_on_other_data(grow, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "blind" / grow.TRUNK
    folder.mkdir(parents=True)
    atomic_save({"kind": "train", "config": grow.trunk_config(grow.TRUNK).to_dict()}, folder / "train_checkpoint.pt")
    monkeypatch.setattr(grow, "BLIND", tmp_path / "blind")
    assert grow.main(["trunk", "--hours", "0.1", "--shared", str(tmp_path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "was trained on ../shared/data/Train400" in err and "--shared" in err and err.count("\n") == 1


def test_grow_denoise_damaged_info_json_is_one_line(grow, tmp_path, monkeypatch, capsys):
    from hinas_lib import zoo
    entry = tmp_path / "zoo" / "denoise-s30"
    entry.mkdir(parents=True)
    (entry / "model.pt").write_bytes(b"")
    (entry / "info.json").write_text('{"name": "denoise-s30", "cpu_hours": ')
    monkeypatch.setattr(grow, "available", lambda: zoo.available(tmp_path / "zoo"))
    monkeypatch.setattr(grow, "entry_info", lambda name: zoo.entry_info(name, tmp_path / "zoo"))
    assert grow.main(["ensemble", "--shared", str(tmp_path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "info.json: damaged info.json" in err and err.count("\n") == 1
    (entry / "info.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        zoo.entry_info("denoise-s30", tmp_path / "zoo")


# ----------------------------------------------------------------------------- a rank killed, SIGTERM

GLOO_RESET = ("[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:9421: "
              "Connection reset by peer. This is typically caused by a remote worker hanging")


def test_a_peer_rank_gone_is_reported_with_the_checkpoint_to_resume(tmp_path, monkeypatch):
    import argparse
    out = tmp_path / "RUN"
    out.mkdir()
    atomic_save({"kind": "search", "step": 7}, out / "checkpoint.pt")
    args = argparse.Namespace(cmd="search", out=str(out))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    code, msg = cli.classify(RuntimeError(GLOO_RESET), args)
    assert code == cli.EXIT_INTERRUPTED
    assert msg == (f"rank 1 of 2 stopped (its connection closed: killed, crashed or out of memory; torchrun's "
                   f"report names its exit signal); the last checkpoint (step 7, {out / 'checkpoint.pt'}) "
                   "is intact; resume with --resume")
    monkeypatch.setenv("RANK", "1")
    assert cli.classify(RuntimeError(GLOO_RESET), args)[1].startswith("rank 0 of 2 stopped")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert cli.classify(RuntimeError(GLOO_RESET), args)[1].startswith("another of the 4 ranks stopped")
    # torchrun's SIGTERM arriving while the failed collective unwinds: still the peer's story
    try:
        try:
            raise RuntimeError(GLOO_RESET)
        finally:
            raise cli.Stopped(15)
    except cli.Stopped as e:
        assert "another of the 4 ranks stopped" in cli.classify(e, args)[1]
    code, msg = cli.classify(cli.Stopped(15), argparse.Namespace(cmd="train", out=str(tmp_path / "none")))
    assert code == cli.EXIT_INTERRUPTED and msg.startswith("stopped by signal 15 (SIGTERM): torchrun stops every")
    assert "nothing to resume" in msg
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert cli.classify(RuntimeError(GLOO_RESET), args)[0] == cli.EXIT_INTERNAL  # one process: no peer


def test_sigterm_releases_the_lock_and_says_how_to_resume(tmp_path, monkeypatch, capsys):
    """``kill PID`` (torchrun stops the other ranks this way): the run's lock is released and
    the message names the checkpoint, instead of the process vanishing and leaving its lock."""
    import os
    import signal
    from hinas_lib import search as search_mod
    from hinas_lib.runs import LOCK_NAME
    out = tmp_path / "RUN"
    real = search_mod.Searcher._run

    def run_then_term(self, stop_after=None):
        real(self, stop_after=1)  # one step and its checkpoint
        assert (out / LOCK_NAME).exists()
        os.kill(os.getpid(), signal.SIGTERM)
        pytest.fail("SIGTERM did not stop the run")

    monkeypatch.setattr(search_mod.Searcher, "_run", run_then_term)
    before = signal.getsignal(signal.SIGTERM)
    code, err = run_cli(capsys, "search", "--preset", "tiny", "--out", out, "--no-progress",
                        "--set", "search.epochs=2", "--set", "search.warmup_epochs=0",
                        "--set", "search.steps_per_epoch=1", "--set", "search.batch_size=2",
                        "--set", "search.crop=16", "--set", "search.val_batches=1",
                        "--set", "space.layers=2", "--set", "space.blocks=2", "--set", "space.filters=4")
    assert code == cli.EXIT_INTERRUPTED
    assert err.startswith("error: stopped by signal 15 (SIGTERM); the last checkpoint (step 1, ")
    assert "resume with --resume" in err
    assert not (out / LOCK_NAME).exists()
    assert signal.getsignal(signal.SIGTERM) == before  # main() puts the handler back


@pytest.mark.parametrize("new_val, ships", [(22.40, False), (22.51, False), (22.60, True)])
def test_a_branch_replaces_its_entry_only_when_the_held_out_images_say_so(grow, tmp_path, monkeypatch, new_val,
                                                                          ships):
    """Selection on held-out Train400, never on Set12: a branch validating no higher than the
    shipped entry leaves the entry alone (and Set12 is not even evaluated); every branch is logged."""
    from types import SimpleNamespace
    state = {"config": grow.trunk_config(grow.TRUNK).to_dict(), "step": 3500}
    monkeypatch.setattr(grow, "load_checkpoint", lambda path, kind: state)
    monkeypatch.setattr(grow, "train_cycles", lambda *a: (SimpleNamespace(best_psnr=new_val, model_path="m"),
                                                          1800.0, [[0.5, new_val]]))
    monkeypatch.setattr(grow, "available", lambda: {"denoise-s70": tmp_path})
    monkeypatch.setattr(grow, "entry_info", lambda name: {"name": name, "best_val_psnr": 22.51})
    monkeypatch.setattr(grow, "TRIALS", tmp_path / "branch_trials.jsonl")

    class Shipping(Exception):
        pass

    def load_model(*a):
        raise Shipping  # the path that evaluates on Set12 and writes the entry
    monkeypatch.setattr(grow, "load_model", load_model)
    if ships:
        with pytest.raises(Shipping):
            grow.branch(70.0, tmp_path, 2500, 0.0)
    else:
        assert grow.branch(70.0, tmp_path, 2500, 0.0)["best_val_psnr"] == 22.51
    row = json.loads((tmp_path / "branch_trials.jsonl").read_text().splitlines()[-1])
    assert row["shipped"] is ships and row["val_psnr"] == new_val and row["shipped_val_psnr"] == 22.51
