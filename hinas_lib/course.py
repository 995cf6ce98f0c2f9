"""Glue for the course notebooks (``notebooks/``): sizes, seeds and display helpers.

Nothing about HiNAS itself lives here (that is the rest of the library); this
module only decides *how big* the notebook demos are and how they show things.

* :func:`fast_mode` -- ``HINAS_FAST`` is set (and not ``0``): the test suite
  (nbval) and CI run every notebook in this mode, in a few minutes on 2 CPU
  cores. The search space is the same in both modes (so shapes, counts and
  parameter numbers printed by the notebooks do not depend on the mode); only
  the loops (epochs, steps, batches, crops) and the evaluation images shrink.
* :func:`course_config` -- the ``tiny`` preset, shrunk further in fast mode.
* :func:`setup` -- seeds and the CPU thread count, at the top of every notebook.
* :func:`eval_images`, :func:`val_size` -- smaller held-out images in fast mode.
* :class:`LivePlot` -- an ``on_epoch`` callback that redraws the search curves
  and the alpha/beta heatmaps inside a widget while a search runs.
* :func:`evaluate_shipped`, :func:`provenance` -- a model of the zoo (a real
  run) evaluated live next to the quick demo, with where it comes from.
* :func:`design` -- which network design a config runs, in one line.
* :func:`search_panel` -- a :class:`~hinas_lib.widgets.SearchPanel` whose
  controls start from a given config (e.g. the fast one).
* :func:`run_ablation` -- the same short search under several space variants.
"""
from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from . import data, viz, zoo
from .config import Config, get_preset
from .evaluate import evaluate
from .network import load_model
from .profiling import measure_search_step
from .runtime import auto_threads, seed_everything
from .search import Searcher
from .tasks import get_task

FAST_ENV = "HINAS_FAST"
THREADS_ENV = "HINAS_THREADS"
_OFF = ("", "0", "false", "no", "off")

# What fast mode changes: loop lengths and patch sizes only, never the space.
FAST_SEARCH = {"epochs": 2, "warmup_epochs": 1, "steps_per_epoch": 3, "batch_size": 2, "val_batches": 1}
# retraining is cheap (a few seconds for 250 steps): enough for the demo network to beat the
# noisy input (denoising) and bicubic (SR), though not non-local means
FAST_TRAIN = {"epochs": 5, "steps_per_epoch": 50, "batch_size": 4}
FAST_CROP = {"denoise": {"search": 24, "train": 24}, "sr": {"search": 12, "train": 12}}  # input pixels

EVAL_SIZE = {True: 64, False: 256}   # side of the centre crop of each test image (HR pixels)
VAL_SIZE = {True: 48, False: 256}    # the same for the retraining's validation images

FAST_NOTE = ("Outputs shown were produced in fast mode (HINAS_FAST=1); "
             "run without HINAS_FAST for the fuller demo.")


def fast_mode() -> bool:
    """True when the environment variable ``HINAS_FAST`` is set to anything but
    ``0`` (or an empty string, ``false``, ``no``, ``off``)."""
    return os.environ.get(FAST_ENV, "").strip().lower() not in _OFF


def _fast(fast: Optional[bool]) -> bool:
    return fast_mode() if fast is None else bool(fast)


def course_config(task: str = "denoise", scale: int = 2, *, fast: Optional[bool] = None) -> Config:
    """The ``tiny`` preset for ``task`` (and SR ``scale``); in fast mode with the
    search and retraining loops cut down to a few steps (``fast`` overrides the
    environment)."""
    cfg = get_preset("tiny", task=task, scale=scale)
    if not _fast(fast):
        return cfg
    crops = FAST_CROP[cfg.task.task]
    return cfg.replace(name="tiny-fast",
                       search={**FAST_SEARCH, "crop": crops["search"]},
                       train={**FAST_TRAIN, "crop": crops["train"]})


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
    return [(n, data.centre_crop(a, size, mult)) for n, a in data.image_split(cfg)[2]]


def val_size(fast: Optional[bool] = None) -> int:
    """``val_size`` for :class:`~hinas_lib.train.Trainer` (validation image crop)."""
    return VAL_SIZE[_fast(fast)]


def repo_root() -> Path:
    """The repository checkout this (editable) library lives in (for ``benchmarks/``)."""
    return Path(__file__).resolve().parent.parent


# The shipped models' table is computed on the same crops in both modes, so the
# committed numbers do not depend on HINAS_FAST (a few seconds on one CPU core).
SHIPPED_EVAL_SIZE = 256
SHIPPED = {"denoise": "denoise-s30", "sr": "sr-x2"}   # the zoo entry each task's notebook shows

DESIGN_NOTES = {
    "compact": "compact: our lighter variant for CPU (the tiny preset, the demo, the zoo and these notebooks); "
               "the paper presets use the authors' design, see the README's differences table",
    "authors": "authors: the design of the paper's code (the paper-denoise / paper-sr presets); "
               "see the README's differences table",
}


