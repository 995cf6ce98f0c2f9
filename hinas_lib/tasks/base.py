"""The interface every restoration task implements, the compact design's output
heads, and the registry the tasks put themselves in.

A :class:`Task` owns the degradation that makes training pairs and evaluation
pairs, the network's output head, the training loss, the metric conventions
(Y channel, border shave), the classical baseline it is compared with, its
output scale, its *level* (noise sigma, SR scale, JPEG quality) and how reports
and presets size it. The rest of the library asks the task and never tests its
name.

Adding a task = one module in this package (a :class:`Task` subclass decorated
with :func:`register_task`, imported by ``__init__``), its data script, its tests.
"""
from __future__ import annotations

from typing import Callable, ClassVar, Dict, Optional, Tuple, Type

import torch
import torch.nn.functional as F
from torch import nn

from ..datasets import EvalDataset, PairedEvalDataset, PairedPatchDataset, PatchDataset
from ..losses import RestorationLoss

class Task:
    """The interface every task implements (see the module docstring).

    Built from a :class:`~hinas_lib.config.TaskConfig` (``cfg``): its
    ``channels``, and the task's own fields (``sigmas``/``sigma_range``/
    ``eval_sigma`` for noise, ``scale`` for SR).
    """

    name: ClassVar[str]
    level_name: ClassVar[str]        # what the task's level is called: "sigma", "scale"
    level_label: ClassVar[str]       # ... for people (widgets, plots)
    level_choices: ClassVar[Optional[Tuple]] = None  # the levels there are, if a fixed set
    level_type: ClassVar[type] = float  # what a level is when not one of level_choices
    level_flag: ClassVar[str]        # the command-line option that sets it ("--sigma")
    default_channels: ClassVar[int]  # 1 grey, 3 RGB
    input_label: ClassVar[str]       # the degraded input in tables ("noisy", "bicubic")
    baseline_label: ClassVar[str]    # the classical method it is compared with
    baseline_is_input: ClassVar[bool] = False  # the baseline is the input itself (bicubic SR)
    pixel_loss: ClassVar[str] = "mse"
    # further classical methods a table may add: name -> fn(lq, level) -> output
    extra_baselines: ClassVar[Dict[str, Callable]] = {}
    # sizing: patch sides in input pixels, (search, retrain), of the tiny preset and of fast mode
    tiny_crops: ClassVar[Tuple[int, int]] = (40, 48)
    fast_crops: ClassVar[Tuple[int, int]] = (24, 24)
    course_entry: ClassVar[Optional[str]] = None  # the zoo entry the course shows for it
    # reports (zoo/RESULTS.md): section title, score columns (key, heading) of the classical
    # methods and of ours, and the published anchors quoted under the table
    report_title: ClassVar[str] = ""
    report_columns: ClassVar[Tuple[Tuple[str, str], ...]] = ()
    report_ours: ClassVar[Tuple[Tuple[str, str], ...]] = (("ours", "HiNAS (ours)"),)
    published_note: ClassVar[str] = ""

    def __init__(self, cfg):
        self.cfg = cfg
        self.channels = int(cfg.channels)

    # ---- configuration -------------------------------------------------------
    @classmethod
    def check(cls, cfg) -> Optional[Tuple[str, str]]:
        """``(field, problem)`` if ``cfg`` is not valid for this task, else None."""
        return None

    @property
    def scale(self) -> int:
        """Output pixels per input pixel along each axis."""
        return 1

    def level(self, override: Optional[float] = None):
        """The evaluation level (noise sigma, SR scale), ``override`` if given."""
        raise NotImplementedError

    def describe_level(self, level=None) -> str:
        raise NotImplementedError

    @classmethod
    def level_changes(cls, level) -> Dict:
        """The TaskConfig fields that train and evaluate at ``level`` (call
        :func:`hinas_lib.tasks.with_level`, which validates the result)."""
        raise NotImplementedError

    @classmethod
    def format_level(cls, level) -> str:
        """A level for tables: ``50``, ``x2``, ``q10``."""
        return f"{level:g}" if isinstance(level, float) else str(level)

    # ---- data ----------------------------------------------------------------
    def gt_crop(self, crop: int) -> int:
        """Side of the target patch for an input patch of side ``crop``."""
        return crop * self.scale

    def degrade(self, gt: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
        """A random training degradation of one target patch (C,H,W)."""
        raise NotImplementedError

    def eval_pair(self, gt: torch.Tensor, name: str, level=None) -> Tuple[torch.Tensor, torch.Tensor]:
        """A deterministic ``(lq, gt)`` evaluation pair for a whole image."""
        raise NotImplementedError

    def patch_dataset(self, images, crop: int, *, augment: bool = True, length: Optional[int] = None,
                      rescale: Optional[Tuple[float, float]] = None, inputs=None):
        """Random training pairs from ``(name, array)`` images; ``crop`` is the input patch side
        (``rescale``: see :class:`~hinas_lib.datasets.PatchDataset`). ``inputs``: the real
        degraded input of each image (:func:`~hinas_lib.datasets.match_inputs`) instead of
        the task's synthetic degradation."""
        names, arrays = [n for n, _ in images], [a for _, a in images]
        if inputs is not None:
            if rescale is not None:
                raise ValueError("data.rescale: real degraded inputs cannot be rescaled (the degradation would "
                                 "change); unset it for paired data")
            return PairedPatchDataset(inputs, arrays, names, self, crop, augment=augment, length=length)
        return PatchDataset(arrays, names, self, crop, augment=augment, length=length, rescale=rescale)

    def eval_dataset(self, images, level=None, inputs=None):
        """Whole-image ``(lq, gt, name)`` triples of ``(name, array)`` images (of their real
        degraded ``inputs`` when given: then ``level`` is what those inputs are at)."""
        names, arrays = [n for n, _ in images], [a for _, a in images]
        if inputs is not None:
            return PairedEvalDataset(inputs, arrays, names, self)
        return EvalDataset(arrays, names, self, level=level)

    # ---- network -------------------------------------------------------------
    def head(self, filters: int) -> nn.Module:
        """The compact design's output head: ``head(features, lq) -> output``."""
        raise NotImplementedError

    def loss(self, ssim_weight: Optional[float] = None) -> RestorationLoss:
        """The training loss (``ssim_weight`` overrides the config's, e.g. for retraining)."""
        w = self.cfg.ssim_weight if ssim_weight is None else ssim_weight
        return RestorationLoss(self.pixel_loss, w, self.cfg.loss_form)

    # ---- the authors' output (hinas_lib.authors) ---------------------------------
    def authors_clf(self, c_in: int) -> nn.Module:
        """The authors' last layer: a 3x3 conv (with bias) to the output channels
        (times scale^2 and a pixel shuffle for SR)."""
        if self.scale == 1:
            return nn.Conv2d(c_in, self.channels, 3, padding=1)
        return nn.Sequential(nn.Conv2d(c_in, self.channels * self.scale ** 2, 3, padding=1),
                             nn.PixelShuffle(self.scale))

    def authors_output(self, lq: torch.Tensor, pred: torch.Tensor, *, supernet: bool) -> torch.Tensor:
        """The authors' residual output from the decoder's ``pred``; their supernet
        also squashes it with a sigmoid (their retraining network does not)."""
        raise NotImplementedError

    # ---- evaluation ----------------------------------------------------------
    @property
    def metric_kwargs(self) -> Dict:
        """``crop_border`` / ``test_y_channel`` for :mod:`hinas_lib.metrics`."""
        return {"crop_border": 0, "test_y_channel": False}

    @property
    def metric_label(self) -> str:
        return "all pixels"  # no border shaved (SR shaves `scale` pixels)

    def input_view(self, lq: torch.Tensor) -> torch.Tensor:
        """The degraded input at the output's size, to score it like an output."""
        return lq.clamp(0, 1)

    def baseline(self, lq: torch.Tensor, level=None) -> torch.Tensor:
        """The classical method's output for one (C,H,W) input."""
        raise NotImplementedError


# ---------------------------------------------------------------------------
# Output heads of the compact design

class ResidualHead(nn.Module):
    """Residual learning: the network predicts the noise, output = x - noise."""

    def __init__(self, filters: int, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(filters, channels, 3, padding=1)

    def forward(self, feat, x):
        return x - self.conv(feat)


class PixelShuffleHead(nn.Module):
    """Sub-pixel (pixel-shuffle) upsampling plus a bicubic skip of the LR input,
    so the network learns the high-frequency residual."""

    def __init__(self, filters: int, channels: int, scale: int):
        super().__init__()
        self.scale = scale
        self.conv = nn.Conv2d(filters, channels * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, feat, x):
        up = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return self.shuffle(self.conv(feat)) + up




TASKS: Dict[str, Type[Task]] = {}


def register_task(cls: Type[Task]) -> Type[Task]:
    """Class decorator: make ``cls`` the task named ``cls.name`` (``task.task`` in configs)."""
    if cls.name in TASKS and TASKS[cls.name] is not cls:
        raise ValueError(f"task {cls.name!r} is registered twice")
    TASKS[cls.name] = cls
    return cls
