"""Issue 11: failures end in a clear message and a distinct exit code, and lose nothing.

Output files (atomic, checked before the model runs, never over the input by
accident), run-file permissions, CLI error classes, Python API type checks,
image reading (CMYK, EXIF, palette, 16-bit, NaN), checkpoint messages, config
limits and ``Config.validate``.
"""
from __future__ import annotations

import argparse
import errno
import io
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hinas_lib import cli
from hinas_lib.checkpoint import CheckpointError, atomic_save, atomic_write_text, load_checkpoint
from hinas_lib.checks import MAX_BLOCKS, MAX_LAYERS, expect
from hinas_lib.cli import (EXIT_FILES, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_NUMERIC, EXIT_USAGE, classify,
                           main)
from hinas_lib.config import (Config, ConfigError, DataConfig, SearchConfig, SpaceConfig, TaskConfig,
                              TrainConfig, get_preset)
from hinas_lib.data import ImageError, load_image, save_image
from hinas_lib.data import to_tensor
from hinas_lib.evaluate import NonFiniteOutputError, evaluate, restore_file, run_model
from hinas_lib.genotype import Genotype, GenotypeError
from hinas_lib.model_files import load_model, model_checkpoint
from hinas_lib.network import CompactNet
from hinas_lib.runtime import pick_device, set_threads

CELL = ((("conv_3x3", 1), ("skip_connect", 0)), (("conv_3x3", 2), ("skip_connect", 1)))
GENO = Genotype(cells=(CELL, CELL), path=(0, 0))
REPO = Path(__file__).resolve().parents[1]


def tiny_config(channels: int = 1) -> Config:
    return Config(name="test", task=TaskConfig(task="denoise", channels=channels),
                  space=SpaceConfig(layers=2, blocks=2, filters=4),
                  search=SearchConfig(epochs=1, warmup_epochs=0, steps_per_epoch=1, batch_size=2, crop=16,
                                      val_batches=1),
                  train=TrainConfig(filters=4, epochs=1, steps_per_epoch=1, batch_size=2, crop=16))


def write_model(path, *, nan: bool = False):
    """A grey denoising model.pt with random weights (NaN weights when ``nan``)."""
    cfg = tiny_config()
    net = CompactNet(GENO, cfg)
    if nan:
        with torch.no_grad():
            next(net.parameters()).fill_(float("nan"))
    atomic_save(model_checkpoint(net, cfg, GENO, {}), path)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("model") / "model.pt")


