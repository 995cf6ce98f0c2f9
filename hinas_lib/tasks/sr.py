"""Single-image super-resolution from MATLAB-bicubic low-resolution input (the paper's DIV2K task)."""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F

from ..degrade import bicubic_downscale, bicubic_upscale, modcrop
from .base import PixelShuffleHead, Task, register_task

SR_SCALES = (2, 3, 4)


@register_task
class SuperResolution(Task):
    """Bicubic downscaling by ``scale`` (MATLAB-exact, on 8-bit levels like the
    benchmark LR files); scored on the Y channel with ``scale`` pixels shaved."""

    name = "sr"
    level_name = "scale"
    level_label = "SR scale"
    default_channels = 3
    input_label = "bicubic"
    baseline_label = "bicubic"
    baseline_is_input = True
    pixel_loss = "l1"
    level_choices = SR_SCALES
    level_type = int
    level_flag = "--scale"
    tiny_crops = (24, 32)   # LR pixels
    fast_crops = (12, 12)
    course_entry = "sr-x2"
    report_title = "Super-resolution (PSNR dB / SSIM on Y, shave = scale)"
    report_columns = (("input", "bicubic"),)
    published_note = "Published bicubic on Set5: x2 33.66, x3 30.39, x4 28.42 dB."

    @classmethod
    def check(cls, cfg):
        if cfg.scale not in SR_SCALES:
            return "task.scale", f"the pixel-shuffle head supports x2, x3, x4; got {cfg.scale}"
        return None

    @property
    def scale(self) -> int:
        return int(self.cfg.scale)

    def level(self, override=None) -> int:
        if override is not None and int(override) != self.scale:
            raise ValueError(f"this is an x{self.scale} SR task; x{override} was asked for")
        return self.scale

    def describe_level(self, level=None) -> str:
        return f"x{self.level(level)}"

    @classmethod
    def level_changes(cls, level) -> Dict:
        return {"scale": int(level)}

    @classmethod
    def format_level(cls, level) -> str:
        return f"x{int(level)}"

    def degrade(self, gt, generator):
        return bicubic_downscale(gt, self.scale, emulate_uint8=True).contiguous()

    def eval_pair(self, gt, name, level=None):
        hr = modcrop(gt, self.level(level)).contiguous()
        return bicubic_downscale(hr, self.scale, emulate_uint8=True).contiguous(), hr

    def head(self, filters):
        return PixelShuffleHead(filters, self.channels, self.scale)

    def authors_output(self, lq, pred, *, supernet):
        # their supernet upsamples bilinearly and squashes; their retraining network bicubic, no sigmoid
        if supernet:
            return torch.sigmoid(F.interpolate(lq, scale_factor=self.scale, mode="bilinear") + pred)
        return F.interpolate(lq, size=pred.shape[-2:], mode="bicubic") + pred

    @property
    def metric_kwargs(self):
        return {"crop_border": self.scale, "test_y_channel": self.channels == 3}

    @property
    def metric_label(self) -> str:
        return f"Y channel, shave {self.scale}" if self.channels == 3 else f"shave {self.scale}"

    def input_view(self, lq):
        return bicubic_upscale(lq, self.scale).clamp(0, 1)

    def baseline(self, lq, level=None):
        return self.input_view(lq)
