"""Typed configuration with named presets and YAML in/out.

One ``Config`` describes a whole run: the task, the search space, the search
loop, the retraining and the data. Presets differ only in numbers:

* ``tiny``: CPU-sized, seconds to minutes; used by the notebooks, CI and the
  README's main job.
* ``paper-denoise`` / ``paper-sr``: the settings of the HiNAS paper (GPU).

Every dataclass validates itself on construction and names the bad field.
"""
from __future__ import annotations

import os
import math
from dataclasses import dataclass, field, fields, asdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from .checks import (expect, MIN_WIDTH_FACTOR, MAX_BATCH, MAX_BLOCKS, MAX_CROP, MAX_EPOCHS, MAX_FILTERS, MAX_LAYERS,
                     MAX_STEPS_PER_EPOCH, MAX_VAL_BATCHES, MAX_WIDTH_FACTOR, MAX_WORKERS)
from .grid import DEFAULT_WIDTH_FACTORS, channel_widths
from .designs import STYLES, get_design
from .losses import LOSS_FORMS
from .ops import ACTIVATIONS, OPS, PRIMITIVES
from .schedules import SEARCH_LR, TRAIN_LR
from .errors import ConfigError
from .tasks import TASKS, get_task


def _require(cond: bool, field_name: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{field_name}: {msg}")


def _check_types(obj, section: str) -> None:
    """Scalar fields must have their declared type (YAML can hold 'ten' for an int)."""
    for f in fields(obj):
        v = getattr(obj, f.name)
        name = f"{section}.{f.name}"
        if f.type == "int":
            _require(isinstance(v, int) and not isinstance(v, bool), name, f"expected an integer, got {v!r}")
        elif f.type == "float":
            if isinstance(v, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
                try:
                    v = float(v)
                except ValueError:
                    pass
            _require(isinstance(v, (int, float)) and not isinstance(v, bool), name, f"expected a number, got {v!r}")
            _require(math.isfinite(v), name, f"must be a finite number, got {v!r}")
            setattr(obj, f.name, float(v))
        elif f.type == "bool":
            _require(isinstance(v, bool), name, f"expected true or false, got {v!r}")
        elif f.type == "str":
            _require(isinstance(v, str), name, f"expected a string, got {v!r}")
        elif f.type.startswith("Tuple[float") or f.type.startswith("Optional[Tuple[float"):
            if v is None and f.type.startswith("Optional"):
                continue
            ok = isinstance(v, (list, tuple)) and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
            _require(ok, name, f"expected a list of numbers, got {v!r}")
        elif f.type.startswith("Tuple[int"):
            ok = isinstance(v, (list, tuple)) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
            _require(ok, name, f"expected a list of integers, got {v!r}")


ALPHA_SHARING = ("layer", "tied", "cell")
ARCH_INITS = ("random", "ones")
AMP_MODES = ("none", "bf16", "fp16")
# the search has no loss scaler (its architecture step takes autograd.grad of alpha/beta alone):
# fp16 would flush its small gradients to zero, so it autocasts in bf16 only
SEARCH_AMP_MODES = ("none", "bf16")
SEARCH_SCHEDULES = tuple(SEARCH_LR)
TRAIN_SCHEDULES = tuple(TRAIN_LR)
OPTIMIZERS = ("adam", "sgd")
SELECT_BY = ("psnr", "ssim_psnr")    # ssim_psnr: SSIM + PSNR/100, the authors' rule
SSIM_WINDOW = 11                      # the 'valid' SSIM of the compact loss needs this many pixels
MAX_SUPERNET_WEIGHTS = 5e8            # beyond it a supernet would not fit in memory (about 2 GB of weights)


@dataclass
class TaskConfig:
    # One section for every task: the common fields, then each task's own (read and checked
    # only by that task's module in hinas_lib/tasks/; set a level with tasks.with_level).
    task: str = "denoise"            # a name of hinas_lib.tasks.TASKS: denoise | sr | jpeg
    channels: int = 1                # 1 grey, 3 RGB
    scale: int = 2                   # sr: the scale
    sigmas: Tuple[float, ...] = (30.0,)  # denoise: training noise levels (0-255 scale)
    sigma_range: Optional[Tuple[float, float]] = None  # denoise, blind training: uniform in [lo, hi]
    eval_sigma: float = 30.0         # denoise: evaluation noise level
    qualities: Tuple[int, ...] = (10, 20, 30, 40)  # jpeg: training quality factors (one per patch)
    eval_quality: int = 10           # jpeg: evaluation quality factor
    ssim_weight: float = 1.0         # weight w of the log-SSIM term (search; retraining too unless train.ssim_weight)
    loss_form: str = "compact"       # compact | authors (hinas_lib.losses)

    def __post_init__(self):
        _check_types(self, "task")
        _require(self.task in TASKS, "task.task", f"must be one of {tuple(TASKS)}, got {self.task!r}")
        _require(self.channels in (1, 3), "task.channels", f"must be 1 or 3, got {self.channels}")
        _require(0 <= self.eval_sigma <= 255, "task.eval_sigma", f"must be in [0, 255], got {self.eval_sigma}")
        problem = TASKS[self.task].check(self)  # the task's own settings
        if problem:
            _require(False, *problem)
        self.qualities = tuple(self.qualities)
        self.sigmas = tuple(float(s) for s in self.sigmas)
        _require(len(self.sigmas) > 0 and all(0 <= s <= 255 for s in self.sigmas),
                 "task.sigmas", f"need at least one sigma in [0, 255], got {self.sigmas}")
        if self.sigma_range is not None:
            self.sigma_range = tuple(float(s) for s in self.sigma_range)
            lo, hi = self.sigma_range
            _require(0 <= lo < hi <= 255, "task.sigma_range", f"need 0 <= lo < hi <= 255, got {self.sigma_range}")
        _require(self.ssim_weight >= 0, "task.ssim_weight", "must be >= 0")
        _require(self.loss_form in LOSS_FORMS, "task.loss_form", f"must be one of {LOSS_FORMS}, got {self.loss_form!r}")


@dataclass
class SpaceConfig:
    layers: int = 3
    blocks: int = 4
    filters: int = 10                 # F: channels at width factor 1 during search
    width_factors: Tuple[float, ...] = DEFAULT_WIDTH_FACTORS
    # read at construction, so primitives registered later become the default too
    primitives: Tuple[str, ...] = field(default_factory=lambda: tuple(PRIMITIVES))
    activation: str = "leaky_relu"
    alpha_sharing: str = "layer"      # layer (LWAS) | tied (DARTS) | cell (one per node)
    cell_sharing: bool = True         # HiNAS: one cell per node; False: Auto-DeepLab style
    checkpoint_cells: bool = False    # activation checkpointing per cell (memory for time)
    style: str = "compact"            # network design: authors | compact (hinas_lib.designs)
    arch_init: str = "random"         # alpha/beta start: random (1e-3 N(0,1)) | ones (the authors')

    def __post_init__(self):
        _check_types(self, "space")
        _require(self.style in STYLES, "space.style", f"must be one of {STYLES}, got {self.style!r}")
        _require(self.arch_init in ARCH_INITS, "space.arch_init", f"must be one of {ARCH_INITS}, got {self.arch_init!r}")
        design = get_design(self.style)
        _require(self.cell_sharing or not design.one_cell_per_node, "space.cell_sharing",
                 f"the {self.style!r} design always shares one cell per node")
        _require(not design.reads_every_width or self.layers >= len(self.width_factors) - 1, "space.layers",
                 f"the {self.style!r} design's head reads every width level of the last layer: need at least "
                 f"{len(self.width_factors) - 1} layers for {len(self.width_factors)} widths")
        _require(isinstance(self.layers, int) and self.layers >= 1, "space.layers", f"must be >= 1, got {self.layers}")
        _require(isinstance(self.blocks, int) and self.blocks >= 1, "space.blocks", f"must be >= 1, got {self.blocks}")
        _require(isinstance(self.filters, int) and self.filters >= 1, "space.filters", f"must be >= 1, got {self.filters}")
        # upper limits: past them the supernet takes forever to build (layers=100000 hung)
        for name, top in (("layers", MAX_LAYERS), ("blocks", MAX_BLOCKS), ("filters", MAX_FILTERS)):
            _require(getattr(self, name) <= top, f"space.{name}", f"must be <= {top}, got {getattr(self, name)}")
        # a string would be read character by character ("123" -> 1, 2, 3)
        _require(isinstance(self.width_factors, (list, tuple))
                 and all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in self.width_factors),
                 "space.width_factors", f"expected a list of numbers, got {self.width_factors!r:.60}")
        self.width_factors = tuple(float(w) for w in self.width_factors)
        _require(len(self.width_factors) >= 1, "space.width_factors", "need at least one width level")
        _require(all(MIN_WIDTH_FACTOR <= w <= MAX_WIDTH_FACTOR for w in self.width_factors), "space.width_factors",
                 f"factors must be numbers in [{MIN_WIDTH_FACTOR:g}, {MAX_WIDTH_FACTOR:g}], "
                 f"got {list(self.width_factors)}")
        _require(all(b > a for a, b in zip(self.width_factors, self.width_factors[1:])),
                 "space.width_factors", f"must be strictly increasing, got {self.width_factors}")
        _require(isinstance(self.primitives, (list, tuple)) and all(isinstance(p, str) for p in self.primitives),
                 "space.primitives", f"expected a list of op names, got {self.primitives!r}")
        self.primitives = tuple(self.primitives)
        unknown = [p for p in self.primitives if p not in OPS]
        _require(not unknown, "space.primitives", f"unknown primitive(s) {unknown}; registered: {sorted(OPS)}")
        _require(len(set(self.primitives)) == len(self.primitives), "space.primitives", "duplicates")
        _require(any(p != "none" for p in self.primitives), "space.primitives", "need an op besides 'none'")
        _require(self.activation in ACTIVATIONS, "space.activation",
                 f"unknown activation {self.activation!r}; choose from {sorted(ACTIVATIONS)}")
        _require(self.alpha_sharing in ALPHA_SHARING, "space.alpha_sharing",
                 f"must be one of {ALPHA_SHARING}, got {self.alpha_sharing!r}")
        # (each size is within its limit, yet together they can still be absurd)
        c_max = self.filters * max(self.width_factors)
        estimate = self.layers * len(self.width_factors) * sum(2 + i for i in range(self.blocks)) * 50 * c_max ** 2
        _require(estimate <= MAX_SUPERNET_WEIGHTS, "space",
                 f"layers={self.layers}, blocks={self.blocks}, filters={self.filters} and widths up to "
                 f"{max(self.width_factors):g}x make a supernet of about {estimate:.1e} weights "
                 f"(> {MAX_SUPERNET_WEIGHTS:.0e}): it would not fit in memory; lower some of them")

    def widths(self, filters: Optional[int] = None) -> List[int]:
        return channel_widths(self.filters if filters is None else filters, self.width_factors)


@dataclass
class SearchConfig:
    epochs: int = 100
    warmup_epochs: int = 20           # architecture steps start after these
    steps_per_epoch: int = 50
    batch_size: int = 6
    crop: int = 64                    # HR patch (denoise) or LR patch (SR)
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    grad_clip: float = 5.0
    a_lr: float = 1e-3
    a_weight_decay: float = 1e-3
    a_betas: Tuple[float, float] = (0.5, 0.999)
    w_lr_schedule: str = "cosine"     # cosine (w_lr -> w_lr_min over the epochs) | poly_cosine (the authors')
    lr_t_max: int = 10                # poly_cosine: epochs from w_lr down to w_lr_min (a cycle is 2x this)
    lr_power: float = 0.9             # poly_cosine: exponent of the (1 - e/epochs) envelope
    val_batches: int = 4              # fixed validation patches per epoch for PSNR/SSIM
    select: str = "final"             # genotype.json: the final epoch's | the best one's (select_by, select_from)
    select_by: str = "psnr"           # psnr | ssim_psnr (SSIM + PSNR/100, the authors')
    select_from: int = -1             # first epoch (0-based) that may be selected; -1: the end of the warm-up
                                      # (none reached, as in a shortened run: the final epoch is kept)
    amp: str = "none"                 # none | bf16 (CUDA autocast; fp16 is train.amp's alone)
    checkpoint_every: int = 0         # steps; 0 = at epoch ends only
    seed: int = 0
    # DARTS- (Chu et al. 2021), compact design: an auxiliary skip on every edge, outside the
    # softmax, its coefficient decaying linearly from this value to 0 over the epochs (0 = off),
    # so that skip_connect no longer wins alpha by easing the gradient flow (collapse)
    aux_skip: float = 0.0

    def __post_init__(self):
        _check_types(self, "search")
        _require(self.amp in SEARCH_AMP_MODES, "search.amp",
                 f"must be one of {SEARCH_AMP_MODES}, got {self.amp!r}"
                 + ("; fp16 needs loss scaling, which the search does not do: use bf16" if self.amp == "fp16" else ""))
        _require(self.w_lr_schedule in SEARCH_SCHEDULES, "search.w_lr_schedule",
                 f"must be one of {SEARCH_SCHEDULES}, got {self.w_lr_schedule!r}")
        _require(self.lr_t_max >= 1, "search.lr_t_max", f"must be >= 1, got {self.lr_t_max}")
        _require(self.lr_power >= 0, "search.lr_power", f"must be >= 0, got {self.lr_power}")
        _require(self.select in ("final", "best"), "search.select", f"must be final or best, got {self.select!r}")
        _require(self.select_by in SELECT_BY, "search.select_by", f"must be one of {SELECT_BY}, got {self.select_by!r}")
        for name in ("epochs", "steps_per_epoch", "batch_size", "crop", "val_batches"):
            _require(getattr(self, name) >= 1, f"search.{name}", f"must be >= 1, got {getattr(self, name)}")
        for name, top in (("epochs", MAX_EPOCHS), ("steps_per_epoch", MAX_STEPS_PER_EPOCH), ("batch_size", MAX_BATCH),
                          ("crop", MAX_CROP), ("val_batches", MAX_VAL_BATCHES)):
            _require(getattr(self, name) <= top, f"search.{name}", f"must be <= {top}, got {getattr(self, name)}")
        _require(0 <= self.warmup_epochs <= self.epochs, "search.warmup_epochs",
                 f"must be in [0, epochs={self.epochs}], got {self.warmup_epochs}")
        _require(self.w_lr > 0 and 0 <= self.w_lr_min <= self.w_lr, "search.w_lr",
                 "need w_lr > 0 and 0 <= w_lr_min <= w_lr")
        _require(self.a_lr > 0, "search.a_lr", "must be > 0")
        _require(0 <= self.aux_skip <= 10, "search.aux_skip", f"must be in [0, 10], got {self.aux_skip}")
        _require(0 <= self.w_momentum < 1, "search.w_momentum", f"must be in [0, 1), got {self.w_momentum}")
        for name in ("w_weight_decay", "a_weight_decay", "grad_clip"):
            _require(getattr(self, name) >= 0, f"search.{name}", f"must be >= 0, got {getattr(self, name)}")
        _require(self.checkpoint_every >= 0, "search.checkpoint_every", "must be >= 0")
        # (a later select_from than the run has epochs, e.g. a shortened paper preset: the final epoch is kept)
        _require(self.select_from >= -1, "search.select_from", f"must be -1 or an epoch >= 0, got {self.select_from}")
        self.a_betas = tuple(float(b) for b in self.a_betas)
        _require(len(self.a_betas) == 2 and all(0 <= b < 1 for b in self.a_betas), "search.a_betas",
                 f"need two Adam betas in [0, 1), got {list(self.a_betas)}")


@dataclass
class TrainConfig:
    filters: int = 20                 # F of the retrained discrete network
    epochs: int = 100
    steps_per_epoch: int = 100
    batch_size: int = 16
    crop: int = 64
    optimizer: str = "adam"           # adam | sgd (the authors')
    lr: float = 1e-3
    lr_min: float = 1e-6
    schedule: str = "cosine"          # cosine (per step, lr -> lr_min) | poly (lr (1 - k/K)^lr_power) | constant
    lr_power: float = 0.9
    momentum: float = 0.9             # SGD
    weight_decay: float = 0.0
    bias_lr_factor: float = 1.0       # biases (conv and BN) learn this much faster (the authors: 2)
    bias_weight_decay: float = -1.0   # weight decay of biases; -1: the same as weight_decay (the authors: 0)
    grad_clip: float = 0.0            # clip the gradient norm; 0 = off
    grad_clip_value: float = 0.0      # clip each gradient value to +-this (the authors: 5); 0 = off
    ssim_weight: float = -1.0         # the loss's log-SSIM weight; -1: task.ssim_weight
    val_every: int = 1                # epochs
    val_from: int = 0                 # first epoch (0-based) validated (the authors: 3/4 into training)
    select_by: str = "psnr"           # which validated epoch model.pt keeps: psnr | ssim_psnr
    train_on_val: bool = True         # retrain on train + val images (val then only monitors the fit)
    amp: str = "none"                 # none | bf16 | fp16 (CUDA autocast)
    checkpoint_every: int = 0         # steps; 0 = at epoch ends only
    seed: int = 0

    def __post_init__(self):
        _check_types(self, "train")
        _require(self.optimizer in OPTIMIZERS, "train.optimizer", f"must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        _require(self.schedule in TRAIN_SCHEDULES, "train.schedule",
                 f"must be one of {TRAIN_SCHEDULES}, got {self.schedule!r}")
        _require(self.select_by in SELECT_BY, "train.select_by", f"must be one of {SELECT_BY}, got {self.select_by!r}")
        for name in ("lr_power", "weight_decay", "bias_lr_factor", "grad_clip", "grad_clip_value"):
            _require(getattr(self, name) >= 0, f"train.{name}", f"must be >= 0, got {getattr(self, name)}")
        _require(0 <= self.momentum < 1, "train.momentum", f"must be in [0, 1), got {self.momentum}")
        _require(self.bias_weight_decay >= 0 or self.bias_weight_decay == -1, "train.bias_weight_decay",
                 f"must be >= 0, or -1 for the weight decay, got {self.bias_weight_decay}")
        _require(self.ssim_weight >= 0 or self.ssim_weight == -1, "train.ssim_weight",
                 f"must be >= 0, or -1 for task.ssim_weight, got {self.ssim_weight}")
        for name in ("filters", "epochs", "steps_per_epoch", "batch_size", "crop", "val_every"):
            _require(getattr(self, name) >= 1, f"train.{name}", f"must be >= 1, got {getattr(self, name)}")
        for name, top in (("filters", MAX_FILTERS), ("epochs", MAX_EPOCHS), ("steps_per_epoch", MAX_STEPS_PER_EPOCH),
                          ("batch_size", MAX_BATCH), ("crop", MAX_CROP), ("val_every", MAX_EPOCHS)):
            _require(getattr(self, name) <= top, f"train.{name}", f"must be <= {top}, got {getattr(self, name)}")
        _require(self.lr > 0 and 0 <= self.lr_min <= self.lr, "train.lr", "need lr > 0 and 0 <= lr_min <= lr")
        _require(self.amp in AMP_MODES, "train.amp", f"must be one of {AMP_MODES}, got {self.amp!r}")
        _require(self.checkpoint_every >= 0, "train.checkpoint_every", "must be >= 0")
        # (the last epoch is always validated, also when val_from is past it)
        _require(self.val_from >= 0, "train.val_from", f"must be an epoch >= 0, got {self.val_from}")


@dataclass
class DataConfig:
    train_dir: Optional[str] = None   # None: the embedded scikit-image photographs
    val_dir: Optional[str] = None     # None: split off train_dir / the embedded split
    test_dir: Optional[str] = None
    # paired data: real degraded inputs, matched by file stem, instead of synthesised ones
    train_lq_dir: Optional[str] = None  # the inputs of train_dir's images (train, val and held-out)
    test_lq_dir: Optional[str] = None   # the inputs of test_dir's images
    val_fraction: float = 0.2         # of train_dir: the search's architecture half (without val_dir)
    holdout_fraction: float = 0.0     # of train_dir: held out of both halves to select the search's epoch
    rescale: Optional[Tuple[float, float]] = None  # random rescaling of half the patches (the authors: 0.8-1.2)
    num_workers: int = 0

    def __post_init__(self):
        _check_types(self, "data")
        _require(0 < self.val_fraction < 1, "data.val_fraction", "must be in (0, 1)")
        _require(0 <= self.holdout_fraction < 0.5, "data.holdout_fraction", "must be in [0, 0.5)")
        if self.rescale is not None:
            self.rescale = tuple(float(r) for r in self.rescale)
            _require(len(self.rescale) == 2 and 0.25 <= self.rescale[0] <= self.rescale[1] <= 4, "data.rescale",
                     f"need (low, high) with 0.25 <= low <= high <= 4, got {list(self.rescale)}")
        _require(self.train_lq_dir is None or (self.train_dir is not None and self.val_dir is None),
                 "data.train_lq_dir", "pairs the images of data.train_dir (set it, and no data.val_dir)")
        _require(self.test_lq_dir is None or self.test_dir is not None,
                 "data.test_lq_dir", "pairs the images of data.test_dir: set it too")
        _require(self.train_lq_dir is None or self.rescale is None, "data.rescale",
                 "real degraded inputs (data.train_lq_dir) cannot be rescaled; unset one")
        _require(0 <= self.num_workers <= MAX_WORKERS, "data.num_workers",
                 f"must be in [0, {MAX_WORKERS}], got {self.num_workers}")
        for name in ("train_dir", "val_dir", "test_dir", "train_lq_dir", "test_lq_dir"):  # _check_types skips them
            v = getattr(self, name)
            _require(v is None or isinstance(v, (str, os.PathLike)), f"data.{name}",
                     f"expected a folder path, got {v!r}")
            if v is not None:
                setattr(self, name, os.fspath(v))  # a Path would not survive config.yaml


@dataclass
class Config:
    name: str = "custom"
    task: TaskConfig = field(default_factory=TaskConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self):
        # checks that read two sections (only when every section is what it should be)
        if not all(isinstance(getattr(self, n), t) for n, t in _SECTION_TYPES.items()):
            return
        scale = TASKS[self.task.task](self.task).scale
        if self.task.loss_form == "compact" and self.task.ssim_weight > 0:
            for sec in ("search", "train"):
                crop = getattr(self, sec).crop
                _require(crop * scale >= SSIM_WINDOW, f"{sec}.crop",
                         f"the loss's SSIM needs patches of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels "
                         f"(crop x scale), got {crop * scale}")

    # ---- serialisation -------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        def plain(v):
            if isinstance(v, tuple):
                return [plain(x) for x in v]
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            return v
        return plain(asdict(self))

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Config":
        if not isinstance(d, dict):
            raise ConfigError(f"config: expected a mapping, got {type(d).__name__}")
        sections = {f.name: f.type for f in fields(cls)}
        unknown = set(d) - set(sections)
        if unknown:
            raise ConfigError(f"config: unknown section(s) {sorted(unknown)}; known: {sorted(sections)}")
        kwargs: Dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            if f.name == "name":
                kwargs["name"] = str(d["name"])
                continue
            sub_cls = _SECTION_TYPES[f.name]
            sub = d[f.name] or {}
            if not isinstance(sub, dict):
                raise ConfigError(f"{f.name}: expected a mapping, got {type(sub).__name__}")
            known = {sf.name for sf in fields(sub_cls)}
            bad = set(sub) - known
            if bad:
                raise ConfigError(f"{f.name}: unknown field(s) {sorted(bad)}; known: {sorted(known)}")
            kwargs[f.name] = sub_cls(**sub)
        return cls(**kwargs)

    def to_yaml(self, path: Optional[str | Path] = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Config":
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"config: {p} is not a YAML text file (binary content)") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config: {p} is not valid YAML ({e})") from None
        except RecursionError:
            raise ConfigError(f"config: {p} is nested too deeply to be a config") from None
        return cls.from_dict(data)

    def replace(self, **sections) -> "Config":
        """Copy with some fields changed: ``cfg.replace(search={"epochs": 3})``."""
        d = self.to_dict()
        unknown = set(sections) - set(d)
        if unknown:
            raise ConfigError(f"config: unknown section(s) {sorted(unknown)}; known: {sorted(d)}")
        for sec, vals in sections.items():
            if sec == "name":
                d["name"] = vals
            else:
                d[sec].update(vals)
        return Config.from_dict(d)

    def check_searchable(self) -> "Config":
        """:meth:`validate`, and the rules only a search needs; return ``self``.

        ``warmup_epochs == epochs`` is a valid config to load or retrain from (older
        ``model.pt`` files may hold one), but a search with it never moves alpha/beta: its
        genotype would be the initial one, written without a word.
        """
        self.validate()
        s = self.search
        _require(s.warmup_epochs < s.epochs, "search.warmup_epochs",
                 f"must be less than search.epochs={s.epochs} for a search (got {s.warmup_epochs}): "
                 "the architecture is only searched after the warm-up")
        if s.aux_skip > 0:
            _require(get_design(self.space.style).aux_skip and "skip_connect" in self.space.primitives,
                     "search.aux_skip", "the auxiliary skip is an option of the compact design and needs "
                     f"skip_connect among space.primitives (style {self.space.style!r})")
        return self

    def validate(self) -> "Config":
        """Check every section again and return ``self``.

        The sections check themselves when built, but their fields can be
        changed afterwards (``cfg.search.epochs = 0``); searches and trainings
        call this before they start, so such a change fails naming the field
        instead of running with it.

        Raises:
            ConfigError: naming the first bad section or field.
        """
        _require(isinstance(self.name, str), "name", f"expected a string, got {self.name!r}")
        for f in fields(self):
            if f.name == "name":
                continue
            section, want = getattr(self, f.name), _SECTION_TYPES.get(f.name)
            if want is not None:
                _require(isinstance(section, want), f.name,
                         f"expected a {want.__name__}, got {type(section).__name__}")
            section.__post_init__()
        self.__post_init__()
        return self


_SECTION_TYPES = {"task": TaskConfig, "space": SpaceConfig, "search": SearchConfig,
                  "train": TrainConfig, "data": DataConfig}


# ---------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------

def _tiny(task: str, scale: int) -> Config:
    # patch sides (search, retrain) in input pixels (SR crops are LR): the task's own
    search_crop, train_crop = TASKS[task].tiny_crops
    return Config(
        name="tiny",
        task=TaskConfig(task=task, channels=TASKS[task].default_channels, scale=scale,
                        sigmas=(30.0,), eval_sigma=30.0),
        space=SpaceConfig(layers=2, blocks=2, filters=8),
        # long enough a warm-up that the convolutions are trained before alpha moves (with
        # 24 warm-up steps the demo's search collapsed onto skip_connect edges)
        search=SearchConfig(epochs=10, warmup_epochs=4, steps_per_epoch=20, batch_size=4,
                            crop=search_crop, val_batches=2),
        train=TrainConfig(filters=16, epochs=40, steps_per_epoch=100, batch_size=8,
                          crop=train_crop, lr=3e-3, lr_min=1e-5, val_every=5),
    )


def _design_space(style: str, layers: int, blocks: int, filters: int) -> SpaceConfig:
    d = get_design(style)
    chosen = {} if d.primitives is None else {"primitives": tuple(d.primitives)}
    return SpaceConfig(layers=layers, blocks=blocks, filters=filters, style=style, arch_init=d.arch_init, **chosen)


_AUTHORS = get_design("authors")  # the paper presets' design: its space, loss form and recipes


def _paper_denoise(task: str, scale: int) -> Config:
    return Config(
        name="paper-denoise",
        task=TaskConfig(task="denoise", channels=1, sigmas=(30.0, 50.0, 70.0), eval_sigma=30.0,
                        ssim_weight=0.5, loss_form=_AUTHORS.loss_form),
        space=_design_space("authors", layers=3, blocks=4, filters=10),
        # 300 BSD images: 2% held out, 147 + 147 for the weight and architecture steps -> 25 steps of 6
        search=SearchConfig(steps_per_epoch=25, batch_size=6, val_batches=8, **_AUTHORS.search),
        # retrained at one sigma: --sigma 30 | 50 | 70
        train=TrainConfig(filters=20, batch_size=24, **_AUTHORS.train),
        data=DataConfig(val_fraction=0.5, holdout_fraction=0.02, rescale=(0.8, 1.2)),
    )


def _paper_sr(task: str, scale: int) -> Config:
    return Config(
        name="paper-sr",
        task=TaskConfig(task="sr", channels=3, scale=scale, ssim_weight=0.6, loss_form=_AUTHORS.loss_form),
        space=_design_space("authors", layers=2, blocks=3, filters=8),
        # 800 DIV2K images: 5% held out, 380 + 380 -> 16 steps of 24 (crops are LR pixels)
        search=SearchConfig(steps_per_epoch=16, batch_size=24, val_batches=4, **_AUTHORS.search),
        train=TrainConfig(filters=16, batch_size=16, **_AUTHORS.train),
        data=DataConfig(val_fraction=0.5, holdout_fraction=0.05),
    )


PRESETS = {"tiny": _tiny, "paper-denoise": _paper_denoise, "paper-sr": _paper_sr}
# the tasks each preset is made for (None: any task); the first is the default
PRESET_TASKS = {"tiny": None, "paper-denoise": ("denoise",), "paper-sr": ("sr",)}
PRESET_SCALE = {"paper-sr": 4}  # default SR scale where it is not 2


def get_preset(name: str, task: Optional[str] = None, scale: Optional[int] = None) -> Config:
    """A named preset; ``task``/``scale`` select the variant (e.g. tiny SR x3)."""
    expect(name, str, "name")
    expect(task, (str, type(None)), "task")
    expect(scale, (int, type(None)), "scale")
    if name not in PRESETS:
        raise ConfigError(f"preset: unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    allowed = PRESET_TASKS[name]
    task = task or (allowed[0] if allowed else "denoise")
    if task not in TASKS:
        raise ConfigError(f"task.task: must be one of {tuple(TASKS)}, got {task!r}")
    if allowed and task not in allowed:
        others = [p for p, ts in PRESET_TASKS.items() if ts and task in ts]
        raise ConfigError(f"task.task: preset {name!r} is for {', '.join(allowed)}; "
                          f"for {task} use {' or '.join(repr(p) for p in others) or 'tiny'}")
    scale = PRESET_SCALE.get(name, 2) if scale is None else int(scale)
    return PRESETS[name](task, scale)


def load_config(preset: Optional[str] = None, config_path: Optional[str] = None,
                task: Optional[str] = None, scale: Optional[int] = None) -> Config:
    """CLI helper: a YAML file wins; otherwise a preset (default 'tiny')."""
    if preset is not None and not preset.strip():
        raise ConfigError(f"--preset: empty; choose one of {sorted(PRESETS)}")
    if config_path is not None and not str(config_path).strip():
        raise ConfigError("--config: empty; give a YAML file")
    cfg = _load_config(preset, config_path, task, scale)
    if scale is not None and get_task(cfg).level_name != "scale":
        # the denoising configs have no use for a scale: ignoring it would train the wrong thing
        raise ConfigError(f"--scale {scale}: the config is for {cfg.task.task}; --scale is the SR factor "
                          "(add --task sr)")
    return cfg


def _load_config(preset, config_path, task, scale) -> Config:
    if config_path:
        cfg = Config.from_yaml(config_path)
        if task and task != cfg.task.task:
            raise ConfigError(f"task.task: --task {task} contradicts the config file ({cfg.task.task})")
        if scale and scale != cfg.task.scale:
            cfg = cfg.replace(task={"scale": scale})
        return cfg
    return get_preset(preset or "tiny", task=task, scale=scale)


__all__ = ["Config", "TaskConfig", "SpaceConfig", "SearchConfig", "TrainConfig", "DataConfig",
           "ConfigError", "PRESETS", "PRESET_TASKS", "get_preset", "load_config", "ALPHA_SHARING", "AMP_MODES"]
