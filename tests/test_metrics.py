"""PSNR / SSIM against scikit-image and closed forms; the differentiable SSIM."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import skimage.data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from hinas_lib.metrics import psnr, rgb_to_y, ssim, ssim_torch  # noqa: E402


from _paths import shared_data  # noqa: E402,F401


def sk_ssim(a, b, data_range=1.0):
    """scikit-image configured as Wang et al. (Gaussian 11x11, sigma 1.5, population covariance)."""
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=data_range, channel_axis=-1 if a.ndim == 3 else None)


def noisy_pair(shape, seed, sigma=0.1):
    rng = np.random.default_rng(seed)
    a = rng.random(shape)
    return a, np.clip(a + rng.normal(0, sigma, shape), 0, 1)


def test_rgb_to_y_matlab_convention():
    px = np.array([[[0, 0, 0], [1, 1, 1], [1, 0, 0]]], dtype=np.float64)
    y = rgb_to_y(px)
    assert y.shape == (1, 3)
    np.testing.assert_allclose(y[0], [16 / 255, 235 / 255, (16 + 65.481) / 255], atol=1e-12)
    t = torch.from_numpy(px.transpose(2, 0, 1)).unsqueeze(0)  # 1,3,1,3
    yt = rgb_to_y(t)
    assert yt.shape == (1, 1, 1, 3)
    np.testing.assert_allclose(yt[0, 0].numpy(), y, atol=1e-12)
    with pytest.raises(ValueError, match="HxWx3"):
        rgb_to_y(np.zeros((4, 4)))


@pytest.mark.parametrize("shape", [(32, 40), (33, 47, 3), (64, 64, 1)])
def test_psnr_matches_skimage(shape):
    a, b = noisy_pair(shape, seed=len(shape))
    assert psnr(b, a) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=1.0), abs=1e-6)
    assert psnr(b * 255, a * 255, data_range=255) == pytest.approx(
        peak_signal_noise_ratio(a * 255, b * 255, data_range=255), abs=1e-6)


def test_psnr_crop_and_y_channel():
    a, b = noisy_pair((30, 36, 3), seed=3)
    want = peak_signal_noise_ratio(rgb_to_y(a)[4:-4, 4:-4], rgb_to_y(b)[4:-4, 4:-4], data_range=1.0)
    assert psnr(b, a, crop_border=4, test_y_channel=True) == pytest.approx(want, abs=1e-9)
    assert psnr(a, a) == float("inf")


def test_torch_and_numpy_inputs_agree():
    a, b = noisy_pair((24, 28, 3), seed=4)
    ta, tb = (torch.from_numpy(x.transpose(2, 0, 1)).float() for x in (a, b))
    for f in (psnr, ssim):
        ref = f(b.astype(np.float32), a.astype(np.float32))
        assert f(tb, ta) == pytest.approx(ref, abs=1e-6)
        assert f(tb[None], ta[None]) == pytest.approx(ref, abs=1e-6)
        assert isinstance(f(tb, ta), float)


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(16, 16\).*\(16, 17\)"):
        psnr(np.zeros((16, 16)), np.zeros((16, 17)))
    with pytest.raises(ValueError, match=r"\(3, 16, 16\).*\(1, 16, 16\)"):
        ssim(torch.zeros(3, 16, 16), torch.zeros(1, 16, 16))


def test_uint8_with_unit_range_is_refused():
    with pytest.raises(ValueError, match="data_range=255"):
        psnr(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="torch.uint8"):
        ssim(torch.zeros(1, 16, 16, dtype=torch.uint8), torch.zeros(1, 16, 16))


@pytest.mark.parametrize("shape,seed", [((48, 48), 0), ((37, 59), 1), ((40, 52, 3), 2), ((11, 11), 3)])
def test_ssim_matches_skimage_random(shape, seed):
    a, b = noisy_pair(shape, seed)
    assert ssim(b, a) == pytest.approx(sk_ssim(b, a), abs=1e-9)


def test_ssim_matches_skimage_on_photographs():
    rng = np.random.default_rng(5)
    for img in (skimage.data.camera(), skimage.data.astronaut()[100:300, 150:400]):
        clean = img / 255.0
        for sigma in (0.05, 0.2):
            noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 1)
            assert ssim(noisy, clean) == pytest.approx(sk_ssim(noisy, clean), abs=1e-9)
            # Border crop = skimage on the cropped arrays.
            assert ssim(noisy, clean, crop_border=4) == pytest.approx(
                sk_ssim(noisy[4:-4, 4:-4], clean[4:-4, 4:-4]), abs=1e-9)
    # float32 inputs: skimage works in float32, we in float64.
    c32, n32 = clean.astype(np.float32), noisy.astype(np.float32)
    assert ssim(n32, c32) == pytest.approx(sk_ssim(n32, c32), abs=1e-5)


def test_ssim_matches_skimage_on_benchmark_images():
    root = shared_data()
    if not (root / "Set12").is_dir():
        pytest.skip(f"shared benchmark images not found at {root}")
    import imageio.v3 as iio
    rng = np.random.default_rng(6)
    for name in ("01.png", "05.png", "08.png"):
        clean = iio.imread(root / "Set12" / name) / 255.0
        noisy = np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1)
        assert ssim(noisy, clean) == pytest.approx(sk_ssim(noisy, clean), abs=1e-9)
        assert ssim(noisy * 255, clean * 255, data_range=255) == pytest.approx(
            sk_ssim(noisy * 255, clean * 255, data_range=255), abs=1e-9)


def test_ssim_closed_form_for_constant_images():
    # Constant images: variances vanish, SSIM = luminance term only.
    mx, my = 0.5, 0.25
    c1 = 0.01 ** 2
    want = (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
    assert ssim(np.full((20, 20), mx), np.full((20, 20), my)) == pytest.approx(want, abs=1e-12)


def test_ssim_too_small_image():
    with pytest.raises(ValueError, match="10x12"):
        ssim(np.zeros((10, 12)), np.zeros((10, 12)))


def test_ssim_torch_equals_ssim_and_has_gradients():
    a, b = noisy_pair((2, 3, 32, 36), seed=7)
    x = torch.from_numpy(b).requires_grad_(True)
    y = torch.from_numpy(a)
    s = ssim_torch(x, y)
    # Batch mean of the per-image values (all images the same size).
    per = [ssim(b[i].transpose(1, 2, 0), a[i].transpose(1, 2, 0)) for i in range(2)]
    assert float(s.detach()) == pytest.approx(np.mean(per), abs=1e-12)
    (-torch.log(s)).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert float(ssim_torch(y, y)) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="N,C,H,W"):
        ssim_torch(y[0], y[0])


@pytest.mark.parametrize("form", ["compact", "authors"])
def test_the_training_loss_is_float32_under_autocast(form):
    # `--amp` runs the network under autocast, and the loss is computed inside that region;
    # SSIM's window convolutions in bf16 round its variances (differences of means) and made
    # the log-SSIM term differ, or NaN. The loss must be the float32 loss, gradient included.
    from hinas_lib.losses import RestorationLoss

    a, b = noisy_pair((2, 1, 32, 32), seed=3)
    target = torch.from_numpy(a).float()
    loss_fn = RestorationLoss("mse", 1.0, form)
    ref_x = torch.from_numpy(b).float().requires_grad_(True)
    ref = loss_fn(ref_x, target)
    ref.backward()
    x = torch.from_numpy(b).float().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = loss_fn(x.to(torch.bfloat16).float(), target)  # what an autocast network hands over
    got.backward()
    assert got.dtype == torch.float32
    # the input's bf16 rounding is the only difference left: well under the float32 loss's scale
    assert got.item() == pytest.approx(ref.item(), rel=2e-3)
    assert x.grad.dtype == torch.float32
    assert float(torch.nn.functional.cosine_similarity(x.grad.flatten(), ref_x.grad.flatten(), 0)) > 0.999
    with torch.autocast("cpu", dtype=torch.bfloat16):
        same = loss_fn(x.detach(), target)
    assert same.item() == ref.item()
