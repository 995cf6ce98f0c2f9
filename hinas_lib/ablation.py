"""Ablations: the same short search under several space variants, and what each one
costs and finds."""
from __future__ import annotations

import time
from typing import Dict, List, Mapping

from .config import Config
from .fastmode import fast_mode
from .profiling import measure_search_step
from .search import Searcher


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


__all__ = ["run_ablation"]
