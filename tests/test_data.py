"""Image loading, the embedded split, patch / evaluation datasets and seeded loaders."""
import os
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

from hinas_lib.config import TaskConfig  # noqa: E402
from hinas_lib.data import (EMBEDDED_IMAGES, ImageError, embedded_names, list_images,  # noqa: E402
                            load_embedded, load_image)
from hinas_lib.datasets import EvalDataset, PatchDataset, dihedral  # noqa: E402
from hinas_lib.degrade import add_gaussian_noise, bicubic_downscale, noise_seed  # noqa: E402
from hinas_lib.splits import embedded_split, folder_split  # noqa: E402
from hinas_lib.streams import batch_stream  # noqa: E402
from hinas_lib.tasks import get_task  # noqa: E402


from _paths import shared_data  # noqa: E402,F401


def task(name="denoise", channels=None, **kw):
    """The task object the datasets are given (e.g. ``task("sr", scale=3)``)."""
    channels = channels or (1 if name == "denoise" else 3)
    return get_task(TaskConfig(task=name, channels=channels, **kw))


def ramp(h, w, c=None):
    """A deterministic, non-symmetric float image in [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = ((3 * yy + 7 * xx) % 97) / 96.0
    return img if c is None else np.stack([img, img[::-1], 1 - img], axis=2)


# ----------------------------------------------------------------------------- embedded images

def test_embedded_split_is_fixed_disjoint_and_loads():
    names = embedded_names()
    assert len(names) == len(set(names)) == 13
    assert {"camera", "astronaut", "coffee"} <= set(EMBEDDED_IMAGES["test"])
    split = embedded_split(1)
    assert [n for n, _ in split["test"]] == list(EMBEDDED_IMAGES["test"])
    for part in split.values():
        for name, img in part:
            assert img.dtype == np.float32 and img.ndim == 2, name
            assert 0 <= img.min() and img.max() <= 1 and min(img.shape) >= 191


def test_embedded_channel_conversion():
    rgb = load_embedded("astronaut", 3)
    grey = load_embedded("astronaut", 1)
    assert rgb.shape == (512, 512, 3) and grey.shape == (512, 512)
    # BT.601 luma, full range.
    np.testing.assert_allclose(grey, rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32), atol=1e-6)
    cam = load_embedded("camera", 3)
    assert np.array_equal(cam[..., 0], cam[..., 2]) and np.array_equal(cam[..., 0], load_embedded("camera", 1))
    with pytest.raises(ValueError, match="unknown embedded image"):
        load_embedded("lena", 1)


# ----------------------------------------------------------------------------- files

def test_load_image_formats(tmp_path):
    rgb8 = (ramp(20, 24, 3) * 255).round().astype(np.uint8)
    iio.imwrite(tmp_path / "rgb.png", rgb8)
    iio.imwrite(tmp_path / "rgb.bmp", rgb8)
    iio.imwrite(tmp_path / "rgba.png", np.dstack([rgb8, np.full((20, 24), 255, np.uint8)]))
    iio.imwrite(tmp_path / "rgba7.png", np.dstack([rgb8, np.full((20, 24), 7, np.uint8)]))
    Image.fromarray(rgb8[..., 0]).convert("LA").save(tmp_path / "la.png")
    Image.fromarray(rgb8).convert("P").save(tmp_path / "pal.png")
    g16 = (np.arange(480).reshape(20, 24) * 131).astype(np.uint16)
    iio.imwrite(tmp_path / "g16.png", g16)
    iio.imwrite(tmp_path / "rgb16.tif", (ramp(20, 24, 3) * 65535).round().astype(np.uint16))
    smooth = np.dstack([np.tile(np.linspace(0, 255, 24), (20, 1))] * 3).astype(np.uint8)
    iio.imwrite(tmp_path / "smooth.jpg", smooth, quality=95)

    np.testing.assert_allclose(load_image(tmp_path / "rgb.png", 3), rgb8 / 255.0, atol=1e-7)
    np.testing.assert_allclose(load_image(tmp_path / "rgb.bmp", 3), rgb8 / 255.0, atol=1e-7)
    np.testing.assert_allclose(load_image(tmp_path / "rgba.png", 3), rgb8 / 255.0, atol=1e-7)  # opaque alpha dropped
    with pytest.raises(ImageError, match="rgba7.png: 480 of 480 pixels are transparent or translucent"):
        load_image(tmp_path / "rgba7.png", 3)
    np.testing.assert_allclose(load_image(tmp_path / "rgba7.png", 3, background="black"),
                               rgb8 / 255.0 * 7 / 255, atol=1e-6)
    assert load_image(tmp_path / "la.png", 1).shape == (20, 24)
    assert load_image(tmp_path / "pal.png", 3).shape == (20, 24, 3)
    g = load_image(tmp_path / "g16.png", 1)
    np.testing.assert_allclose(g, g16 / 65535.0, atol=1e-7)  # full 16-bit precision
    assert len(np.unique(g)) > 256
    np.testing.assert_allclose(load_image(tmp_path / "rgb16.tif", 3), ramp(20, 24, 3), atol=1e-5)
    assert np.abs(load_image(tmp_path / "smooth.jpg", 3) - smooth / 255.0).max() < 0.03
    grey = load_image(tmp_path / "rgb.png", 1)
    np.testing.assert_allclose(grey, (rgb8 / 255.0) @ [0.299, 0.587, 0.114], atol=1e-6)


def test_unreadable_and_missing_files_raise_image_error(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(ImageError, match="broken.png"):
        load_image(bad, 1)
    with pytest.raises(ImageError, match="nothere.png"):
        load_image(tmp_path / "nothere.png", 1)
    assert issubclass(ImageError, ValueError)


def test_list_images_sorted_filtered_recursive(tmp_path):
    for rel in ("b.PNG", "a.jpg", "sub/c.bmp", "notes.txt"):
        p = tmp_path / rel
        p.parent.mkdir(exist_ok=True)
        if p.suffix == ".txt":
            p.write_text("x")
        else:
            Image.fromarray(np.zeros((4, 4), np.uint8)).save(p, format="BMP" if p.suffix == ".bmp" else None)
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG"]
    assert [p.name for p in list_images(tmp_path, recursive=True)] == ["a.jpg", "b.PNG", "c.bmp"]


def test_empty_or_missing_folder_errors_name_the_folder(tmp_path):
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(ImageError, match="empty_dir.*no images"):
        list_images(empty)
    with pytest.raises(ImageError, match="missing_dir.*does not exist"):
        list_images(tmp_path / "missing_dir")


def test_folder_split(tmp_path):
    for i in range(10):
        iio.imwrite(tmp_path / f"im{i:02d}.png", (ramp(16, 16) * 255).astype(np.uint8))
    a = folder_split(tmp_path, val_fraction=0.3, seed=1)
    b = folder_split(tmp_path, val_fraction=0.3, seed=1)
    assert [n for n, _ in a["val"]] == [n for n, _ in b["val"]]
    assert len(a["val"]) == 3 and len(a["train"]) == 7
    assert not {n for n, _ in a["val"]} & {n for n, _ in a["train"]}
    both = folder_split(tmp_path, tmp_path)
    assert len(both["train"]) == len(both["val"]) == 10


# ----------------------------------------------------------------------------- augmentation

def test_dihedral_group_distinct():
    x = torch.arange(20.0).reshape(1, 4, 5)
    outs = [dihedral(x, k) for k in range(8)]
    keys = {(tuple(o.shape), tuple(o.flatten().tolist())) for o in outs}
    assert len(keys) == 8
    # k=1 is a quarter turn anticlockwise, k=4 a left-right mirror (numpy conventions).
    assert np.array_equal(outs[1][0].numpy(), np.rot90(x[0].numpy()))
    assert np.array_equal(outs[4][0].numpy(), np.fliplr(x[0].numpy()))


# ----------------------------------------------------------------------------- datasets

def test_too_small_image_error_names_image_and_sizes():
    imgs = [ramp(64, 64), ramp(30, 50)]
    with pytest.raises(ValueError, match=r"'tiny' is 30x50, smaller than the 40x40 crop"):
        PatchDataset(imgs, ["big", "tiny"], task(), 40)
    with pytest.raises(ValueError, match=r"'tiny' is 30x50, smaller than the 36x36 crop \(input 12 x scale 3\)"):
        PatchDataset(imgs, ["big", "tiny"], task("sr", scale=3), 12)


@pytest.mark.parametrize("channels", [1, 3])
def test_denoise_patches(channels):
    ds = PatchDataset([ramp(70, 90, 3)], ["r"], task(channels=channels, sigmas=(50,)), 40,
                      generator=torch.Generator().manual_seed(0), length=5)
    assert len(ds) == 5
    noisy, clean = ds[0]
    assert noisy.shape == clean.shape == (channels, 40, 40)
    assert noisy.dtype == clean.dtype == torch.float32
    assert float((noisy - clean).std()) == pytest.approx(50 / 255, rel=0.1)
    with pytest.raises(IndexError):
        ds[5]


def test_blind_sigma_range_and_sigma_list():
    img = [np.full((64, 64), 0.5, np.float32)]
    g = torch.Generator().manual_seed(0)
    ds = PatchDataset(img, ["flat"], task(sigma_range=(5, 55)), 48, generator=g, length=40)
    stds = [float((n - c).std()) * 255 for n, c in (ds[i] for i in range(40))]
    assert 5 * 0.9 < min(stds) and max(stds) < 55 * 1.1 and max(stds) - min(stds) > 25
    ds = PatchDataset(img, ["flat"], task(sigmas=(15, 50)), 48, generator=g, length=40)
    stds = sorted(float((n - c).std()) * 255 for n, c in (ds[i] for i in range(40)))
    assert stds[0] == pytest.approx(15, rel=0.1) and stds[-1] == pytest.approx(50, rel=0.1)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_sr_patch_shapes_and_degradation(scale):
    ds = PatchDataset([ramp(100, 110, 3)], ["r"], task("sr", scale=scale), 12,
                      generator=torch.Generator().manual_seed(scale))
    lr, hr = ds[3]
    assert lr.shape == (3, 12, 12) and hr.shape == (3, 12 * scale, 12 * scale)
    assert torch.equal(lr, bicubic_downscale(hr, scale, emulate_uint8=True))


def test_augmentations_are_used():
    img = [ramp(40, 40)]
    ds = PatchDataset(img, ["r"], task("sr", channels=1, scale=2), 20, generator=torch.Generator().manual_seed(0),
                      length=64)
    seen = {tuple(ds[i][1].flatten()[:8].tolist()) for i in range(64)}
    assert len(seen) == 8  # whole-image crop: only the 8 flips/rotations can differ
    ds = PatchDataset(img, ["r"], task("sr", channels=1, scale=2), 20, augment=False)
    assert len({tuple(ds[i][1].flatten().tolist()) for i in range(16)}) == 1


def test_eval_noise_is_deterministic_across_constructions():
    imgs, names = [ramp(48, 40), ramp(32, 36)], ["first", "second"]
    a = EvalDataset(imgs, names, task(), level=25)
    b = EvalDataset(imgs, names, task(eval_sigma=25.0))
    for i in range(2):
        (na, ca, name), (nb, cb, _) = a[i], b[i]
        assert torch.equal(na, nb) and torch.equal(ca, cb) and name == names[i]
    g = torch.Generator().manual_seed(noise_seed("first", 25))
    assert torch.equal(a[0][0], add_gaussian_noise(a[0][1], 25, generator=g))
    assert not torch.equal(a[0][0], EvalDataset(imgs, names, task(), level=50)[0][0])
    assert not torch.equal(a[0][0], EvalDataset(imgs, ["other", "second"], task(), level=25)[0][0])


def test_eval_sr_modcrops():
    ds = EvalDataset([ramp(50, 47, 3)], ["odd"], task("sr", scale=3))
    lr, hr, name = ds[0]
    assert hr.shape == (3, 48, 45) and lr.shape == (3, 16, 15) and name == "odd"


def test_eval_sr_matches_set5_lr_files():
    root = shared_data() / "Set5"
    if not (root / "HR").is_dir():
        pytest.skip(f"Set5 not found at {root}")
    hr = load_image(root / "HR" / "bird.png", 3)
    lr, _, _ = EvalDataset([hr], ["bird"], task("sr", scale=3))[0]
    want = iio.imread(root / "LR_bicubic" / "X3" / "birdx3.png")
    np.testing.assert_array_equal((lr.numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8), want)


# ----------------------------------------------------------------------------- streams

def _batches(it):
    return [torch.cat([x.flatten(), y.flatten()]) for x, y in it]


def test_batch_stream_is_seeded_and_worker_independent():
    imgs, names = [ramp(64, 64), ramp(64, 80)], ["a", "b"]
    ds = PatchDataset(imgs, names, task(sigmas=(10, 30)), 16, length=12)
    cpu = torch.device("cpu")

    def run(seed, workers=0, start=0, steps=3):
        return _batches(batch_stream(ds, seed, 4, start, steps, cpu, workers))

    first, again, other = run(1), run(1), run(2)
    assert len(first) == 3
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))
    assert all(torch.equal(a, b) for a, b in zip(first, run(1, workers=2)))
    # a resumed stream starts where it stopped
    assert all(torch.equal(a, b) for a, b in zip(first[1:], run(1, start=1, steps=2)))


def test_batch_stream_slices_per_rank():
    ds = PatchDataset([ramp(64, 64)], ["a"], task(), 16, length=12)
    cpu = torch.device("cpu")
    whole = next(batch_stream(ds, 3, 4, 2, 1, cpu))
    parts = [next(batch_stream(ds, 3, 4, 2, 1, cpu, rank=r, world_size=2)) for r in range(2)]
    for i in range(2):
        assert torch.equal(torch.cat([p[i] for p in parts]), whole[i])
    with pytest.raises(ValueError, match="does not split evenly"):
        batch_stream(ds, 3, 4, 0, 1, cpu, rank=0, world_size=3)