def grey_png(path, h=20, w=24, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(path)
    return path


def no_model_load(monkeypatch):
    """Make loading a model fail loudly: checks that must come first then show it."""
    def boom(*a, **k):
        raise AssertionError("the model was loaded before the output path was checked")
    monkeypatch.setattr("hinas_lib.evaluate.load_model", boom)


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") <= 1, f"more than one line on stderr: {err!r}"
    return code, err


# ----------------------------------------------------------------------------- restore: outputs

def test_restore_refuses_to_write_over_its_input(model, tmp_path, capsys, monkeypatch):
    src = grey_png(tmp_path / "photo.png")
    before = src.read_bytes()
    (tmp_path / "link.png").symlink_to(src)
    os.link(src, tmp_path / "hard.png")
    with monkeypatch.context() as m:
        no_model_load(m)
        for dst in (src, tmp_path / "link.png", tmp_path / "hard.png", tmp_path / "." / "photo.png"):
            code, err = run_cli(capsys, "restore", "--model", model, src, dst)
            assert code == EXIT_USAGE and "--overwrite-input" in err and str(dst) in err
    assert src.read_bytes() == before
    # said explicitly, it is allowed (and the result is a valid image of the same size)
    code, _ = run_cli(capsys, "restore", "--model", model, src, src, "--overwrite-input")
    assert code == 0 and src.read_bytes() != before
    assert load_image(src, None).shape == (20, 24)


def test_restore_checks_the_output_before_the_model_runs(model, tmp_path, capsys, monkeypatch):
    src = grey_png(tmp_path / "in.png")
    (tmp_path / "adir.png").mkdir()
    (tmp_path / "afile").write_text("x")
    no_model_load(monkeypatch)
    code, err = run_cli(capsys, "restore", "--model", model, src, tmp_path / "adir.png")
    assert code == EXIT_FILES and "adir.png" in err and "folder" in err
    code, err = run_cli(capsys, "restore", "--model", model, src, tmp_path / "afile" / "out.png")
    assert code == EXIT_FILES and "afile" in err
    code, err = run_cli(capsys, "restore", "--model", model, src, tmp_path / "out.xyz")
    assert code == EXIT_USAGE and "out.xyz" in err and ".png" in err
    code, err = run_cli(capsys, "restore", "--model", model, src, "/dev/null")
    assert code == EXIT_USAGE and "/dev/null" in err  # no image extension
    os.mkfifo(tmp_path / "fifo.png")
    code, err = run_cli(capsys, "restore", "--model", model, src, tmp_path / "fifo.png")
    assert code == EXIT_FILES and "fifo.png" in err and "not a regular file" in err
    code, err = run_cli(capsys, "restore", "--model", model, tmp_path / "missing.png", tmp_path / "o.png")
    assert code == EXIT_USAGE and "missing.png" in err


def test_restore_unwritable_folder_fails_before_the_model(model, tmp_path, capsys, monkeypatch):
    src = grey_png(tmp_path / "in.png")
    out = tmp_path / "ro"
    out.mkdir()

    def refuse(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")
    no_model_load(monkeypatch)
    monkeypatch.setattr("tempfile.mkstemp", refuse)
    code, err = run_cli(capsys, "restore", "--model", model, src, out / "o.png")
    assert code == EXIT_FILES and str(out) in err and "Permission denied" in err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_restore_into_a_read_only_folder(model, tmp_path, capsys):
    src = grey_png(tmp_path / "in.png")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, err = run_cli(capsys, "restore", "--model", model, src, ro / "o.png")
    finally:
        ro.chmod(0o755)
    assert code == EXIT_FILES and str(ro) in err


def test_restore_creates_the_output_folder(model, tmp_path, capsys):
    src = grey_png(tmp_path / "in.png")
    code, _ = run_cli(capsys, "restore", "--model", model, src, tmp_path / "new" / "sub" / "o.jpg")
    assert code == 0 and load_image(tmp_path / "new" / "sub" / "o.jpg", None).shape == (20, 24)


def test_disk_full_while_writing_over_the_input_keeps_the_input(model, tmp_path, capsys, monkeypatch):
    src = grey_png(tmp_path / "photo.png")
    before = src.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr("hinas_lib.checkpoint.os.fsync", full)
    code, err = run_cli(capsys, "restore", "--model", model, src, src, "--overwrite-input")
    assert code == EXIT_FILES and "disk full" in err and "photo.png" in err
    assert src.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png"]  # no temporary file left


def test_non_finite_model_output_is_refused(tmp_path, capsys):
    bad = write_model(tmp_path / "nan.pt", nan=True)
    src = grey_png(tmp_path / "in.png")
    code, err = run_cli(capsys, "restore", "--model", bad, src, tmp_path / "o.png")
    assert code == EXIT_NUMERIC and "nan.pt" in err and "NaN" in err and "corrupted" in err
    assert not (tmp_path / "o.png").exists()
    net, cfg, _ = load_model(bad)
    with pytest.raises(NonFiniteOutputError, match="NaN/inf"):
        run_model(net, to_tensor(np.zeros((8, 8), np.float32)), cfg)
    with pytest.raises(NonFiniteOutputError):
        evaluate(net, cfg, [("a", np.zeros((8, 8), np.float32))], with_baseline=False, progress=False)


# ----------------------------------------------------------------------------- atomic writes, permissions

def test_save_image_is_atomic_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    save_image(path, np.full((6, 7), 0.5))
    before = path.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr("hinas_lib.checkpoint.os.fsync", full)
    with pytest.raises(OSError) as e:
        save_image(path, np.zeros((6, 7)))
    assert e.value.errno == errno.ENOSPC and e.value.filename == str(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_save_image_refuses_nan_and_bad_extensions(tmp_path):
    with pytest.raises(ImageError, match="NaN"):
        save_image(tmp_path / "a.png", np.full((4, 4), np.nan))
    with pytest.raises(ImageError, match="a.gif"):
        save_image(tmp_path / "a.gif", np.zeros((4, 4)))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_run_files_get_normal_permissions(tmp_path, mask):
    old = os.umask(mask)
    try:
        save_image(tmp_path / "a.png", np.zeros((4, 4)))
        atomic_save({"kind": "model"}, tmp_path / "model.pt")
        atomic_write_text(tmp_path / "config.yaml", "x: 1\n")
    finally:
        os.umask(old)
    for name in ("a.png", "model.pt", "config.yaml"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask, name


# ----------------------------------------------------------------------------- CLI messages and exit codes

@pytest.mark.parametrize("setting, named", [
    ("search.epochs=abc", "search.epochs"),
    ("search.epochs=[1", "search.epochs"),
    ("search.epochs=1.5", "search.epochs"),
    ("space.layers=100000", "space.layers"),
    ("space.primitives=5", "space.primitives"),
    ("space.width_factors=abc", "space.width_factors"),
    ("task.sigma_range=[1]", "task.sigma_range"),
    ("task.sigmas=abc", "task.sigmas"),
    ("data.train_dir=5", "data.train_dir"),
    ("search.a_betas=[1]", "search.a_betas"),
    ("train.batch_size=100000000", "train.batch_size"),
    ("search.nope=1", "nope"),
    ("nosection.x=1", "nosection"),
    ("search.epochs", "search.epochs"),
])
def test_bad_set_values_give_one_line_naming_the_field(capsys, setting, named):
    code, err = run_cli(capsys, "describe", "--preset", "tiny", "--set", setting)
    assert code == EXIT_USAGE and named in err and err.startswith("error: ")


@pytest.mark.parametrize("argv, named", [
    (["--threads", "0"], "--threads"), (["--threads", "-2"], "--threads"), (["--threads", "two"], "--threads"),
    (["--threads", "100000"], "--threads"), (["--device", "gpu"], "gpu"), (["--device", "cuda:x"], "cuda:x"),
])
def test_bad_run_arguments(capsys, tmp_path, argv, named):
    code, err = run_cli(capsys, "search", "--preset", "tiny", "--out", tmp_path / "r", *argv)
    assert code == EXIT_USAGE and named in err
    assert not (tmp_path / "r").exists()


def test_cuda_devices_that_are_not_there(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="'cuda'.*not available"):
        pick_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ValueError, match=r"'cuda:7'.*2 CUDA device\(s\), numbered 0..1"):
        pick_device("cuda:7")
    assert pick_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ValueError, match="'gpu'.*unknown device"):
        pick_device("gpu")
    with pytest.raises(ValueError, match="threads"):
        set_threads(-1)


def test_eval_limit_must_not_be_negative(capsys):
    code, err = run_cli(capsys, "eval", "--model", "denoise-s30", "--limit", "-1")
    assert code == EXIT_USAGE and "--limit" in err and ">= 0" in err
    code, err = run_cli(capsys, "eval", "--model", "denoise-s30", "--sigma", "nan")
    assert code == EXIT_USAGE and "--sigma" in err


def test_file_system_errors_exit_3(capsys, tmp_path):
    (tmp_path / "afile").write_text("x")
    code, err = run_cli(capsys, "search", "--preset", "tiny", "--set", "search.epochs=1", "--set",
                        "search.warmup_epochs=0", "--out", tmp_path / "afile" / "run", "--no-progress")
    assert code == EXIT_FILES and "afile" in err


@pytest.mark.parametrize("exc, code, words", [
    (PermissionError(errno.EACCES, "Permission denied", "/runs/x"), EXIT_FILES, ["/runs/x", "Permission denied"]),
    (OSError(errno.ENOSPC, "No space left on device", "/runs/x/model.pt"), EXIT_FILES, ["model.pt", "disk full"]),
    (OSError(errno.EROFS, "Read-only file system", "/mnt/ro"), EXIT_FILES, ["/mnt/ro", "read-only"]),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/a/b"), EXIT_FILES, ["/a/b", "Not a directory"]),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "/a/b"), EXIT_FILES, ["/a/b", "Is a directory"]),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/x.yaml"), EXIT_USAGE, ["/x.yaml"]),
    (ConfigError("search.epochs: must be >= 1"), EXIT_USAGE, ["search.epochs"]),
    (cli.TrainingError("weight loss became nan at step 3"), EXIT_NUMERIC, ["nan"]),
    (MemoryError(), cli.EXIT_MEMORY, ["out of memory"]),
    (RuntimeError("boom\nsecond line"), EXIT_INTERNAL, ["internal error", "boom second line", "HINAS_DEBUG"]),
])
def test_classify(exc, code, words):
    got, msg = classify(exc)
    assert got == code and "\n" not in msg
    for w in words:
        assert w in msg