# printed prose is wrapped at this many columns: JupyterLab breaks a longer output line
# anywhere, mid-word (a 1400 px window with the file browser open shows about 120)
WRAP = 96


def wrap(text: str, width: int = WRAP) -> str:
    """``text`` as lines of at most ``width`` characters, continuation lines indented;
    words and hyphenated names (``CPU-hours``, ``denoise-s30``) are never broken."""
    return textwrap.fill(" ".join(text.split()), width, subsequent_indent="  ", break_long_words=False,
                         break_on_hyphens=False)


def design(cfg: Config) -> str:
    """Which network design ``cfg`` runs, and why, in one line.

    Read with ``getattr`` because older configs have no ``space.style`` (all of
    them are the compact design).
    """
    style = getattr(cfg.space, "style", "compact")
    return wrap("design " + DESIGN_NOTES.get(style, style))


def shipped_model(name: str):
    """A zoo model and where it comes from.

    Args:
        name: a zoo entry (``denoise-s30``, ``sr-x2``, ...).

    Returns:
        ``(net, config, info)``: the network on the CPU in eval mode, its
        config, and its ``info.json`` (how it was made and its test scores).
    """
    net, cfg, _ = load_model(name, "cpu")
    return net, cfg, zoo.entry_info(name)


def provenance(info: Mapping) -> str:
    """One line saying how a zoo entry was made, read from its ``info.json``
    (the entries may be rebuilt, so nothing here is hard-coded)."""
    recipe = info.get("recipe", {})
    hours = info.get("cpu_hours")
    if hours:  # a zoo v2 entry: grown from a blind trunk, then a branch
        return wrap(f"shipped model (zoo/{info['name']}, {hours['total']:.1f} CPU-hours: search "
                    f"{hours.get('search', 0):.1f} + blind trunk {hours['trunk']:.1f} + branch {hours['branch']:.1f}, "
                    f"on {recipe.get('data', '?')}, "
                    f"{info.get('date', '?')}; see zoo/RESULTS.md)")
    search_min = recipe.get("search_seconds", 0) / 60
    train_min = info.get("train_seconds", 0) / 60
    return wrap(f"shipped model (zoo/{info['name']}, searched {search_min:.0f} + trained {train_min:.0f} "
                f"CPU-minutes on {recipe.get('data', '?')}, {info.get('date', '?')}; see zoo/RESULTS.md)")


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


def search_panel(cfg: Config, on_run: Optional[Callable[[Config], object]] = None, preset: str = "tiny"):
    """A SearchPanel for ``cfg``'s task whose controls start at ``cfg``'s values."""
    from .widgets import SearchPanel  # noqa: PLC0415 (ipywidgets is an optional extra)
    return SearchPanel(preset, on_run=on_run, config=cfg)


class LivePlot:
    """``on_epoch`` callback: keeps the epoch records and redraws, inside one
    widget, the loss/PSNR curves and heatmaps of the current alpha and beta.

    Why a widget and not display handles: inside an ipywidgets ``Output`` (the
    search panel's) IPython display handles are never applied, so curves drawn
    that way froze at epoch 0. Each figure lives in its own ``Output`` whose
    content is replaced every epoch (:func:`hinas_lib.widgets.show_figure`),
    which redraws anywhere and leaves a progress bar above it alone.

    Args:
        cfg: the search's config (primitives, blocks, width factors, epochs).
        kinds: which figures, from :attr:`KINDS` (heatmaps of the latest
            alpha/beta, and their trajectories over the epochs).
    """

    KINDS = ("losses", "alpha", "beta", "alpha_trajectory", "beta_trajectory")
    DEFAULT_KINDS = ("losses", "alpha", "beta")

    def __init__(self, cfg: Config, kinds: Sequence[str] = DEFAULT_KINDS):
        bad = set(kinds) - set(self.KINDS)
        if bad:
            raise ValueError(f"unknown plot kind(s) {sorted(bad)}; choose from {self.KINDS}")
        import ipywidgets as W  # noqa: PLC0415 (an optional extra, needed only in notebooks)

        self.cfg, self.kinds = cfg, tuple(kinds)
        self.history: List[Dict] = []
        self.status = W.HTML("<i>waiting for the first epoch ...</i>")
        self.outputs = {kind: W.Output() for kind in self.kinds}
        self.widget = W.VBox([self.status, *self.outputs.values()])
        self._shown = False

    def figure(self, kind: str):
        """A new figure of ``kind`` from the records so far."""
        last, sp = self.history[-1], self.cfg.space
        if kind == "losses":
            return viz.plot_losses(self.history)
        if kind == "alpha":
            return viz.plot_alphas(last["alpha"], sp.primitives, sp.blocks)
        if kind == "beta":
            return viz.plot_beta(last["beta"], width_factors=sp.width_factors)
        return viz.plot_trajectories(self.history, kind.split("_")[0], primitives=sp.primitives)

    def __call__(self, rec: Dict) -> None:
        from .widgets import show_figure  # noqa: PLC0415 (ipywidgets is an optional extra)

        self.history.append(rec)
        if not self._shown:  # shown at the first record, where the caller's output is
            self._ipython_display_()
        for kind in self.kinds:
            show_figure(self.outputs[kind], self.figure(kind))
        # the status last, so that it never names an epoch the figures do not show yet
        psnr = rec.get("val_psnr")
        phase = "warm-up (weights only)" if rec.get("arch_loss") is None else "searching alpha, beta"
        self.status.value = (f"<b>epoch {rec['epoch'] + 1} of {self.cfg.search.epochs}</b>: {phase}"
                             + (f", validation PSNR {psnr:.2f} dB" if psnr is not None else ""))

    def _ipython_display_(self):
        from IPython.display import display  # noqa: PLC0415 (only inside a notebook)
        self._shown = True
        display(self.widget)


