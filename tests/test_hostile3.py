"""Issue 25: silent wrong results, tracebacks and absurd values a third round of hostile
use found. Each case must give the right result or one line naming the input and the
setting, with the README's exit code."""
from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hinas_lib import cli
from hinas_lib.checkpoint import CheckpointError, atomic_save
from hinas_lib.cli import EXIT_USAGE, build_config, main, make_parser
from hinas_lib.config import Config, ConfigError, SearchConfig, SpaceConfig, TaskConfig, TrainConfig, get_preset
from hinas_lib.genotype import Genotype, GenotypeError
from hinas_lib.network import HiNASNet, load_model, model_checkpoint
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
    ckpt = model_checkpoint(HiNASNet(GENO, cfg), cfg, GENO, {})
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


def test_warmup_must_leave_epochs_that_search_the_architecture():
    with pytest.raises(ConfigError, match=r"^search.warmup_epochs"):
        SearchConfig(epochs=3, warmup_epochs=3)
    SearchConfig(epochs=3, warmup_epochs=2)
    with pytest.raises(ConfigError, match=r"^search.warmup_epochs"):
        get_preset("tiny").replace(search={"epochs": 4})  # tiny's warm-up is 4 epochs


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