def test_interrupted_messages(tmp_path):
    args = argparse.Namespace(cmd="search", out=str(tmp_path))
    code, msg = classify(KeyboardInterrupt(), args)
    assert code == EXIT_INTERRUPTED and "nothing to resume" in msg and "intact" not in msg
    (tmp_path / "checkpoint.pt").write_bytes(b"x")
    assert classify(KeyboardInterrupt(), args)[1].startswith("interrupted; resume with --resume")
    assert classify(KeyboardInterrupt(), argparse.Namespace(cmd="eval")) == (EXIT_INTERRUPTED, "interrupted")


def test_unexpected_errors_are_one_line_unless_hinas_debug(capsys, monkeypatch):
    def bug(args):
        raise RuntimeError("something nobody anticipated")
    parser = cli.make_parser
    monkeypatch.setattr(cli, "make_parser", lambda: _with_fn(parser(), "describe", bug))
    code, err = run_cli(capsys, "describe")
    assert code == EXIT_INTERNAL and "something nobody anticipated" in err
    monkeypatch.setenv("HINAS_DEBUG", "1")
    with pytest.raises(RuntimeError, match="nobody anticipated"):
        main(["describe"])


def _with_fn(parser, cmd, fn):
    for action in parser._subparsers._group_actions:
        action.choices[cmd].set_defaults(fn=fn)
    return parser


