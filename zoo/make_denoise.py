#!/usr/bin/env python
"""Reproduce the grey denoising entries of the zoo: denoise-s30, denoise-s50, denoise-s70.

    python zoo/make_denoise.py [--shared ../shared] [--threads 2] [--work runs/zoo] [--sigmas 30 50 70]

1. Search once on Train400 (400 grey 180x180 BSD crops from ../shared/data) at sigma 30:
   the paper's denoising space (3 layers, widths 1/1.5/2, LWAS, cell sharing) with 3 blocks
   per cell and a short CPU schedule (SEARCH below).
2. Retrain the derived network from scratch at each sigma on all 400 images (TRAIN).
3. Evaluate on Set12 at that sigma: noisy input, scikit-image NLM, BM3D (``pip install bm3d``),
   ours; write zoo/denoise-s<sigma>/ and rewrite zoo/RESULTS.md.
Interrupted runs resume from --work. The whole script is deterministic for a given seed
and thread count.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "zoo")]

import zootools  # noqa: E402 (beside this script)
from hinas_lib.config import get_preset  # noqa: E402

# One place for the settings of this family (typed Config, from the tiny preset).
SEARCH = dict(space=dict(layers=3, blocks=3, filters=8),
              search=dict(epochs=8, warmup_epochs=2, steps_per_epoch=30, batch_size=6, crop=40, val_batches=4))
TRAIN = dict(filters=20, epochs=30, steps_per_epoch=200, batch_size=16, crop=40, lr=2e-3, lr_min=1e-5,
             val_every=5, train_on_val=True)


def configs(shared: str, sigmas):
    data = dict(train_dir=f"{shared}/data/Train400", test_dir=f"{shared}/data/Set12", val_fraction=0.1)
    base = get_preset("tiny", "denoise")
    search = base.replace(name="zoo-denoise-search", task=dict(sigmas=[30.0], eval_sigma=30.0), data=data, **SEARCH)
    trains = {f"denoise-s{s:g}": base.replace(name=f"zoo-denoise-s{s:g}",
                                              task=dict(sigmas=[float(s)], eval_sigma=float(s)),
                                              space=SEARCH["space"], data=data, train=TRAIN)
              for s in sigmas}
    return search, trains


def main(argv=None) -> int:
    return zootools.family_main(argv, description=__doc__.split("\n")[0], configs=configs, level="sigmas",
                           level_type=float, levels=[30, 50, 70], needs=["data/Train400", "data/Set12"],
                           test_sets={"Set12": "data/Set12"}, data_note="Train400 (400 grey BSD crops)",
                           script="zoo/make_denoise.py", bm3d=True)


if __name__ == "__main__":
    sys.exit(main())
