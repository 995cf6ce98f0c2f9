"""The main job: search -> derive -> render -> retrain -> evaluate, on one config.

On the embedded scikit-image photographs and the ``tiny`` preset this runs in
minutes on a laptop CPU and prints a table of PSNR/SSIM for the degraded
input, the classical baseline and the retrained HiNAS network.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Dict, Optional

from . import data, plots, splits
from .checkpoint import atomic_write_text
from .config import Config
from .evaluate import evaluate, format_table
from .runfiles import FIGURES_DIR, MODEL_FILE
from .search import Searcher
from .tasks import get_task
from .train import Trainer


def _say_resumed(run, what: str, steps_per_epoch: int, out: Path) -> None:
    """A rerun after Ctrl-C goes on from the checkpoint: say so, so that it is not mistaken for a fresh run."""
    if run.step:
        done = " (already finished)" if run.step >= run.total_steps else ""
        print(f"      resumed the {what} at step {run.step}/{run.total_steps} (epoch "
              f"{min(run.step // steps_per_epoch + 1, run.total_steps // steps_per_epoch)} of "
              f"{run.total_steps // steps_per_epoch}) from {run.out}{done}; delete {out} to start over")


def run_demo(cfg: Config, out: Path, *, device: Optional[str] = None, progress: bool = True) -> Dict:
    """Search, derive, render, retrain and evaluate ``cfg`` into ``out``; returns the evaluation."""
    out = Path(out)
    t0 = time.time()
    print(f"[1/4] search ({cfg.name}, {cfg.task.task}) -> {out / 'search'}")
    sr = Searcher(cfg, out / "search", device=device, progress=progress, resume="auto",
                  write_figures=plots.write_search_figures)
    _say_resumed(sr, "search", cfg.search.steps_per_epoch, out)
    res = sr.run()
    print(res.genotype)
    t_search = time.time() - t0

    print(f"[2/4] derived cells rendered to {out / 'search' / FIGURES_DIR}")
    print(f"[3/4] retrain the derived network from scratch -> {out / 'train'}")
    t1 = time.time()
    tr = Trainer(cfg, res.genotype, out / "train", device=device, progress=progress, resume="auto")
    _say_resumed(tr, "retraining", cfg.train.steps_per_epoch, out)
    trained = tr.run()
    t_train = time.time() - t1

    print("[4/4] evaluate on the held-out test images")
    t2 = time.time()
    test = splits.image_split(cfg)[2]
    ev = evaluate(trained.net, cfg, test, progress=progress, keep_images=True)
    t_eval = time.time() - t2
    kept = ev.pop("restored")
    shown = [k for k in ("input", "baseline", "ours", "target") if k in kept[0]]
    titles = {"input": "degraded", "baseline": ev["baseline"], "ours": "HiNAS (ours)", "target": "clean"}
    fig = plots.image_grid([data.to_numpy(kept[0][k]) for k in shown], [titles[k] for k in shown])
    (out / FIGURES_DIR).mkdir(parents=True, exist_ok=True)
    fig.savefig(out / FIGURES_DIR / "comparison.png", dpi=100)

    ev["timings_s"] = {"search": t_search, "train": t_train, "eval": t_eval, "total": time.time() - t0}
    ev["genotype"] = res.genotype.to_dict()
    atomic_write_text(out / "results.json", json.dumps(ev, indent=1))
    table = format_table(ev)
    atomic_write_text(out / "results.md", "```\n" + table + "\n```\n")
    what = get_task(cfg).describe_level(ev[ev["level_name"]])
    print(f"\nResults on the held-out test images ({what}, {ev['metric']}):\n{table}")
    print(f"\ntimes: search {t_search:.0f}s, retrain {t_train:.0f}s, eval {t_eval:.0f}s")
    print(f"figures: {out / 'search' / FIGURES_DIR} (cells, alpha, beta, losses), "
          f"{out / FIGURES_DIR / 'comparison.png'}")
    print(f"model: {out / 'train' / MODEL_FILE}   table: {out / 'results.md'}")
    return ev