def run_ablation(cfg: Config, variants: Mapping[str, Mapping], *, measure: bool = True,
                 progress: bool = False) -> List[Dict]:
    """Search ``cfg`` once per variant (``name -> space changes``) and collect what
    each one costs and finds: architecture parameters, final validation PSNR,
    search time, one-step time and activation memory, the derived genotype."""
    rows = []
    for name, space in variants.items():
        c = cfg.replace(space=dict(space))
        t0 = time.perf_counter()
        s = Searcher(c, progress=progress, write_figures=False)
        res = s.run()
        row = {"variant": name, "alpha_sharing": c.space.alpha_sharing, "cell_sharing": c.space.cell_sharing,
               "alpha_shape": tuple(res.net.alpha.shape),
               "arch_params": sum(p.numel() for p in res.net.arch_parameters()),
               "cells": len(res.net.cells), "weights": res.net.num_weight_params(),
               "val_psnr": res.history[-1]["val_psnr"], "search_s": time.perf_counter() - t0,
               "genotype": res.genotype}
        if measure:
            m = measure_search_step(c, iters=1 if fast_mode() else 3, warmup=1)
            row.update(step_s=m["iter_s_median"], activation_mib=m["activation_mib"])
        rows.append(row)
    return rows


NOT_ANSWERED = "not answered yet"


def check(answer, expected, hint: str, *, tol: Optional[float] = None) -> None:
    """Check an exercise's answer and print the verdict; never raises (a wrong
    answer must not stop the notebook, nor nbval). Returns nothing, so that a
    check as a cell's last line does not print twice.

    Args:
        answer: the learner's value (None: not answered yet).
        expected: the right value (numbers, tuples/lists, strings, tensors), or
            a predicate ``expected(answer) -> bool`` when many answers are right.
        hint: shown when the answer is wrong.
        tol: absolute tolerance for numbers.

    Prints:
        ``not answered yet``, ``correct`` or ``not quite: <hint>``.
    """
    if answer is None:
        verdict = NOT_ANSWERED
    else:
        try:
            ok = _same(answer, expected, tol)
        except Exception as e:  # noqa: BLE001 (any mistake in the answer is a wrong answer)
            ok, hint = False, f"{hint} (comparing raised {type(e).__name__}: {e})"
        verdict = "correct" if ok else f"not quite: {hint}"
    print(verdict)


def _same(a, b, tol) -> bool:
    if callable(b) and not isinstance(b, torch.Tensor):
        return bool(b(a))
    if isinstance(b, torch.Tensor) or isinstance(a, torch.Tensor):
        a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
        return a.shape == b.shape and bool(torch.allclose(a, b, atol=tol or 1e-6, rtol=0))
    if isinstance(b, (list, tuple)):
        return isinstance(a, (list, tuple)) and len(a) == len(b) and all(_same(x, y, tol) for x, y in zip(a, b))
    if isinstance(b, float) or (tol is not None and isinstance(b, (int, float))):
        return isinstance(a, (int, float)) and abs(float(a) - float(b)) <= (tol or 1e-9)
    return a == b


def format_rows(rows: Sequence[Mapping], columns: Sequence[str], formats: Optional[Mapping[str, str]] = None) -> str:
    """A plain-text table (no pandas needed): ``columns`` of ``rows``, with
    optional per-column format specs such as ``{"val_psnr": ".2f"}``."""
    formats = formats or {}

    def cell(r, c):
        v = r.get(c, "")
        return format(v, formats[c]) if c in formats and v != "" else str(v)

    body = [[cell(r, c) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(b[i]) for b in body]) for i, c in enumerate(columns)]
    # numbers right-aligned, text left-aligned
    numeric = [all(isinstance(r.get(c), (int, float)) for r in rows) for c in columns]

    def line(vals):
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(vals, widths, numeric)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths])] + [line(b) for b in body])


__all__ = ["FAST_ENV", "THREADS_ENV", "FAST_NOTE", "fast_mode", "course_config", "default_threads", "setup",
           "eval_images", "val_size", "repo_root", "design", "shipped_model", "provenance", "evaluate_shipped",
           "SHIPPED", "SHIPPED_EVAL_SIZE", "check", "NOT_ANSWERED", "search_panel", "LivePlot", "run_ablation", "format_rows"]