def test_exit_codes_are_distinct_and_documented():
    codes = [cli.EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_FILES, EXIT_NUMERIC, cli.EXIT_MEMORY, EXIT_INTERRUPTED]
    assert len(set(codes)) == len(codes) and set(codes) == set(cli.EXIT_CODES)
    readme = (REPO / "README.md").read_text()
    for c in codes[1:]:
        assert f"| {c} |" in readme, f"exit code {c} missing from the README table"


# ----------------------------------------------------------------------------- Python API types

def test_expect_names_the_argument_and_type():
    assert expect(3, int, "n") == 3
    with pytest.raises(TypeError, match=r"^cfg: expected Config, got dict \{'a': 1\}; hint$"):
        expect({"a": 1}, Config, "cfg", "hint")
    with pytest.raises(TypeError, match="n: expected int, got bool"):
        expect(True, int, "n")


def test_api_type_errors_name_the_argument(model):
    net, cfg, _ = load_model(model)
    images = [("a", np.zeros((8, 8), np.float32))]
    with pytest.raises(TypeError, match=r"^path: expected str or a path"):
        load_model(123)
    with pytest.raises(TypeError, match=r"^cfg: expected Config, got dict"):
        evaluate(net, cfg.to_dict(), images)
    with pytest.raises(TypeError, match=r"^net: expected Module"):
        evaluate("model.pt", cfg, images)
    with pytest.raises(TypeError, match=r"^images: expected list or tuple, got str"):
        evaluate(net, cfg, "images/")
    with pytest.raises(TypeError, match=r"^images\[0\]: expected a \(name, image array\) pair"):
        evaluate(net, cfg, [np.zeros((8, 8))])
    with pytest.raises(ValueError, match="images: the list is empty"):
        evaluate(net, cfg, [])
    with pytest.raises(TypeError, match=r"^src: expected str or a path"):
        restore_file(model, 5, "o.png")
    with pytest.raises(TypeError, match="^device: expected"):
        pick_device(0)


@pytest.mark.parametrize("args", [({"task": "denoise"},), ("tiny", 5), ("tiny", None, "two")])
def test_get_preset_type_errors(args):
    with pytest.raises(TypeError, match=r"^(name|task|scale): expected"):
        get_preset(*args)


