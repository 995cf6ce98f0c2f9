#!/usr/bin/env python
"""DIV2K -> 800 training HR PNGs (and optionally the 100 validation HR PNGs).

    python data_scripts/prepare_div2k.py --src ~/Downloads/DIV2K_train_HR.zip \\
        [--valid ~/Downloads/DIV2K_valid_HR.zip]

Writes ``<out>/train/*.png`` and ``<out>/valid/*.png`` (``--out`` defaults
to ``data/DIV2K``), the same ``train`` layout as ``prepare_bsd500.py``, so that
``--set data.train_dir=data/DIV2K/train`` reads it. PNGs are copied byte for
byte unless ``--channels 1``.
Low-resolution inputs are not needed: the library makes them with its
MATLAB-compatible bicubic (``hinas_lib.degrade``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from _common import (EXIT_OK, SourceTree, default_out, default_src, find_images,
                     protect_output, report_missing, save_png)

SOURCES = (
    "https://data.vision.ee.ethz.ch/cvl/DIV2K/ (DIV2K page)",
    "http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip",
    "http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip",
)


def copy_split(src: Path, dest: Path, channels: Optional[int], expected: int, label: str) -> int:
    """Copy every image of an archive/folder (searched recursively) to ``dest``; return the count."""
    with SourceTree(src) as root:
        files = find_images(root, recursive=True)
        for f in files:
            save_png(f, dest / f"{f.stem}.png", channels)
    if len(files) != expected:
        print(f"warning: {label} has {len(files)} images, DIV2K has {expected}", file=sys.stderr)
    return len(files)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, default=default_src("DIV2K_train_HR.zip"),
                    help="DIV2K_train_HR.zip or its unpacked folder")
    ap.add_argument("--valid", type=Path, default=None, help="optional DIV2K_valid_HR.zip or folder")
    ap.add_argument("--out", type=Path, default=default_out("DIV2K"))
    ap.add_argument("--channels", type=int, choices=(1, 3), default=None,
                    help="1 grey, 3 RGB; default keeps the files as they are")
    args = ap.parse_args(argv)

    for path, what in ((args.src, "DIV2K training HR (DIV2K_train_HR.zip)"),
                       (args.valid, "DIV2K validation HR (DIV2K_valid_HR.zip)")):
        if path is not None and not path.exists():
            return report_missing(path, what, SOURCES)
    protect_output(args.out)
    n_train = copy_split(args.src, args.out / "train", args.channels, 800, "the training set")
    if n_train == 0:
        return report_missing(args.src, "any image inside the DIV2K training source", SOURCES)
    msg = f"wrote {n_train} training images to {args.out / 'train'}"
    if args.valid is not None:
        n_valid = copy_split(args.valid, args.out / "valid", args.channels, 100, "the validation set")
        msg += f" and {n_valid} validation images to {args.out / 'valid'}"
    print(msg)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
