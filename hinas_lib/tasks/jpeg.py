"""JPEG compression artefact removal (deblocking), grey or colour.

The degradation is baseline JPEG through Pillow's libjpeg at a quality factor
(1-100; the usual test levels are 10, 20, 30, 40, as in ARCNN and DnCNN-3), of
the 8-bit image: deterministic, so evaluation pairs need no seed, and the same
bytes ``data_scripts/prepare_jpeg.py`` writes for a paired test folder. Colour
images are compressed as Pillow does by default (YCbCr, 4:2:0 chroma). Training
draws one quality per patch from ``task.qualities`` (several: one blind model,
like DnCNN-3); evaluation uses ``task.eval_quality``.

The network predicts the artefacts (residual head, like denoising). The classical
baseline is total-variation smoothing (Chambolle's, from scikit-image) with a
weight per quality chosen on Train400 images (:data:`TV_WEIGHTS`), an old and
simple deblocker; the compressed input itself is the other column.
"""
from __future__ import annotations

import io
from typing import Dict, Optional

import numpy as np
import torch
from PIL import Image

from .. import data
from .base import ResidualHead, Task, register_task

JPEG_QUALITIES = (10, 20, 30, 40)
# TV weight (images in [0, 1]) per quality; between two listed qualities the nearer lower one.
# Chosen on 12 Train400 images (python -m benchmarks.jpeg_tv_weights), never on a test set:
# +0.60, +0.51, +0.48, +0.42 dB over the JPEG input there at q10, 20, 30, 40.
TV_WEIGHTS = {10: 0.02, 20: 0.015, 30: 0.01, 40: 0.01, 60: 0.005, 80: 0.005, 95: 0.0}


def jpeg_compress(img: torch.Tensor, quality: int) -> torch.Tensor:
    """A (C,H,W) float image in [0, 1] after baseline JPEG at ``quality`` (1-100).

    The image is first rounded to 8 bits, as saving it would.
    """
    q = int(quality)
    if not 1 <= q <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    if img.dim() != 3 or img.shape[0] not in (1, 3):
        raise ValueError(f"expected a (1|3, H, W) image, got shape {tuple(img.shape)}")
    a = (img.detach().clamp(0, 1) * 255.0).round().to(torch.uint8).cpu()
    arr = a[0].numpy() if a.shape[0] == 1 else a.permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=q)
    out = np.asarray(Image.open(io.BytesIO(buf.getvalue())), dtype=np.float32) / 255.0
    t = torch.from_numpy(out[None] if out.ndim == 2 else out.transpose(2, 0, 1).copy())
    return t.to(img.device, img.dtype)


def tv_weight(quality: int) -> float:
    """The TV baseline's weight at ``quality`` (:data:`TV_WEIGHTS`)."""
    keys = sorted(TV_WEIGHTS)
    below = [k for k in keys if k <= int(quality)]
    return TV_WEIGHTS[below[-1] if below else keys[0]]


@register_task
class JpegDeblock(Task):
    """JPEG artefact removal at a quality factor (see the module docstring)."""

    name = "jpeg"
    level_name = "quality"
    level_label = "JPEG quality (1-100)"
    level_choices = None           # any quality 1..100; JPEG_QUALITIES are the usual ones
    level_type = int
    level_flag = "--quality"
    default_channels = 1
    input_label = "JPEG"
    baseline_label = "TV"
    pixel_loss = "mse"
    report_title = "JPEG artefact removal (PSNR dB / SSIM, whole image)"
    report_columns = (("input", "JPEG"), ("baseline", "TV (skimage)"))
    # no figures quoted: the published grey-LIVE1 tables (ARCNN, DnCNN-3) compress with MATLAB's
    # encoder and its own Y conversion, so they are not the same inputs as Pillow's
    published_note = ("Published grey LIVE1 results (ARCNN, DnCNN-3) use MATLAB's JPEG encoder; "
                      "they are not comparable to these Pillow-compressed inputs and are not quoted.")

    @classmethod
    def check(cls, cfg):
        qs = tuple(cfg.qualities)
        if not qs or not all(isinstance(q, int) and not isinstance(q, bool) and 1 <= q <= 100 for q in qs):
            return "task.qualities", f"need at least one integer JPEG quality in 1..100, got {list(qs)}"
        if not 1 <= cfg.eval_quality <= 100:
            return "task.eval_quality", f"must be a JPEG quality in 1..100, got {cfg.eval_quality}"
        return None

    def level(self, override=None) -> int:
        q = int(self.cfg.eval_quality if override is None else override)
        if not 1 <= q <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, got {q}")
        return q

    def describe_level(self, level=None) -> str:
        return f"quality={self.level(level)}"

    @classmethod
    def level_changes(cls, level) -> Dict:
        if float(level) != int(level):
            raise ValueError(f"a JPEG quality is an integer 1..100, got {level}")
        return {"qualities": (int(level),), "eval_quality": int(level)}

    @classmethod
    def format_level(cls, level) -> str:
        return f"q{int(level)}"

    def draw_quality(self, generator: Optional[torch.Generator]) -> int:
        qs = self.cfg.qualities
        return int(qs[int(torch.randint(len(qs), (1,), generator=generator))])

    def degrade(self, gt, generator):
        return jpeg_compress(gt, self.draw_quality(generator))

    def eval_pair(self, gt, name, level=None):
        return jpeg_compress(gt, self.level(level)), gt

    def head(self, filters):
        return ResidualHead(filters, self.channels)

    def authors_output(self, lq, pred, *, supernet):
        # the authors have no JPEG task: their denoising output, the same residual form
        out = lq - pred
        return torch.sigmoid(out) if supernet else out

    @property
    def metric_kwargs(self):
        return {"crop_border": 0, "test_y_channel": self.channels == 3}

    @property
    def metric_label(self) -> str:
        return "Y channel" if self.channels == 3 else "all pixels"

    def baseline(self, lq, level=None):
        from skimage.restoration import denoise_tv_chambolle  # noqa: PLC0415 (slow import, used rarely)
        img = data.to_numpy(lq)
        w = tv_weight(self.level(level))
        if w == 0:
            return lq.clamp(0, 1)
        out = denoise_tv_chambolle(img, weight=w, channel_axis=-1 if img.ndim == 3 else None)
        return data.to_tensor(out.astype(np.float32)).clamp(0, 1)
