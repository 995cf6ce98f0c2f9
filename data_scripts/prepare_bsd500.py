#!/usr/bin/env python
"""BSDS500 -> the HiNAS denoising split: 300 training images (BSDS500 train 200 +
val 100) and the 200 test images, as PNG (grey by default, ``--channels 3`` for RGB).

    python data_scripts/prepare_bsd500.py --src ~/Downloads/BSR_bsds500.tgz

Writes ``<out>/train/*.png`` and ``<out>/test/*.png`` (``--out`` defaults to
``data/BSD500``). ``--src`` may be the archive or its unpacked folder.
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
        # Paper split: train+val (300) to train, test (200) to test.
        for split, dest in (("train", "train"), ("val", "train"), ("test", "test")):
            files = find_images(images / split)
            counts[split] = len(files)
            for f in files:
                save_png(f, args.out / dest / f"{f.stem}.png", args.channels)
    for split, n in counts.items():
        if n != EXPECTED[split]:
            print(f"warning: {split} has {n} images, BSDS500 has {EXPECTED[split]}", file=sys.stderr)
    print(f"wrote {counts['train'] + counts['val']} train and {counts['test']} test images to {args.out}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
