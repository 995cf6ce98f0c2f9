#!/usr/bin/env python
"""BSDS500 -> a denoising split, as PNG (grey by default, ``--channels 3`` for RGB).

    python data_scripts/prepare_bsd500.py --src ~/Downloads/BSR_bsds500.tgz [--split authors|bsd68]

* ``--split authors`` (default), the HiNAS authors' (their ``BSD500_300`` / ``BSD500_200``):
  300 training images (BSDS500 train 200 + val 100) and the 200 test images (BSD200) to test on.
* ``--split bsd68``, DnCNN's: BSDS500 train + test (400) to train, nothing to test: test on
  BSD68 (``prepare_testsets.py``). BSD68 is 68 of BSDS500's **val** images, so a model trained on
  the authors' split must not be scored on BSD68 (``hinas_lib eval`` warns when it is).

Writes ``<out>/train/*.png`` and, for the authors' split, ``<out>/test/*.png`` (``--out``
defaults to ``data/BSD500``). ``--src`` may be the archive or its unpacked folder.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from _common import (EXIT_OK, SourceTree, default_out, default_src, find_images,
                     protect_output, report_missing, save_png)

ARCHIVE = "BSR_bsds500.tgz"
SOURCES = (
    "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/resources.html "
    "(BSDS500 page)",
    "http://www.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/BSR/BSR_bsds500.tgz",
)
EXPECTED = {"train": 200, "val": 100, "test": 200}
# BSDS500 folder -> output folder (None: not written)
SPLITS = {"authors": {"train": "train", "val": "train", "test": "test"},
          "bsd68": {"train": "train", "val": None, "test": "train"}}


def find_images_dir(root: Path) -> Optional[Path]:
    """The ``images`` folder holding train/val/test (``BSR/BSDS500/data/images`` in the archive)."""
    candidates = [root] + sorted(p for p in root.rglob("images") if p.is_dir())
    for c in candidates:
        if all((c / split).is_dir() for split in EXPECTED):
            return c
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, default=default_src(ARCHIVE), help=f"{ARCHIVE} or its unpacked folder")
    ap.add_argument("--out", type=Path, default=default_out("BSD500"))
    ap.add_argument("--channels", type=int, choices=(1, 3), default=1, help="1 grey (default), 3 RGB")
    ap.add_argument("--split", choices=sorted(SPLITS), default="authors",
                    help="authors: train+val to train, test to test (then test on data/BSD500/test); "
                         "bsd68: train+test to train, val left out (then test on BSD68)")
    args = ap.parse_args(argv)

    if not args.src.exists():
        return report_missing(args.src, f"BSDS500 ({ARCHIVE})", SOURCES)
    with SourceTree(args.src) as root:
        images = find_images_dir(root)
        if images is None:
            print(f"error: no images/train, images/val, images/test folders inside {args.src}", file=sys.stderr)
            return report_missing(args.src, "the BSDS500 image folders", SOURCES)
        protect_output(args.out)
        counts = {}
        written = {"train": 0, "test": 0}
        for split, dest in SPLITS[args.split].items():
            files = find_images(images / split)
            counts[split] = len(files)
            if dest is None:
                continue
            for f in files:
                save_png(f, args.out / dest / f"{f.stem}.png", args.channels)
            written[dest] += len(files)
    for split, n in counts.items():
        if n != EXPECTED[split]:
            print(f"warning: {split} has {n} images, BSDS500 has {EXPECTED[split]}", file=sys.stderr)
    if args.split == "authors":
        print(f"wrote {written['train']} train and {written['test']} test images to {args.out} (the authors' split: "
              f"test on {args.out / 'test'}; not on BSD68, which is 68 of the val images trained on here)")
    else:
        print(f"wrote {written['train']} train images to {args.out} (BSDS500 train + test; val, which holds "
              "BSD68, left out: test on BSD68)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