@pytest.mark.parametrize("bad", ["cfg", "out_dir"])
def test_search_type_errors(bad, tmp_path):
    from hinas_lib.search import search
    cfg, out = tiny_config(), tmp_path / "s"
    kwargs = {"cfg": cfg.to_dict() if bad == "cfg" else cfg, "out_dir": 7 if bad == "out_dir" else out}
    with pytest.raises(TypeError, match=rf"^{bad}: expected"):
        search(kwargs["cfg"], kwargs["out_dir"], progress=False)


@pytest.mark.parametrize("bad", ["cfg", "genotype", "out_dir"])
def test_train_type_errors(bad, tmp_path):
    from hinas_lib.train import train
    cfg = tiny_config()
    args = {"cfg": cfg, "genotype": GENO, "out_dir": tmp_path / "t"}
    args[bad] = {"cfg": "tiny", "genotype": GENO.to_dict()["cells"], "out_dir": 7}[bad]
    with pytest.raises(TypeError, match=rf"^{bad}: expected"):
        train(args["cfg"], args["genotype"], args["out_dir"], progress=False)


# ----------------------------------------------------------------------------- config limits, validate()

@pytest.mark.parametrize("factory, kwargs, named", [
    (SpaceConfig, {"layers": MAX_LAYERS + 1}, "space.layers"),
    (SpaceConfig, {"blocks": MAX_BLOCKS + 1}, "space.blocks"),
    (SpaceConfig, {"filters": 5000}, "space.filters"),
    (SpaceConfig, {"width_factors": (1.0, 1000.0)}, "space.width_factors"),
    (SearchConfig, {"batch_size": 70000}, "search.batch_size"),
    (SearchConfig, {"crop": 9000}, "search.crop"),
    (SearchConfig, {"epochs": 10**7}, "search.epochs"),
    (SearchConfig, {"steps_per_epoch": 10**8}, "search.steps_per_epoch"),
    (TrainConfig, {"filters": 5000}, "train.filters"),
    (TrainConfig, {"batch_size": 70000}, "train.batch_size"),
    (TrainConfig, {"crop": 9000}, "train.crop"),
    (DataConfig, {"num_workers": 5000}, "data.num_workers"),
    (DataConfig, {"train_dir": 5}, "data.train_dir"),
])
def test_absurd_sizes_are_refused(factory, kwargs, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        factory(**kwargs)


def test_paths_in_data_config_become_strings(tmp_path):
    assert DataConfig(train_dir=tmp_path).train_dir == str(tmp_path)


def test_huge_genotype_width_is_refused():
    with pytest.raises(GenotypeError, match="width_factors.*16"):
        Genotype(cells=(CELL,), path=(0,), width_factors=(1.0, 1000.0))
    with pytest.raises(GenotypeError, match="width_factors"):
        Genotype(cells=(CELL,), path=(0,), width_factors=(1.0, float("nan")))
    with pytest.raises(GenotypeError, match="layers"):
        Genotype(cells=(CELL,) * (MAX_LAYERS + 1), path=(0,) * (MAX_LAYERS + 1))


def test_validate_sees_changes_made_after_construction():
    cfg = tiny_config()
    assert cfg.validate() is cfg
    cfg.search.epochs = 0
    with pytest.raises(ConfigError, match=r"search\.epochs"):
        cfg.validate()
    cfg = tiny_config()
    cfg.space.layers = 100000
    with pytest.raises(ConfigError, match=r"space\.layers"):
        cfg.validate()
    cfg = tiny_config()
    cfg.train = {"epochs": 3}
    with pytest.raises(ConfigError, match="train: expected a TrainConfig"):
        cfg.validate()


def test_search_validates_its_config():
    from hinas_lib.search import Searcher
    cfg = tiny_config()
    cfg.search.epochs = 0
    with pytest.raises(ConfigError, match=r"search\.epochs"):
        Searcher(cfg, None, progress=False)


def test_train_validates_its_config():
    from hinas_lib.train import Trainer
    cfg = tiny_config()
    cfg.train.epochs = 0
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        Trainer(cfg, GENO, None, progress=False)


# ----------------------------------------------------------------------------- checkpoints

class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_unsafe_pickle_message_never_suggests_weights_only_false(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"kind": "model", "x": _Evil()}, evil)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(evil)
    msg = str(e.value)
    assert msg.startswith(f"{evil} is not a hinas checkpoint: it contains Python objects that cannot be "
                          "loaded safely (weights_only)")
    assert "False" not in msg and "weights_only=" not in msg and "weights_only` set" not in msg
    code, err = run_cli(capsys, "restore", "--model", evil, grey_png(tmp_path / "i.png"), tmp_path / "o.png")
    assert code == EXIT_USAGE and "evil.pt" in err and "False" not in err


