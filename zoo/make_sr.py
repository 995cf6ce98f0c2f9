#!/usr/bin/env python
"""Reproduce the super-resolution entries of the zoo: sr-x2, sr-x3, sr-x4 (RGB).

    python zoo/make_sr.py [--shared ../shared] [--threads 2] [--work runs/zoo] [--scales 2 3 4]

1. Search once at x2 on LIVE1 (29 RGB photographs, about 480x720, from ../shared/data):
   the paper's SR space (2 layers, 3 blocks, widths 1/1.5/2, LWAS, cell sharing) with a
   short CPU schedule (SEARCH below). The cells do not depend on the scale; only the
   pixel-shuffle head does, so one search serves all three scales.
2. Retrain the derived network from scratch at each scale on all 29 images (TRAIN), with
   LR inputs made by the MATLAB-exact bicubic downscaler.
3. Evaluate on Set5 and Set14 (PSNR/SSIM on Y, shave = scale) against bicubic; write
   zoo/sr-x<scale>/ and rewrite zoo/RESULTS.md.
Interrupted runs resume from --work.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "zoo")]

import zootools  # noqa: E402 (beside this script)
from hinas_lib.config import get_preset  # noqa: E402

SEARCH = dict(space=dict(layers=2, blocks=3, filters=8),
              search=dict(epochs=10, warmup_epochs=3, steps_per_epoch=30, batch_size=8, crop=24, val_batches=4))
TRAIN = dict(filters=16, epochs=40, steps_per_epoch=200, batch_size=16, crop=32, lr=2e-3, lr_min=1e-5,
             val_every=5, train_on_val=True)


def configs(shared: str, scales):
    data = dict(train_dir=f"{shared}/data/LIVE1", val_fraction=0.2)
    search = get_preset("tiny", "sr", 2).replace(name="zoo-sr-search", data=data, **SEARCH)
    trains = {f"sr-x{s}": get_preset("tiny", "sr", s).replace(name=f"zoo-sr-x{s}", space=SEARCH["space"],
                                                              data=data, train=TRAIN)
              for s in scales}
    return search, trains


def main(argv=None) -> int:
    return zootools.family_main(argv, description=__doc__.split("\n")[0], configs=configs, level="scales",
                           level_type=int, levels=[2, 3, 4], needs=["data/LIVE1", "data/Set5/HR", "data/Set14"],
                           test_sets={"Set5": "data/Set5/HR", "Set14": "data/Set14"}, data_note="LIVE1 (29 RGB photographs)",
                           script="zoo/make_sr.py")


if __name__ == "__main__":
    sys.exit(main())
