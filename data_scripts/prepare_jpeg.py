#!/usr/bin/env python
"""A JPEG deblocking test set: clean PNGs plus their JPEG files at each quality, as paired data.

    python data_scripts/prepare_jpeg.py --src ../shared/data/LIVE1 [--name LIVE1] \\
        [--qualities 10 20 30 40] [--channels 1]

Writes ``<out>/*.png`` (the clean images; grey = BT.601 luma by default, ``--channels 3``
keeps RGB) and ``<out>/JPEG_q<Q>/<name>.jpg`` (each clean PNG saved as baseline JPEG by
Pillow at quality Q: the same bytes the ``jpeg`` task's degradation makes, so an evaluation
on the pairs equals one on the clean folder alone). ``--out`` defaults to
``data/<name>-grey`` (``data/<name>`` for RGB). LIVE1 (29 photographs) and Classic5 are the
usual test sets; ``../shared/data/LIVE1`` holds LIVE1.

    python -m hinas_lib eval --model runs/jpeg/model.pt --data data/LIVE1-grey \\
        --lq-data data/LIVE1-grey/JPEG_q10 --quality 10
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from PIL import Image

from _common import EXIT_MISSING, EXIT_OK, default_out, find_images, protect_output, report_missing, save_png

SOURCES = (
    "LIVE1 (the LIVE image quality database's 29 reference images): "
    "https://live.ece.utexas.edu/research/quality/subjective.htm",
    "Classic5 / LIVE1 as used by ARCNN and DnCNN: https://github.com/cszn/DnCNN/tree/master/testsets",
)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, required=True, help="a folder of clean images (e.g. ../shared/data/LIVE1)")
    ap.add_argument("--name", default=None, help="the set's name (default: --src's folder name)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--qualities", type=int, nargs="+", default=[10, 20, 30, 40])
    ap.add_argument("--channels", type=int, choices=(1, 3), default=1, help="1 grey (default), 3 RGB")
    args = ap.parse_args(argv)
    bad = [q for q in args.qualities if not 1 <= q <= 100]
    if bad:
        ap.error(f"--qualities: a JPEG quality is 1..100, got {bad[0]}")

    if not args.src.is_dir():
        return report_missing(args.src, "the clean images", SOURCES)
    files = find_images(args.src)
    if not files:
        print(f"error: no images in {args.src}", file=sys.stderr)
        return EXIT_MISSING
    name = args.name or args.src.name
    out = args.out or default_out(f"{name}-grey" if args.channels == 1 else name)
    protect_output(out)
    for f in files:
        clean = out / f"{f.stem}.png"
        save_png(f, clean, args.channels)
        with Image.open(clean) as im:
            im.load()
            for q in args.qualities:
                dst = out / f"JPEG_q{q}" / f"{f.stem}.jpg"
                dst.parent.mkdir(parents=True, exist_ok=True)
                tmp = dst.with_name(dst.name + ".part")
                im.save(tmp, format="JPEG", quality=q)  # Pillow's defaults, as hinas_lib.tasks.jpeg
                tmp.replace(dst)
    print(f"wrote {len(files)} clean images to {out} and their JPEG files at quality "
          f"{', '.join(map(str, args.qualities))} to {out}/JPEG_q<Q>/")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