@pytest.mark.parametrize("content, words", [(b"", "empty"), (b"junk", "damaged"), (b"PK\x03\x04junk", "damaged")])
def test_damaged_checkpoints_name_the_file(tmp_path, content, words):
    p = tmp_path / "ck.pt"
    p.write_bytes(content)
    with pytest.raises(CheckpointError, match=words) as e:
        load_checkpoint(p)
    assert str(p) in str(e.value) and "weights_only" not in str(e.value)


# ----------------------------------------------------------------------------- images

def colour_blocks() -> np.ndarray:
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:, :16] = (200, 30, 40)
    rgb[:, 16:32] = (20, 180, 60)
    rgb[:, 32:] = (40, 60, 220)
    return rgb


def test_cmyk_jpeg_colours_are_right(tmp_path):
    rgb = colour_blocks()
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    with Image.open(tmp_path / "c.jpg") as im:
        assert im.mode == "CMYK"
    got = load_image(tmp_path / "c.jpg", None)
    assert got.shape == rgb.shape
    assert np.abs(got * 255 - rgb).max() <= 4  # a few levels of JPEG error, not inverted colours
    grey = load_image(tmp_path / "c.jpg", 1)
    assert np.abs(grey * 255 - rgb @ np.array([0.299, 0.587, 0.114])).max() <= 4


@pytest.mark.parametrize("orientation, turn", [(1, lambda a: a), (3, lambda a: np.rot90(a, 2)),
                                               (6, lambda a: np.rot90(a, -1)), (8, lambda a: np.rot90(a, 1)),
                                               (2, lambda a: a[:, ::-1])])
def test_exif_orientation_is_applied(tmp_path, orientation, turn):
    rgb = colour_blocks()
    exif = Image.Exif()
    exif[0x0112] = orientation
    # no chroma subsampling: it would blur the colours across the block edges
    Image.fromarray(rgb).save(tmp_path / "e.jpg", exif=exif, quality=95, subsampling=0)
    got = load_image(tmp_path / "e.jpg", None)
    want = turn(rgb)
    assert got.shape == want.shape and np.abs(got * 255 - want).max() <= 4


