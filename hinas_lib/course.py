"""Glue for the course notebooks (``notebooks/``): how big the demos are, and the one
import they need (``from hinas_lib import course``).

Nothing about HiNAS itself lives here (that is the rest of the library). Here:

* fast mode's sizes: :func:`course_config` (the ``tiny`` preset, its loops and crops
  shrunk in fast mode; never the search space, so shapes, counts and parameter numbers
  printed by the notebooks do not depend on the mode), :func:`eval_images` and
  :func:`val_size` (smaller held-out images), :data:`FAST_NOTE`;
* :func:`setup` -- seeds and the CPU thread count, at the top of every notebook;
* :func:`design` -- which network design a config runs, in one line;
* :func:`evaluate_shipped` -- the zoo model each task's notebook shows (:data:`SHIPPED`),
  evaluated live on the course's test images;
* :func:`search_loop_config`, :func:`search_loop_dir` -- notebook 4's search and its run
  folder, which notebook 5 loads;
* :func:`search_panel` -- a :class:`~hinas_lib.widgets.SearchPanel` whose controls
  start from a given config (e.g. the fast one).

Re-exported here for the notebooks, from the modules that hold them:

* :func:`~hinas_lib.fastmode.fast_mode`, ``FAST_ENV`` -- whether ``HINAS_FAST`` is on
  (:mod:`hinas_lib.fastmode`);
* :func:`~hinas_lib.exercises.check`, ``NOT_ANSWERED`` -- an exercise's answer checked
  (:mod:`hinas_lib.exercises`);
* :class:`~hinas_lib.liveplot.LivePlot` -- live search curves and heatmaps (:mod:`hinas_lib.liveplot`);
* :func:`~hinas_lib.provenance.shipped_model`, :func:`~hinas_lib.provenance.provenance` --
  a zoo model and where it comes from (:mod:`hinas_lib.provenance`);
* :func:`~hinas_lib.ablation.run_ablation` -- one short search per space variant, and
  :func:`~hinas_lib.ablation.retrain_ablation`, :func:`~hinas_lib.ablation.compare_retrained`
  -- the networks found, retrained over seeds and compared (:mod:`hinas_lib.ablation`);
* :func:`~hinas_lib.text.wrap`, :func:`~hinas_lib.text.format_rows` -- plain-text output
  (:mod:`hinas_lib.text`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch

from . import data, splits
from .ablation import compare_retrained, retrain_ablation, run_ablation
from .config import Config, get_preset
from .evaluate import evaluate
from .exercises import NOT_ANSWERED, check
from .fastmode import FAST_ENV, fast_mode
from .liveplot import LivePlot
from .provenance import provenance, shipped_model
from .runtime import auto_threads, seed_everything
from .tasks import TASKS, get_task
from .text import format_rows, wrap

THREADS_ENV = "HINAS_THREADS"

# What fast mode changes: loop lengths and patch sizes only, never the space.
FAST_SEARCH = {"epochs": 2, "warmup_epochs": 1, "steps_per_epoch": 3, "batch_size": 2, "val_batches": 1}
# retraining is cheap (a few seconds for 250 steps): enough for the demo network to beat the
# noisy input (denoising) and bicubic (SR), though not non-local means
FAST_TRAIN = {"epochs": 5, "steps_per_epoch": 50, "batch_size": 4}

EVAL_SIZE = {True: 64, False: 256}   # side of the centre crop of each test image (HR pixels)
VAL_SIZE = {True: 48, False: 256}    # the same for the retraining's validation images

FAST_NOTE = ("Outputs shown were produced in fast mode (HINAS_FAST=1); "
             "run without HINAS_FAST for the fuller demo.")


def _fast(fast: Optional[bool]) -> bool:
    return fast_mode() if fast is None else bool(fast)


def course_config(task: str = "denoise", scale: int = 2, *, fast: Optional[bool] = None) -> Config:
    """The ``tiny`` preset for ``task`` (and SR ``scale``); in fast mode with the
    search and retraining loops cut down to a few steps (``fast`` overrides the
    environment)."""
    cfg = get_preset("tiny", task=task, scale=scale)
    if not _fast(fast):
        return cfg
    search_crop, train_crop = get_task(cfg).fast_crops  # input pixels: the task's own
    return cfg.replace(name="tiny-fast",
                       search={**FAST_SEARCH, "crop": search_crop},
                       train={**FAST_TRAIN, "crop": train_crop})


def default_threads(fast: Optional[bool] = None) -> int:
    """CPU threads for torch: ``HINAS_THREADS`` if set, else 1 in fast mode and the cores
    not busy with other processes otherwise (:func:`hinas_lib.runtime.auto_threads`).

    One thread in fast mode because the notebooks' tensors are tiny; never more threads
    than free cores, because on a shared 2-core machine two OpenMP threads spin-wait on
    each other and were measured 5-20x slower than one.
    """
    env = os.environ.get(THREADS_ENV, "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"{THREADS_ENV} must be a positive integer, got {env!r}")
        return n
    return 1 if _fast(fast) else auto_threads()[0]


def setup(seed: int = 0, threads: Optional[int] = None) -> str:
    """Seed python/numpy/torch, set torch's CPU threads; returns a summary that
    also says how to change the thread count (``HINAS_THREADS``)."""
    n = default_threads() if threads is None else int(threads)
    torch.set_num_threads(n)
    seed_everything(seed)
    mode = f"fast mode ({FAST_ENV}={os.environ.get(FAST_ENV)})" if fast_mode() else "full mode"
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    env = os.environ.get(THREADS_ENV, "").strip()
    if env:
        threads = f"{n} CPU thread(s) (from {THREADS_ENV}={env})"
    else:
        threads = (f"{n} CPU thread(s) ({THREADS_ENV} unset: 1 in fast mode, else the cores not busy with "
                   f"other jobs when this cell ran; start Jupyter with {THREADS_ENV}=N to fix it)")
    return f"{mode}, torch {torch.__version__}, device {dev}, seed {seed}\n{threads}"


def eval_images(cfg: Config, size: Optional[int] = None, *, fast: Optional[bool] = None) -> List[Tuple[str, object]]:
    """The held-out test images of ``cfg`` as (name, array), centre-cropped to
    ``size`` pixels (64 in fast mode, 256 otherwise); a multiple of the SR scale."""
    size = EVAL_SIZE[_fast(fast)] if size is None else int(size)
    mult = get_task(cfg).scale
    return [(n, data.centre_crop(a, size, mult)) for n, a in splits.image_split(cfg)[2]]


def val_size(fast: Optional[bool] = None) -> int:
    """``val_size`` for :class:`~hinas_lib.train.Trainer` (validation image crop)."""
    return VAL_SIZE[_fast(fast)]


def repo_root() -> Path:
    """The repository checkout this (editable) library lives in (for ``benchmarks/``)."""
    return Path(__file__).resolve().parent.parent


# The shipped models' table is computed on the same crops in both modes, so the
# committed numbers do not depend on HINAS_FAST (a few seconds on one CPU core).
SHIPPED_EVAL_SIZE = 256
# the zoo entry each task's notebook shows (the task's own choice)
SHIPPED = {name: cls.course_entry for name, cls in TASKS.items() if cls.course_entry}

DESIGN_NOTES = {
    "compact": "compact: our lighter variant for CPU (the tiny preset, the demo, the zoo and these notebooks); "
               "the paper presets use the authors' design, see the README's differences table",
    "authors": "authors: the design of the paper's code (the paper-denoise / paper-sr presets); "
               "see the README's differences table",
}


def design(cfg: Config) -> str:
    """Which network design ``cfg`` runs, and why, in one line."""
    style = cfg.space.style
    return wrap("design " + DESIGN_NOTES.get(style, style))


def evaluate_shipped(name: str, cfg: Config, size: int = SHIPPED_EVAL_SIZE, **kw) -> Tuple[Dict, Dict]:
    """Evaluate a zoo model live on ``cfg``'s held-out test photographs.

    Args:
        name: the zoo entry.
        cfg: a course config of the same task (its test images are used).
        size: centre crop of each image, the same in fast and full mode.
        kw: passed to :func:`~hinas_lib.evaluate.evaluate` (e.g. ``keep_images=True``).

    Returns:
        ``(result of evaluate, the entry's info.json)``.
    """
    net, zcfg, info = shipped_model(name)
    if zcfg.task.channels != cfg.task.channels or get_task(zcfg).scale != get_task(cfg).scale:
        raise ValueError(f"zoo entry {name!r} is for {get_task(zcfg).describe_level()} with "
                         f"{zcfg.task.channels} channel(s), not for this notebook's task")
    return evaluate(net, zcfg, eval_images(cfg, size), progress=False, **kw), info


# Notebook 4's search, which notebook 5 derives from (or runs again, the same, when it is missing)
SEARCH_LOOP_RUN = "runs/course/04-search"   # relative to the repository; "-fast" appended in fast mode


def search_loop_config(fast: Optional[bool] = None) -> Config:
    """The search of notebook 4, and so of notebook 5: :func:`course_config`, given 4 epochs in
    fast mode (1 warm-up + 3 that move alpha and beta) so that notebook 4's plots show something."""
    cfg = course_config(fast=fast)
    return cfg.replace(search={"epochs": 4}) if _fast(fast) else cfg


def search_loop_dir(fast: Optional[bool] = None) -> Path:
    """Its run folder: ``runs/course/04-search`` (``-fast`` in fast mode) in the repository;
    ``runs/`` is git-ignored."""
    return repo_root() / (SEARCH_LOOP_RUN + ("-fast" if _fast(fast) else ""))


def search_panel(cfg: Config, on_run: Optional[Callable[[Config], object]] = None, preset: str = "tiny"):
    """A SearchPanel for ``cfg``'s task whose controls start at ``cfg``'s values."""
    from .widgets import SearchPanel  # noqa: PLC0415 (ipywidgets is an optional extra)
    return SearchPanel(preset, on_run=on_run, config=cfg)


__all__ = ["FAST_ENV", "THREADS_ENV", "FAST_NOTE", "fast_mode", "course_config", "default_threads", "setup",
           "eval_images", "val_size", "repo_root", "SEARCH_LOOP_RUN", "search_loop_config", "search_loop_dir", "design", "shipped_model", "provenance", "evaluate_shipped",
           "SHIPPED", "SHIPPED_EVAL_SIZE", "check", "NOT_ANSWERED", "search_panel", "LivePlot", "run_ablation",
           "retrain_ablation", "compare_retrained",
           "format_rows", "wrap"]
