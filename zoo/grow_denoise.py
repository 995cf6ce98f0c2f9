#!/usr/bin/env python
"""Grow the zoo's grey denoisers over days: CPU hours add up across sessions.

    python zoo/grow_denoise.py trunk --hours 2      # train the blind trunk 2 more CPU-hours (resumes)
    python zoo/grow_denoise.py trial NAME --hours 0.3   # another recipe, grown and measured the same way
    python zoo/grow_denoise.py branches              # per-sigma + blind models from the trunk -> zoo entries
    python zoo/grow_denoise.py branches --sigmas 30 --restarts 2500@5e-4   # a longer branch: one warm restart
    python zoo/grow_denoise.py ensemble              # add the x8 self-ensemble scores to the entries
    python zoo/grow_denoise.py status                # CPU-hours and validation PSNR so far
    python zoo/grow_denoise.py point [NAME]          # validate a stopped run's state now (adds a curve point)
    python zoo/grow_denoise.py plot                  # zoo/curves.png
    python zoo/grow_denoise.py park                  # keep unfinished branch cycles in zoo/state/parked (commit it)

How (measured, not guessed: zoo/RESULTS.md plots every recipe tried):

1. One *blind trunk*: the searched HiNAS network (compact design) trained on
   Train400 with noise sigma uniform in [0, 75] (DnCNN-B's setting), Adam at a
   constant learning rate, for as many CPU-hours as every session gives it. Its
   state (weights + optimiser + step + CPU seconds) lives in ``zoo/state/``, so
   the next session resumes it exactly; one torch thread, in the background.
2. *Branches*, whenever entries are wanted: from the trunk's current weights,
   a fine-tune with the learning rate decayed to ~0 (warmup-stable-decay),
   at one sigma (``denoise-s30``, ``-s50``, ``-s70``) or over the whole range
   (``denoise-blind``), on MSE alone: the trunk's loss adds the authors' log-SSIM
   term, 35 to 50 times the MSE's value at sigma 70 to 30 on the trunk's outputs,
   so it steers training away from PSNR. A branch may go on with warm restarts:
   further cosine cycles from a lower peak rate, from the previous cycle's weights
   (when the shipped entry is exactly that previous cycle, from its weights, so the
   first cycle is not trained again). ``BRANCHES`` holds each shipped entry's length,
   loss and restarts. The trunk itself is not changed, so it keeps growing.
3. Every entry is evaluated on Set12 against noisy input, NLM and BM3D (the
   ``bm3d`` package), and records the CPU-hours it took (trunk + branch).

A branch cycle runs in ``runs/zoo-v2/`` (git-ignored, so gone from a fresh checkout); one
longer than a session goes on in the next only if ``park`` copied its last checkpoint into
``zoo/state/parked/`` and that was committed: ``branches`` takes it from there.

Validation during training uses 20 Train400 images held out of training
(5%, seeded), at sigma 30 / 50 / 70 (``curves.jsonl``): Set12 stays a test set.
Needs ``../shared/data/{Train400,Set12}`` (or ``--shared DIR``, honoured by every command).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "zoo")]

import torch  # noqa: E402

import zootools  # noqa: E402 (beside this script)
from hinas_lib import data, splits  # noqa: E402
from hinas_lib.checkpoint import atomic_write_bytes, atomic_write_text, load_checkpoint  # noqa: E402
from hinas_lib.checks import MAX_THREADS  # noqa: E402
from hinas_lib.cli import classify, int_in  # noqa: E402
from hinas_lib.config import Config, get_preset  # noqa: E402
from hinas_lib.evaluate import evaluate, format_table  # noqa: E402
from hinas_lib.genotype import Genotype  # noqa: E402
from hinas_lib.model_files import load_model  # noqa: E402
from hinas_lib.runfiles import GENOTYPE_FILE, MODEL_FILE, TRAIN_STATE as STATE_NAME  # noqa: E402
from hinas_lib.runtime import set_threads  # noqa: E402
from hinas_lib.tasks import get_task, with_level  # noqa: E402
from hinas_lib.train import Trainer  # noqa: E402
from hinas_lib.validation import validate  # noqa: E402
from hinas_lib.zoo import available, entry_info  # noqa: E402

ZOO = ROOT / "zoo"
SHARED = ROOT.parent / "shared"  # the default --shared
STATE = ZOO / "state"
SEARCH_GENOTYPE = STATE / "denoise-search" / GENOTYPE_FILE
SIGMAS = (30, 50, 70)
BLIND_RANGE = (0.0, 75.0)
CHUNK_S = 20 * 60  # CPU seconds between validations at the three sigmas

# Candidate recipes for the trunk: (layers of the searched genotype repeated, F, crop, batch, lr).
RECIPES: Dict[str, Dict] = {
    "g1-f32": dict(repeat=1, filters=32, crop=48, batch=16, lr=1e-3),
    "g1-f48": dict(repeat=1, filters=48, crop=48, batch=16, lr=1e-3),
    "g2-f24": dict(repeat=2, filters=24, crop=48, batch=16, lr=1e-3),
    "g2-f32": dict(repeat=2, filters=32, crop=48, batch=16, lr=1e-3),
}
TRUNK = "g1-f32"   # the recipe the trunk grows with: the best validation PSNR per CPU-hour in the first hour
BLIND = STATE / "blind"  # one folder per recipe: the trunk is the TRUNK recipe's, trials are the others
BRANCH_STEPS = 750  # a branch: a decay from the trunk's learning rate to ~0 over this many steps
BRANCH_SSIM = 0.0  # its loss's log-SSIM weight: 0, MSE alone (the trunk's own loss is MSE + 1.0 x log-SSIM)
ORIGIN = "origin.json"  # in a restart's run folder: the CPU seconds and validation points of the cycles before it
# What `branches` makes by default, so that it reproduces the shipped entries: (steps, log-SSIM weight,
# restarts) per branch. MSE alone gave +0.35 dB at sigma 30 and +0.36 at sigma 50 on Set12 over the
# trunk's loss at equal steps; the longer branches are where more steps were measured to pay.
# Restarts are further cosine cycles (warm restarts, SGDR), each (steps, peak learning rate), from the
# previous cycle's final weights down to the same 1e-6: more training for a branch already made,
# without redoing its first cycle.
BRANCHES = {"30": (2500, 0.0, ((2500, 5e-4), (8000, 4e-4), (12000, 3e-4))), "50": (2500, 0.0, ((1500, 3e-4),)),
            "70": (2500, 0.0, ((2500, 5e-4),)),
            "blind": (2500, 0.0, ((8000, 5e-4),))}
# The trunk each shipped branch grew from, where it is not TRUNK: the sigma-30 branch of the wider
# g1-f48 replaced g1-f32's (held-out 26.95 against 26.92 dB, 2026-12-07), and so did its blind
# branch (held-out 24.39 against 24.36 dB at sigma 50, 2026-12-08).
BRANCH_TRUNKS = {"30": "g1-f48", "blind": "g1-f48"}


def genotype(repeat: int) -> Genotype:
    """The searched genotype, its layers repeated ``repeat`` times (a deeper network of the
    same cells: the search ran 3 layers; the width path continues at its last level)."""
    g = Genotype.load(SEARCH_GENOTYPE)
    return Genotype(cells=g.cells * repeat, path=g.path + (g.path[-1],) * (len(g.path) * (repeat - 1)),
                    width_factors=g.width_factors)


def train400(shared=None) -> str:
    """The Train400 folder as configs name it: ``../shared/...`` relative to the repository for
    the default ``--shared`` (no machine's absolute path in the shipped state), else absolute."""
    shared = Path(SHARED if shared is None else shared).resolve()
    if shared == SHARED.resolve():
        return "../shared/data/Train400"
    return str(shared / "data" / "Train400")


def trunk_config(recipe: str, shared=None) -> Config:
    r = RECIPES[recipe]
    base = get_preset("tiny", "denoise")
    return base.replace(
        name=f"zoo-denoise-blind-{recipe}",
        task=dict(sigmas=[float(s) for s in SIGMAS], sigma_range=list(BLIND_RANGE), eval_sigma=50.0),
        space=dict(layers=3, blocks=4, filters=8),  # the search's space (retraining reads its activation only)
        train=dict(filters=r["filters"], epochs=1_000_000, steps_per_epoch=250, batch_size=r["batch"],
                   crop=r["crop"], lr=r["lr"], lr_min=r["lr"], schedule="constant", val_every=1,
                   train_on_val=False, seed=0),
        data=dict(train_dir=train400(shared), val_fraction=0.05))


def _check_state_data(folder: Path, cfg: Config) -> None:
    """A run started on one Train400 resumes on that one: say so instead of the config mismatch."""
    state = folder / STATE_NAME
    if state.is_file():
        saved = load_checkpoint(state, kind="train")["config"].get("data", {}).get("train_dir")
        if saved != cfg.data.train_dir:
            raise ValueError(f"{state} was trained on {saved}, but --shared gives {cfg.data.train_dir}; "
                             "pass the --shared it was started with")


def branch_config(trunk: Config, sigma, steps: int = BRANCH_STEPS, ssim_weight: float = BRANCH_SSIM) -> Config:
    """A branch of the trunk: one sigma (or the blind range when sigma is None), the learning
    rate decayed from the trunk's to ~0 over ``steps`` (a multiple of 250), on the loss
    MSE + ``ssim_weight`` x log-SSIM (0: MSE alone, the loss of the PSNR the table reports)."""
    if steps <= 0 or steps % 250:
        raise ValueError(f"branch steps must be a positive multiple of 250, got {steps}")
    base = with_level(trunk, sigma) if sigma is not None else trunk.replace(task=dict(eval_sigma=50.0))
    name = f"zoo-denoise-{'s%g' % sigma if sigma is not None else 'blind'}"
    return base.replace(name=name,
                         train=dict(epochs=steps // 250, lr_min=trunk.train.lr * 1e-3, schedule="cosine",
                                    val_every=steps // 250, seed=1,
                                    # -1: the trunk's own loss (train.ssim_weight's "use task.ssim_weight")
                                    ssim_weight=-1.0 if ssim_weight == trunk.task.ssim_weight
                                    else float(ssim_weight)))


def restart_config(cfg: Config, k: int, steps: int, lr: float) -> Config:
    """Cycle ``k`` (1, 2, ...) of a branch whose first cycle is ``cfg``: ``steps`` more steps with
    the learning rate decayed (cosine) from ``lr`` to the first cycle's final rate, on new patches."""
    if steps <= 0 or steps % 250:
        raise ValueError(f"restart steps must be a positive multiple of 250, got {steps}")
    if not 0 < lr <= cfg.train.lr:
        raise ValueError(f"a restart's peak learning rate must be in (0, {cfg.train.lr:g}], got {lr:g}")
    return cfg.replace(train=dict(epochs=steps // 250, lr=float(lr), val_every=steps // 250,
                                  seed=cfg.train.seed + k))


def cycle_configs(trunk: Config, sigma, steps: int = BRANCH_STEPS, ssim_weight: float = BRANCH_SSIM,
                  restarts=()) -> List[Config]:
    """The configs of a branch's cycles, in order: the first from the trunk, then each restart."""
    first = branch_config(trunk, sigma, steps, ssim_weight)
    return [first] + [restart_config(first, k, n, lr) for k, (n, lr) in enumerate(restarts, 1)]


def parse_restart(text: str):
    """``"2500@5e-4"`` -> ``(2500, 0.0005)``."""
    try:
        n, lr = text.split("@")
        return int(n), float(lr)
    except ValueError:
        raise ValueError(f"a restart is STEPS@LR, e.g. 2500@5e-4, got {text!r}") from None


def _curve_point(tr: Trainer, images) -> Dict:
    task = get_task(tr.cfg)
    out = {"step": tr.step, "cpu_h": tr._cpu_now() / 3600, "time": time.strftime("%Y-%m-%d %H:%M")}
    for s in SIGMAS:
        ds = list(task.eval_dataset(images, level=s))
        out[f"psnr{s}"] = validate(tr.net, ds, task, tr.device)["val_psnr"]
    return out


def grow(recipe: str, hours: float, shared=None) -> None:
    """Train ``recipe`` in ``zoo/state/blind/<recipe>`` for ``hours`` more CPU-hours
    (resuming), logging the validation PSNR at every sigma to its ``curves.jsonl``."""
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not (math.isfinite(hours) and hours > 0):
        raise ValueError(f"--hours: must be a positive number of CPU-hours, got {hours!r}")
    folder, name = BLIND / recipe, recipe + (" (trunk)" if recipe == TRUNK else "")
    cfg = trunk_config(recipe, shared)
    _check_state_data(folder, cfg)
    geno = genotype(RECIPES[recipe]["repeat"])
    resume = (folder / STATE_NAME).exists()
    curves = folder / "curves.jsonl"
    if curves.exists() and not resume:
        # (only the trunk's state is kept in git: a trial's curve stays, its checkpoint does not)
        print(f"error: {folder} has a curve but no {STATE_NAME} to resume it from; "
              f"move the folder away to grow {recipe} from scratch", file=sys.stderr)
        raise SystemExit(2)
    tr = Trainer(cfg, geno, folder, resume=resume, progress=False, val_size=0)
    images = splits.split_images(cfg)["val"]
    if not curves.exists():
        _append_point(folder, _curve_point(tr, images))
    budget_end = tr._cpu_now() + hours * 3600
    steps_per_s = None
    while tr._cpu_now() < budget_end:
        c0, s0 = tr._cpu_now(), tr.step
        chunk = min(CHUNK_S, budget_end - tr._cpu_now())
        n = 250 if steps_per_s is None else max(250, int(chunk * steps_per_s) // 250 * 250)
        tr.run(stop_after=tr.step + n)
        steps_per_s = (tr.step - s0) / max(1e-9, tr._cpu_now() - c0)
        point = _append_point(folder, _curve_point(tr, images))
        print(f"{name}: step {tr.step}, {point['cpu_h']:.2f} CPU-h, val PSNR "
              + " / ".join(f"{point[f'psnr{s}']:.2f}" for s in SIGMAS) + f" at sigma {SIGMAS}", flush=True)


def add_point(recipe: str, shared=None) -> Dict:
    """Validate ``recipe``'s saved state at the three sigmas and add it to ``curves.jsonl``
    (for a trunk stopped between two of its own points, e.g. killed to free the cores)."""
    folder = BLIND / recipe
    cfg = trunk_config(recipe, shared)
    _check_state_data(folder, cfg)
    tr = Trainer(cfg, genotype(RECIPES[recipe]["repeat"]), folder, resume=True, progress=False, val_size=0)
    curve = read_curve(folder)
    if curve and curve[-1]["step"] == tr.step:
        return curve[-1]
    return _append_point(folder, _curve_point(tr, splits.split_images(cfg)["val"]))


def _append_point(folder: Path, point: Dict) -> Dict:
    with open(folder / "curves.jsonl", "a") as f:
        f.write(json.dumps(point) + "\n")
    return point


def read_curve(folder: Path) -> List[Dict]:
    path = folder / "curves.jsonl"
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []


def val_baselines(shared=None) -> Dict[str, Dict[str, float]]:
    """NLM and BM3D on the 20 held-out validation images at each sigma (cached), for the plot."""
    cache = STATE / "baselines_val.json"
    if cache.exists():
        return json.loads(cache.read_text())
    cfg = trunk_config(TRUNK, shared)
    images = splits.split_images(cfg)["val"]
    out = {}
    for s in SIGMAS:
        c = with_level(get_preset("tiny", "denoise"), s)
        ev = evaluate(_Identity(), c, images, progress=False, bm3d=True)
        out[str(s)] = {"nlm": ev["mean"]["baseline_psnr"], "bm3d": ev["mean"]["bm3d_psnr"],
                       "noisy": ev["mean"]["input_psnr"]}
    atomic_write_text(cache, json.dumps(out, indent=1))
    return out


def _entries() -> List[Dict]:
    """The grey zoo entries this script made (``info.json`` with CPU-hours)."""
    infos = (entry_info(n) for n in available() if n.startswith("denoise-"))
    return [i for i in infos if "cpu_hours" in i]


def plot_curves(path: Path, shared=None) -> Path:
    """Validation PSNR against CPU-hours for every recipe grown, one panel per sigma, with NLM
    and BM3D on the same images as dashed lines."""
    import matplotlib  # noqa: PLC0415 -- only the plot needs it
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    base = val_baselines(shared)
    fig, axes = plt.subplots(1, len(SIGMAS), figsize=(4.2 * len(SIGMAS), 3.6), sharex=True)
    for ax, s in zip(axes, SIGMAS):
        colour: Dict[str, str] = {}  # each recipe's curve colour: its branches' stars take it
        for folder in sorted(BLIND.glob("*")):
            c = read_curve(folder)[1:]  # (the first point is the untrained network)
            if c:
                label = folder.name + (" (trunk)" if folder.name == TRUNK else "")
                line, = ax.plot([p["cpu_h"] for p in c], [p[f"psnr{s}"] for p in c], marker=".", label=label,
                                lw=2.5 if folder.name == TRUNK else 1.2)
                colour[folder.name] = line.get_color()
        # the entries: the trunk's weights after a branch (learning rate decayed), at the CPU-hours
        # of trunk + branch; validated on the same images at the branch's own sigma (blind: 50)
        for info in _entries():
            h, at = info["cpu_hours"], info["sigma"] if info["sigma"] is not None else 50
            if at == s and info.get("best_val_psnr") is not None:
                cycles = info.get("branch_cycles_val", [])
                if len(cycles) > 1:  # a branch with warm restarts: the end of each cycle, joined
                    ax.plot([h["trunk"] + c for c, _ in cycles], [p for _, p in cycles], lw=0.8, ls="-",
                            marker="o", ms=3, color="black" if info["sigma"] is not None else "tab:red")
                recipe = info.get("trunk_recipe", TRUNK)
                ax.plot([h["trunk"] + h["branch"]], [info["best_val_psnr"]], marker="*", ms=11, ls="none",
                        label=f"{info['name']} (branch" + (f" of {recipe})" if recipe != TRUNK else ")"),
                        color="black" if info["sigma"] is not None else "tab:red")
        # hollow stars in their trunk's colour: entries a better branch replaced (their cycles
        # joined), and branches of other trunks that were not shipped (unless they are the first
        # cycle of a shipped entry, drawn above)
        cycles_shipped = {(i["name"], i.get("trunk_recipe", TRUNK), round(p, 6))
                          for i in _entries() for _, p in i.get("branch_cycles_val", [])}
        for row in read_trials():
            recipe = row.get("trunk_recipe", TRUNK)
            if (row["shipped"] or row["name"] != f"denoise-s{s}" or row.get("trunk_cpu_h") is None
                    or (not row.get("replaced") and recipe == TRUNK)
                    or (row["name"], recipe, round(row["val_psnr"], 6)) in cycles_shipped):
                continue
            col = colour.get(recipe, "tab:orange")
            if len(row.get("cycles", [])) > 1:
                ax.plot([row["trunk_cpu_h"] + c for c, _ in row["cycles"]], [p for _, p in row["cycles"]], lw=0.8,
                        marker="o", ms=3, color=col)
            ax.plot([row["trunk_cpu_h"] + row["branch_cpu_h"]], [row["val_psnr"]], marker="*", ms=11,
                    ls="none", mfc="none", color=col,
                    label=(f"{row['name']} of {recipe}, replaced {row['replaced']}" if row.get("replaced")
                           else f"branch of {recipe} (not shipped)"))
        for key, style in (("bm3d", "--"), ("nlm", ":")):
            ax.axhline(base[str(s)][key], color="grey", ls=style, lw=1)
            ax.annotate(key.upper(), (1.0, base[str(s)][key]), xycoords=("axes fraction", "data"),
                        ha="right", va="bottom", fontsize=8, color="grey")
        ax.set_title(f"sigma {s}: validation PSNR (20 held-out Train400 images)", fontsize=9)
        ax.set_xlabel("CPU-hours (one thread)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("PSNR (dB)")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------
# branches -> zoo entries
# ---------------------------------------------------------------------------

def baselines(images, sigma: float) -> Dict:
    """Noisy / NLM / BM3D on the test images at ``sigma``, cached in zoo/state (BM3D takes minutes)."""
    cache = STATE / "baselines_set12.json"
    table = json.loads(cache.read_text()) if cache.exists() else {}
    key = f"{sigma:g}"
    if key not in table:
        cfg = with_level(get_preset("tiny", "denoise"), sigma)
        ident = _Identity()
        ev = evaluate(ident, cfg, images, progress=True, bm3d=True)
        table[key] = {"mean": {k: v for k, v in ev["mean"].items() if not k.startswith("ours")},
                      "images": [{k: v for k, v in r.items() if not k.startswith("ours")} for r in ev["images"]]}
        # branches may run side by side: merge with what another process wrote meanwhile
        entry = table[key]
        table = json.loads(cache.read_text()) if cache.exists() else {}
        table[key] = entry
        atomic_write_text(cache, json.dumps(table, indent=1))
    return table[key]


class _Identity(torch.nn.Module):
    """Stands for a model when only the baselines are wanted."""

    def __init__(self):
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return x


def branch_runs(label: str, trunk_step: int, steps: int, ssim_weight: float, restarts=(),
                recipe: str = TRUNK) -> List[Path]:
    """The run folder of each cycle of a branch: one per trunk (recipe and state) and variant, so a
    branch of another trunk, length or loss never resumes another's state; a restart's folder names
    its cycles. (The trunk recipe's branches keep their first folders' names: no recipe in them.)"""
    trunk = f"trunk{trunk_step}" if recipe == TRUNK else f"{recipe}-trunk{trunk_step}"
    runs = [ROOT / "runs" / "zoo-v2" / trunk / f"branch-{label}-{steps}-ssim{ssim_weight:g}"]
    for n, lr in restarts:
        runs.append(runs[-1].with_name(runs[-1].name + f"+{n}@{lr:g}"))
    return runs


def train_cycles(name: str, trunk_state: Dict, cfgs: List[Config], steps: int, ssim_weight: float, restarts=(),
                 recipe: str = TRUNK):
    """Train (or resume) the cycles ``cfgs`` of branch ``name`` (``cycle_configs(..., steps,
    ssim_weight, restarts)``) from the trunk's weights.

    Returns:
        (the last cycle's TrainResult, the branch's CPU seconds over all cycles, the
        [branch CPU-hours so far, validation PSNR] at the end of each cycle).
    """
    geno = Genotype.from_dict(trunk_state["genotype"])
    runs = branch_runs(name.split("-", 1)[1], int(trunk_state["step"]), steps, ssim_weight, restarts, recipe)
    unpark(runs)
    # go on from the last cycle that has a state: the cycles before it are done (their CPU time and
    # validation PSNR are in its ORIGIN file)
    start = max((k for k, r in enumerate(runs) if (r / STATE_NAME).exists() and (k == 0 or (r / ORIGIN).exists())),
                default=0)
    shipped = None if start or (runs[0] / STATE_NAME).exists() else \
        _shipped_cycles(name, trunk_state, steps, ssim_weight, restarts, recipe)
    if start:
        origin = json.loads((runs[start] / ORIGIN).read_text())
        weights, branch_s, points = None, float(origin["prior_cpu_s"]), origin["prior_points"]
    elif shipped is not None:
        # the shipped entry is this branch's first cycles (their run folders may be on another
        # machine): go on from its weights, its CPU time and validation points carried over
        start, weights, branch_s, points = shipped
        print(f"{name}: the first {start} cycle(s) = the shipped entry's weights; restarting from them")
    else:
        weights, branch_s, points = trunk_state["model"], 0.0, []
    res = None
    for k in range(start, len(cfgs)):
        run, resume = runs[k], (runs[k] / STATE_NAME).exists()
        if k and not resume:
            run.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run / ORIGIN, json.dumps({"prior_cpu_s": branch_s, "prior_points": points}))
        tr = Trainer(cfgs[k], geno, run, resume=resume, progress=True, val_size=0,
                     init_weights=None if resume else weights)
        res = tr.run()
        weights = {k2: v.detach().clone() for k2, v in res.net.state_dict().items()}
        branch_s += tr._cpu_now()
        points.append([round(branch_s / 3600, 4), res.best_psnr])  # (validated once per cycle, at its end)
    for run in runs:  # the branch is done: nothing of it is left to resume
        unpark_done(run)
    return res, branch_s, points


PARK_FILES = (STATE_NAME, ORIGIN, MODEL_FILE)  # what resumes a cycle: its state, where it came from, its best weights


def parked_root() -> Path:
    """Where ``park`` keeps run folders in the repository (a function: tests move ROOT)."""
    return ROOT / "zoo" / "state" / "parked"


def parked(run: Path) -> Path:
    """Where ``park`` keeps the run folder ``run`` (under ``runs/``) in the repository."""
    return parked_root() / run.relative_to(ROOT / "runs")


def _copy_cycle(src: Path, dest: Path) -> None:
    """A cycle's PARK_FILES from folder ``src`` into ``dest``, each written atomically."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PARK_FILES:
        if (src / name).exists():
            atomic_write_bytes(dest / name, (src / name).read_bytes())


def _cycle_done(run: Path) -> bool:
    state = load_checkpoint(run / STATE_NAME, kind="train")
    t = Config.from_dict(state["config"]).train
    return int(state["step"]) >= t.epochs * t.steps_per_epoch


def park() -> List[Path]:
    """Copy the cycles that are not finished (and a finished one whose next cycle has not yet
    reached its first checkpoint) from ``runs/zoo-v2`` into ``zoo/state/parked``, and drop the
    parked copies of cycles that have since finished or been followed. A parked folder without
    its run folder here (parked on another machine or in another checkout) is left alone."""
    runs_root = ROOT / "runs" / "zoo-v2"
    keep, drop = [], []
    for run in sorted(p.parent for p in runs_root.glob(f"*/*/{STATE_NAME}")):
        nxt = [r for r in run.parent.iterdir() if r.name.startswith(run.name + "+") and "+" not in r.name[len(run.name) + 1:]]
        followed = any((r / STATE_NAME).exists() for r in nxt)
        waiting = any((r / ORIGIN).exists() and not (r / STATE_NAME).exists() for r in nxt)
        (drop if followed or (_cycle_done(run) and not waiting) else keep).append(run)
    for run in keep:
        _copy_cycle(run, parked(run))
    for run in drop:
        unpark_done(run)
    return keep


def unpark_done(run: Path) -> None:
    """Remove ``run``'s parked copy (the cycle finished, or a later one holds the branch)."""
    dest = parked(run)
    if dest.is_dir():
        shutil.rmtree(dest)
        top = parked_root().parent
        for d in dest.parents:  # the folders left empty, up to zoo/state/parked itself
            if d == top or any(d.iterdir()):
                break
            d.rmdir()


def unpark(runs: List[Path]) -> None:
    """Put the parked copies of a branch's cycles back where the cycles train, where the run
    folder has no state of its own (a fresh checkout): ``train_cycles`` then resumes them."""
    for run in runs:
        src = parked(run)
        if (src / STATE_NAME).exists() and not (run / STATE_NAME).exists():
            _copy_cycle(src, run)
            print(f"{run.name}: resuming the parked state from {src.relative_to(ROOT)}")


def branch_trunk(trunk_state: Dict, shared) -> Config:
    """The trunk's config as its branches start from it: reading Train400 under ``shared``."""
    return Config.from_dict(trunk_state["config"]).replace(data={"train_dir": train400(shared)})


def branch(sigma, shared: Path, steps: int = BRANCH_STEPS, ssim_weight: float = BRANCH_SSIM,
           restarts=(), recipe: str = TRUNK) -> Dict:
    """Branch ``recipe``'s trunk (default: the trunk; another recipe's state when one is kept, to
    compare trunks at equal CPU-hours) and ship it only if the held-out images say so."""
    trunk_dir = BLIND / recipe
    trunk_state = load_checkpoint(trunk_dir / STATE_NAME, kind="train")
    trunk = branch_trunk(trunk_state, shared)
    cfgs = cycle_configs(trunk, sigma, steps, ssim_weight, restarts)
    label = f"s{sigma:g}" if sigma is not None else "blind"
    name = f"denoise-{label}"
    res, branch_s, points = train_cycles(name, trunk_state, cfgs, steps, ssim_weight, restarts, recipe)
    # Selection on the held-out Train400 images, never on Set12: a branch replaces the shipped
    # entry only when it validates higher there (same 20 images, same sigma, seeded noise).
    shipped = entry_info(name).get("best_val_psnr") if name in available() else None
    keep = shipped is not None and float(shipped) >= res.best_psnr
    _log_trial({"name": name, "steps": steps, "ssim_weight": ssim_weight,
                "restarts": [[n, lr] for n, lr in restarts], "trunk_recipe": recipe,
                "trunk_step": int(trunk_state["step"]), "trunk_cpu_h": round(float(trunk_state.get("cpu_s", 0.0)) / 3600, 3),
                "branch_cpu_h": round(branch_s / 3600, 3), "val_psnr": res.best_psnr,
                "shipped_val_psnr": shipped, "shipped": not keep, "date": time.strftime("%Y-%m-%d")})
    if keep:
        print(f"{name}: held-out validation {res.best_psnr:.3f} dB <= the shipped entry's {float(shipped):.3f}: "
              f"entry kept (this branch stays in "
              f"{branch_runs(label, int(trunk_state['step']), steps, ssim_weight, restarts, recipe)[-1]})")
        return entry_info(name)
    if shipped is not None and "cpu_hours" in entry_info(name):  # the entry replaced stays on the curves
        _log_trial(replaced_row(entry_info(name), time.strftime("%Y-%m-%d")))
    net, mcfg, _ = load_model(res.model_path, "cpu")
    images = data.load_folder(shared / "data" / "Set12", channels=1)
    results = {}
    for s in (SIGMAS if sigma is None else (sigma,)):
        ev = evaluate(net, mcfg, images, level=s, progress=True)
        base = baselines(images, float(s))
        mean = {**base["mean"], **{k: v for k, v in ev["mean"].items() if k.startswith("ours")}}
        rows = [{**b, **{k: v for k, v in r.items() if k.startswith("ours")}} for b, r in zip(base["images"],
                                                                                             ev["images"])]
        results[f"Set12 sigma {s:g}"] = {"mean": mean, "images": rows, "sigma": s, "metric": ev["metric"]}
        print(format_table({**ev, "mean": mean, "images": rows}))
    trunk_h = float(trunk_state.get("cpu_s", 0.0)) / 3600
    branch_h = branch_s / 3600
    search_h = zootools.run_seconds(SEARCH_GENOTYPE.parent) / 3600
    restart_note = "".join(f", then a warm restart: {n:,} steps from {lr:g} to 1e-6 (cosine)" for n, lr in restarts)
    info = {
        "name": name, "task": "denoise", "channels": 1, "sigma": sigma,
        "params": sum(p.numel() for p in net.parameters()),
        "ms_per_mpix_cpu": zootools.ms_per_megapixel({name: (net, mcfg)})[name],
        # the search ran once on one thread (its wall time from its log); trunk and branch are CPU time
        "cpu_hours": {"search": round(search_h, 2), "trunk": round(trunk_h, 2), "branch": round(branch_h, 2),
                      "total": round(search_h + trunk_h + branch_h, 2)},
        "train_seconds": round((trunk_h + branch_h) * 3600),
        "train_steps": int(trunk_state["step"]) + steps + sum(n for n, _ in restarts),
        "branch_steps": steps, "branch_ssim_weight": ssim_weight,
        "branch_restarts": [[n, lr] for n, lr in restarts], "trunk_recipe": recipe,
        "branch_cycles_val": points,  # [branch CPU-hours so far, validation PSNR] at the end of each cycle
        "best_val_psnr": res.best_psnr,
        "machine": zootools.machine(), "date": time.strftime("%Y-%m-%d"),
        "recipe": {"data": "Train400 (400 grey BSD crops; 20 held out for validation)",
                   "search": _search_note(),
                   "train": (f"blind trunk ({recipe}: {_recipe_note(recipe)}, sigma U[0, 75], Adam {trunk.train.lr:g} "
                             f"constant, {int(trunk_state['step']):,} steps of {trunk.train.batch_size} "
                             f"{trunk.train.crop}x{trunk.train.crop} patches), then {steps:,} steps "
                             + (f"at sigma {sigma:g}" if sigma is not None else "over sigma U[0, 75]")
                             + " with the learning rate decayed to 1e-6 (cosine), loss "
                             + (f"MSE + {ssim_weight:g} x log-SSIM" if ssim_weight else "MSE alone") + restart_note),
                   "command": ((f"python zoo/grow_denoise.py trunk --hours H; " if recipe == TRUNK
                                else f"python zoo/grow_denoise.py trial {recipe} --hours H; ")
                               + f"python zoo/grow_denoise.py branches --sigmas {label.lstrip('s')} --steps {steps} "
                               f"--ssim-weight {ssim_weight:g}"
                               + (" --restarts " + " ".join(f"{n}@{lr:g}" for n, lr in restarts) if restarts else "")
                               + (f" --trunk {recipe}" if recipe != TRUNK else ""))},
        "results": results,
    }
    zootools.write_entry(name, res.model_path, info)
    return add_self_ensemble(name, shared)


TRIALS = STATE / "branch_trials.jsonl"  # every branch trained, shipped or not, with its held-out PSNR


def read_trials() -> List[Dict]:
    """Every branch trained, shipped or not (``TRIALS``), oldest first."""
    return [json.loads(l) for l in TRIALS.read_text().splitlines() if l.strip()] if TRIALS.exists() else []


def _log_trial(row: Dict) -> None:
    """Append one branch's outcome to ``TRIALS`` (rewritten whole, atomically)."""
    old = TRIALS.read_text() if TRIALS.exists() else ""
    atomic_write_text(TRIALS, old + json.dumps(row) + "\n")


def replaced_row(info: Dict, date: str) -> Dict:
    """The ``TRIALS`` row of a shipped entry a better branch replaced on ``date``: its trunk, its
    CPU-hours and its cycles' held-out PSNR, so the curves still show what it was beaten by."""
    h = info["cpu_hours"]
    return {"name": info["name"], "steps": info.get("branch_steps"), "ssim_weight": info.get("branch_ssim_weight"),
            "restarts": info.get("branch_restarts", []), "trunk_recipe": info.get("trunk_recipe", TRUNK),
            "trunk_cpu_h": h["trunk"], "branch_cpu_h": h["branch"], "val_psnr": info["best_val_psnr"],
            "cycles": info.get("branch_cycles_val", []), "shipped": False, "replaced": date,
            "date": info.get("date")}


def _shipped_cycles(name: str, trunk_state: Dict, steps: int, ssim_weight: float, restarts=(),
                    recipe: str = TRUNK):
    """(cycles done, weights, branch CPU seconds, validation points) of entry ``name`` when it is
    the first cycles of this branch (same trunk, length and loss, its restarts a proper prefix of
    ``restarts``), so that the branch goes on from the shipped weights without training those
    cycles again; else None."""
    if name not in available():
        return None
    info = entry_info(name)
    done = [tuple(r) for r in info.get("branch_restarts", [])]
    m = len(done)
    if (info.get("branch_steps"), info.get("branch_ssim_weight")) != (steps, ssim_weight) \
            or info.get("trunk_recipe", TRUNK) != recipe or m >= len(restarts) \
            or [(int(n), float(lr)) for n, lr in restarts[:m]] != [(int(n), float(lr)) for n, lr in done] \
            or info.get("train_steps") != int(trunk_state["step"]) + steps + sum(int(n) for n, _ in done):
        return None
    _, _, ckpt = load_model(ZOO / name, "cpu")
    branch_s = info["train_seconds"] - float(trunk_state.get("cpu_s", 0.0))
    points = info.get("branch_cycles_val") or [[round(branch_s / 3600, 4), info["best_val_psnr"]]]
    return m + 1, ckpt["state_dict"], branch_s, [list(p) for p in points]


def add_self_ensemble(name: str, shared: Path) -> Dict:
    """Score entry ``name`` again on Set12 with the x8 self-ensemble (the 8 flips/rotations
    averaged, ``eval --self-ensemble``) at each sigma it was tested at, on the same noisy
    images, and store it beside the plain score (``ours_x8_psnr`` / ``ours_x8_ssim``)."""
    net, mcfg, _ = load_model(ZOO / name, "cpu")
    images = data.load_folder(shared / "data" / "Set12", channels=1)
    info = entry_info(name)
    for r in info["results"].values():
        ev = evaluate(net, mcfg, images, level=r["sigma"], with_baseline=False, progress=True, self_ensemble=True)
        if abs(ev["mean"]["input_psnr"] - r["mean"]["input_psnr"]) > 1e-9:
            raise RuntimeError(f"{name}: the noisy Set12 images differ from those the entry was scored on")
        for row, new in zip(r["images"] + [r["mean"]], ev["images"] + [ev["mean"]]):
            row["ours_x8_psnr"], row["ours_x8_ssim"] = new["ours_psnr"], new["ours_ssim"]
        print(f"{name} at sigma {r['sigma']:g}: {r['mean']['ours_psnr']:.2f} dB, x8 self-ensemble "
              f"{r['mean']['ours_x8_psnr']:.2f} dB", flush=True)
    atomic_write_text(ZOO / name / "info.json", json.dumps(info, indent=1))
    return info


def _search_note() -> str:
    path = SEARCH_GENOTYPE.parent / "search.json"
    return json.loads(path.read_text())["note"] if path.exists() else "see zoo/state/denoise-search"


def _recipe_note(recipe: str) -> str:
    r = RECIPES[recipe]
    return f"searched cells x{r['repeat']} ({3 * r['repeat']} layers), F={r['filters']}"


def main(argv=None) -> int:
    ap = _Parser(description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["trunk", "trial", "branches", "ensemble", "point", "status", "plot", "park"])
    ap.add_argument("name", nargs="?", help="trial: the recipe (" + ", ".join(RECIPES) + "); "
                    "ensemble: the entry (default: every grey entry)")
    ap.add_argument("--hours", type=_hours, default=1.0, help="CPU-hours to add (trunk, trial)")
    ap.add_argument("--shared", default=str(SHARED), help="the folder holding data/Train400 and data/Set12")
    ap.add_argument("--threads", type=int_in(1, MAX_THREADS, "torch threads"), default=1)
    ap.add_argument("--sigmas", nargs="*", default=None, help="branches: which (30 50 70 blind)")
    ap.add_argument("--steps", type=int, default=None,
                    help="branches: fine-tuning steps each, a multiple of 250 (default: the shipped entries')")
    ap.add_argument("--ssim-weight", type=float, default=None,
                    help="branches: the loss's log-SSIM weight, 0 for MSE alone (default: the shipped entries')")
    ap.add_argument("--restarts", nargs="*", default=None, metavar="STEPS@LR",
                    help="branches: warm restarts after the first cycle, e.g. 2500@5e-4 (default: the shipped "
                         "entries' when neither --steps nor --ssim-weight is given, else none)")
    ap.add_argument("--trunk", default=None, choices=list(RECIPES),
                    help=f"branches: whose trunk state to branch from (default: the shipped entry's, {TRUNK} "
                         "unless BRANCH_TRUNKS says otherwise; another recipe's kept trial state, to compare "
                         "trunks at equal CPU-hours)")
    ap.add_argument("--no-page", action="store_true",
                    help="branches: skip the plot and zoo/RESULTS.md (when several branch commands run side by side)")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed
        return e.code if isinstance(e.code, int) else 2
    shared = Path(args.shared).resolve()  # before the chdir: a relative --shared is the caller's
    if args.command == "park":  # needs no data
        kept = park()
        for run in kept:
            print(f"parked {run.relative_to(ROOT)} (step {int(load_checkpoint(run / STATE_NAME, kind='train')['step'])})")
        print(f"{len(kept)} unfinished cycle(s) in {parked_root().relative_to(ROOT)}: commit it "
              "so that the next checkout resumes them")
        return 0
    os.chdir(ROOT)  # the default configs name ../shared relative to the repository
    if not (shared / "data" / "Train400").is_dir():
        print(f"error: {shared / 'data' / 'Train400'} not found (pass --shared)", file=sys.stderr)
        return 2
    try:
        return _run(args, shared)
    except Exception as e:  # noqa: BLE001 -- one line and the library's exit code, as `python -m hinas_lib`
        if os.environ.get("HINAS_DEBUG", "") not in ("", "0"):
            raise
        code, message = classify(e)
        print(f"error: {message}", file=sys.stderr)
        return code


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, as ``python -m hinas_lib``."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _hours(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of CPU-hours, got {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of CPU-hours, got {text}")
    return v




def _run(args, shared: Path) -> int:
    set_threads(args.threads)
    if args.command == "trunk":
        grow(TRUNK, args.hours, shared)
    elif args.command == "trial":
        if args.name not in RECIPES:
            print(f"error: unknown recipe {args.name!r}; known: {', '.join(RECIPES)}", file=sys.stderr)
            return 2
        grow(args.name, args.hours, shared)
    elif args.command == "branches":
        wanted = args.sigmas or [str(s) for s in SIGMAS] + ["blind"]
        if args.steps is not None and (args.steps <= 0 or args.steps % 250):
            print(f"error: --steps must be a positive multiple of 250, got {args.steps}", file=sys.stderr)
            return 2
        if args.ssim_weight is not None and args.ssim_weight < 0:
            print(f"error: --ssim-weight must be >= 0, got {args.ssim_weight}", file=sys.stderr)
            return 2
        for s in wanted:
            if s not in BRANCHES:
                print(f"error: unknown branch {s!r}; known: {', '.join(BRANCHES)}", file=sys.stderr)
                return 2
        try:
            restarts = None if args.restarts is None else tuple(parse_restart(r) for r in args.restarts)
            if restarts is None and (args.steps, args.ssim_weight) != (None, None):
                restarts = ()  # a first cycle of one's own choosing: no shipped entry's restarts after it
            for s in wanted:
                steps, w, r = BRANCHES[s]
                cycle_configs(trunk_config(TRUNK, shared), None, args.steps or steps, 0.0, r if restarts is None else restarts)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for s in wanted:
            steps, w, r = BRANCHES[s]
            branch(None if s == "blind" else float(s), shared, args.steps or steps,
                   w if args.ssim_weight is None else args.ssim_weight, r if restarts is None else restarts,
                   args.trunk or BRANCH_TRUNKS.get(s, TRUNK))
        if not args.no_page:
            plot_curves(ZOO / "curves.png", shared)
            zootools.write_results(header=zootools._header())
    elif args.command == "ensemble":
        for info in _entries():
            if args.name in (None, info["name"]):
                add_self_ensemble(info["name"], shared)
        zootools.write_results(header=zootools._header())
    elif args.command == "point":
        print(add_point(args.name or TRUNK, shared))
    elif args.command == "plot":
        print(f"wrote {plot_curves(ROOT / 'zoo' / 'curves.png', shared)}")
    else:
        for folder in sorted(BLIND.glob("*")):
            c = read_curve(folder)
            if c:
                print(f"{folder.name:14s} {c[-1]['cpu_h']:6.2f} CPU-h  step {c[-1]['step']:7d}  val PSNR "
                      + " / ".join(f"{c[-1][f'psnr{s}']:.2f}" for s in SIGMAS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