def test_16_bit_rgb_tiff_keeps_precision_and_orientation(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    a16 = np.random.default_rng(0).integers(0, 65536, (6, 8, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", a16, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    got = load_image(tmp_path / "a.tif", None)
    np.testing.assert_allclose(got, np.rot90(a16, -1) / 65535.0, atol=1e-7)
    tifffile.imwrite(tmp_path / "f.tif", np.full((6, 8, 3), 0.25, np.float32), photometric="rgb")
    assert load_image(tmp_path / "f.tif", None).shape == (6, 8, 3)


def test_palette_alpha_one_bit_and_16_bit_grey(tmp_path):
    ramp = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (10, 1))
    Image.fromarray(ramp).convert("P").save(tmp_path / "pg.png")
    assert Image.open(tmp_path / "pg.png").mode == "P"
    g = load_image(tmp_path / "pg.png", None)
    assert g.shape == (10, 32)  # grey palette -> grey
    np.testing.assert_allclose(g * 255, ramp, atol=1e-4)
    rgb = colour_blocks()
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "pc.png")
    np.testing.assert_allclose(load_image(tmp_path / "pc.png", None) * 255, rgb, atol=1e-4)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "pt.png", transparency=0)
    with pytest.raises(ImageError, match="pt.png: .* transparent"):  # issue 25: hidden colours are not shown
        load_image(tmp_path / "pt.png", None)
    Image.fromarray(ramp).convert("LA").save(tmp_path / "la.png")
    assert load_image(tmp_path / "la.png", None).shape == (10, 32)  # opaque alpha: dropped
    Image.fromarray(np.dstack([rgb, np.full((32, 48), 255, np.uint8)])).save(tmp_path / "rgba.png")
    np.testing.assert_allclose(load_image(tmp_path / "rgba.png", None) * 255, rgb, atol=1e-4)  # opaque alpha
    Image.fromarray(ramp > 100).save(tmp_path / "b.png")
    b = load_image(tmp_path / "b.png", None)
    assert b.shape == (10, 32) and set(np.unique(b)) == {0.0, 1.0}
    g16 = (np.arange(320).reshape(10, 32) * 199).astype(np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    np.testing.assert_allclose(load_image(tmp_path / "g16.png", None), g16 / 65535.0, atol=1e-7)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_float_images_are_refused(tmp_path, value):
    a = np.full((5, 6), 0.5, np.float32)
    a[2, 3] = value
    Image.fromarray(a, "F").save(tmp_path / "f.tif")
    with pytest.raises(ImageError, match=r"f\.tif.*NaN or infinite"):
        load_image(tmp_path / "f.tif", None)


def test_non_image_files_get_a_clear_message(tmp_path, capsys, model):
    txt = tmp_path / "notes.png"
    txt.write_text("these are notes, not a picture")
    with pytest.raises(ImageError) as e:
        load_image(txt, None)
    msg = str(e.value)
    assert msg.startswith(f"{txt}: not an image file (or an unsupported format")
    assert "imageio" not in msg and "pip" not in msg
    png = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)).save(png, format="PNG")
    (tmp_path / "cut.png").write_bytes(png.getvalue()[:800])  # truncated in the middle of the pixels
    with pytest.raises(ImageError, match="cut.png"):
        load_image(tmp_path / "cut.png", None)
    code, err = run_cli(capsys, "restore", "--model", model, txt, tmp_path / "o.png")
    assert code == EXIT_USAGE and "notes.png: not an image file" in err and "pip" not in err


# ----------------------------------------------------------------------------- Ctrl-C

def _hinas(*argv):
    return [sys.executable, "-m", "hinas_lib", *[str(a) for a in argv]]


@pytest.mark.slow
def test_ctrl_c_during_search_then_resume(tmp_path):
    """SIGINT after the first checkpoint: exit 130, one line saying how to resume, an intact
    checkpoint, and ``--resume`` finishes the search."""
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(4):
        grey_png(imgs / f"{i}.png", 40, 40, seed=i)
    run = tmp_path / "run"
    # 60 steps: enough that the interrupt, sent as the first checkpoint appears, lands mid-run
    # even on a fast idle machine (with 12 steps the run could finish first and exit 0)
    shrink = ["--set", f"data.train_dir={imgs}", "--set", "search.epochs=6", "--set", "search.warmup_epochs=1",
              "--set", "search.steps_per_epoch=10", "--set", "search.batch_size=2", "--set", "search.crop=16",
              "--set", "search.val_batches=1", "--set", "search.checkpoint_every=1", "--set", "space.filters=4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("HINAS_DEBUG", None)
    proc = subprocess.Popen(_hinas("search", "--preset", "tiny", *shrink, "--out", run, "--no-progress",
                                   "--threads", "1"), cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            # as from a terminal: a test runner started in the background (nohup,
                            # `cmd &` in a script) passes SIGINT on ignored, and Python keeps it so
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 120
        while not (run / "checkpoint.pt").exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, f"the search ended before the interrupt: {proc.communicate()}"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: interrupted; resume with --resume") and "checkpoint.pt" in last
    ckpt = load_checkpoint(run / "checkpoint.pt", kind="search")
    assert 1 <= ckpt["step"] < 60
    assert not list(run.glob(".*.tmp"))  # the interrupted write, if any, cleaned up after itself
    done = subprocess.run(_hinas("search", "--resume", "--out", run, "--no-progress", "--threads", "1"),
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (run / "genotype.json").is_file()
    assert load_checkpoint(run / "checkpoint.pt", kind="search")["step"] == 60
