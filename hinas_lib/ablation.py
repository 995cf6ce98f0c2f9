"""Ablations: the same short search under several space variants, and what each one
costs and finds (:func:`run_ablation`); the networks they found, retrained over a few seeds
and compared with the seed-to-seed spread as the yardstick (:func:`retrain_ablation`,
:func:`compare_retrained`)."""
from __future__ import annotations

import time
from typing import Dict, List, Mapping, Optional, Sequence

from .config import Config
from .evaluate import evaluate
from .fastmode import fast_mode
from .profiling import measure_search_step
from .search import Searcher
from .train import Trainer


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


def retrain_ablation(cfg: Config, rows: Sequence[Mapping], variants: Sequence[str], images: Sequence, *,
                     seeds: Sequence[int] = (0, 1), val_size: int = 256, bm3d: bool = False) -> List[Dict]:
    """Retrain the genotype each named variant of ``rows`` (from :func:`run_ablation`) found,
    once per seed (``train.seed``: initialisation and patches), and evaluate it on ``images``.

    Returns one row per (variant, seed): ``variant``, ``seed``, ``params``, ``psnr``, ``ssim``
    (the network's mean over the images) and ``eval`` (the whole result of
    :func:`~hinas_lib.evaluate.evaluate`, with the baselines; ``bm3d`` adds BM3D for denoising).
    """
    by_name = {r["variant"]: r for r in rows}
    missing = [v for v in variants if v not in by_name]
    if missing:
        raise ValueError(f"variants {missing} are not in the ablation's rows {sorted(by_name)}")
    out = []
    for name in variants:
        for seed in seeds:
            c = cfg.replace(train={"seed": int(seed)})
            trained = Trainer(c, by_name[name]["genotype"], progress=False, val_size=val_size).run()
            res = evaluate(trained.net, c, images, progress=False, bm3d=bm3d)
            out.append({"variant": name, "seed": int(seed), "params": trained.net.num_params(),
                        "psnr": res["mean"]["ours_psnr"], "ssim": res["mean"]["ours_ssim"], "eval": res})
    return out


def compare_retrained(runs: Sequence[Mapping], a: str, b: str) -> Dict:
    """``b`` against ``a`` in :func:`retrain_ablation`'s rows: each one's mean PSNR over seeds,
    the difference ``b - a``, the noise (the largest spread max - min between the seeds of one
    variant) and the verdict: ``"within noise"`` unless the difference exceeds the noise
    (then ``"<b> better"`` or ``"<a> better"``). With one seed each there is no noise
    estimate and the verdict says so."""
    psnr: Dict[str, List[float]] = {a: [], b: []}
    for r in runs:
        if r["variant"] in psnr:
            psnr[r["variant"]].append(float(r["psnr"]))
    if not psnr[a] or not psnr[b]:
        raise ValueError(f"no runs of {a!r} or {b!r}")
    mean = {k: sum(v) / len(v) for k, v in psnr.items()}
    diff = mean[b] - mean[a]
    if min(len(psnr[a]), len(psnr[b])) < 2:
        noise: Optional[float] = None
        verdict = "no noise estimate (one seed)"
    else:
        noise = max(max(v) - min(v) for v in psnr.values())
        verdict = "within noise" if abs(diff) <= noise else (f"{b} better" if diff > 0 else f"{a} better")
    return {"a": a, "b": b, "mean_a": mean[a], "mean_b": mean[b], "diff": diff, "noise": noise,
            "seeds": min(len(psnr[a]), len(psnr[b])), "verdict": verdict}


__all__ = ["run_ablation", "retrain_ablation", "compare_retrained"]
