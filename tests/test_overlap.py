"""Test images that are training images are found by content, whatever their names and encoding."""
import json
import subprocess
import sys

import numpy as np
from PIL import Image

from hinas_lib.overlap import find_overlap


def _photo(seed, shape=(48, 64)):
    rng = np.random.default_rng(seed)
    base = rng.random((6, 8))
    return np.kron(base, np.ones((8, 8)))[: shape[0], : shape[1]] + 0.02 * rng.random(shape)


def test_the_same_photograph_is_found_renamed_requantised_and_rotated():
    train = [(f"{i}.png", _photo(i)) for i in range(5)]
    a = np.round(_photo(3) * 255) / 255 * 0.9 + 0.05  # re-encoded, other grey levels
    test = [("test001.png", a), ("test002.png", _photo(3).T.copy()), ("test003.png", _photo(99))]
    assert find_overlap(test, train) == [("test001.png", "3.png"), ("test002.png", "3.png")]


def test_different_photographs_of_the_same_size_do_not_match():
    train = [(f"{i}.png", _photo(i)) for i in range(20)]
    test = [(f"t{i}.png", _photo(100 + i)) for i in range(20)]
    assert find_overlap(test, train) == []


def test_eval_warns_when_the_test_folder_holds_training_images(tmp_path):
    from hinas_lib.config import get_preset
    from hinas_lib.genotype import default_genotype
    from hinas_lib.model_files import save_model
    from hinas_lib.network import build_network
    train, test = tmp_path / "train", tmp_path / "test"
    train.mkdir()
    test.mkdir()
    for i in range(3):
        Image.fromarray((_photo(i) * 200).astype(np.uint8)).save(train / f"{1000 + i}.png")
    Image.fromarray((_photo(1) * 200).astype(np.uint8)).save(test / "test001.png")
    Image.fromarray((_photo(50) * 200).astype(np.uint8)).save(test / "test002.png")
    cfg = get_preset("tiny", "denoise").replace(data=dict(train_dir=str(train)))
    g = default_genotype(cfg.space.layers, cfg.space.blocks)
    save_model(tmp_path / "model.pt", build_network(g, cfg), cfg, g, {})
    run = subprocess.run([sys.executable, "-m", "hinas_lib", "eval", "--model", str(tmp_path / "model.pt"),
                          "--data", str(test), "--no-baseline", "--no-progress", "--json"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert f"1 of the 2 images in {test} are also in the model's training folder" in run.stderr
    assert "test001 = 1001" in run.stderr and "not test scores" in run.stderr
    assert len(json.loads(run.stdout)["images"]) == 2
    # a folder without training images: no warning
    clean = tmp_path / "clean"
    clean.mkdir()
    (test / "test002.png").rename(clean / "test002.png")
    run = subprocess.run([sys.executable, "-m", "hinas_lib", "eval", "--model", str(tmp_path / "model.pt"),
                          "--data", str(clean), "--no-baseline", "--no-progress"], capture_output=True, text=True)
    assert run.returncode == 0 and "warning" not in run.stderr
