#!/usr/bin/env python
"""Benchmark test sets -> ``<out>/<Set>/*.png`` (one flat folder of HR / clean images).

    python data_scripts/prepare_testsets.py --src ~/Downloads/benchmarks \\
        [--sets Set5 Set14] [--sha256sums ../shared/data/SHA256SUMS]

``--src`` is a folder (or one archive) holding the sets as folders or archives
named after them (``Set5/``, ``Set5.zip``, ``BSD100.tar.gz``, ...), or bundles
such as EDSR's ``benchmark.tar``. Inside a set, the HR images are taken from an
``HR`` subfolder when there is one, else from the set folder itself, else from
``*_HR.*`` files (Huang et al.'s layout). MATLAB-bicubic LR files found in
``LR_bicubic/X<s>`` are copied to ``<out>/<Set>/LR_bicubic/X<s>/`` for checks.
With ``--sha256sums`` every source file listed there is verified first (exit 1
on a mismatch). Sets missing from ``--src`` are skipped with a note; exit 2 when
none is found or one named in ``--sets`` is missing.
"""
from __future__ import annotations

import argparse
import re
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from _common import (EXIT_CHECKSUM, EXIT_MISSING, EXIT_OK, Checksums, SourceTree, archive_stem,
                     default_out, default_src, find_images, is_archive, protect_output,
                     report_missing, save_png)

# Canonical name -> lower-case folder/archive names it goes by.
ALIASES: Dict[str, Tuple[str, ...]] = {
    "Set5": ("set5",),
    "Set14": ("set14",),
    "B100": ("b100", "bsd100", "bsds100"),
    "Urban100": ("urban100",),
    "Manga109": ("manga109",),
    "BSD68": ("bsd68",),
    "Set12": ("set12",),
}
# Archives worth unpacking although not named after one set.
BUNDLE_WORDS = ("benchmark", "testset", "test_set", "testing")
SOURCES = (
    "Set5, Set14, B100, Urban100, Manga109 (HR + MATLAB bicubic LR): "
    "https://cv.snu.ac.kr/research/EDSR/benchmark.tar (EDSR benchmark bundle)",
    "SwinIR test sets: see 'testsets' in https://github.com/JingyunLiang/SwinIR",
    "Set12, BSD68: https://github.com/cszn/DnCNN/tree/master/testsets",
    "Urban100 / B100 originals: https://github.com/jbhuang0604/SelfExSR",
    "Manga109 (by request, academic use): http://www.manga109.org/en/",
)
_LR_DIR = re.compile(r"^x(\d+)$", re.IGNORECASE)


def canonical(name: str) -> Optional[str]:
    low = name.lower()
    return next((k for k, names in ALIASES.items() if low in names), None)


def unpack_archives(root: Path, stack: ExitStack) -> List[Path]:
    """Search roots: ``root`` plus unpacked archives in it named after a set or a bundle."""
    roots = [root]
    for a in sorted(p for p in root.rglob("*") if is_archive(p)):
        stem = archive_stem(a).lower()
        if canonical(stem) or any(w in stem for w in BUNDLE_WORDS):
            roots.append(stack.enter_context(SourceTree(a)))
    return roots


def find_set_dirs(roots: Sequence[Path]) -> Dict[str, Path]:
    """First (shallowest) folder per canonical set name across the search roots."""
    found: Dict[str, Path] = {}
    for root in roots:
        dirs = sorted((p for p in [root, *root.rglob("*")] if p.is_dir()), key=lambda p: (len(p.parts), str(p)))
        for d in dirs:
            name = canonical(d.name)
            if name and name not in found:
                found[name] = d
    return found


def _subdir(folder: Path, name: str) -> Optional[Path]:
    return next((p for p in sorted(folder.iterdir()) if p.is_dir() and p.name.lower() == name.lower()), None)


def hr_images(set_dir: Path) -> List[Tuple[str, Path]]:
    """(output stem, file) for the set's HR images."""
    hr = _subdir(set_dir, "HR")
    if hr is not None:
        return [(f.stem, f) for f in find_images(hr)]
    flat = find_images(set_dir)
    if flat:
        return [(f.stem, f) for f in flat]
    # Huang et al.: image_SRF_<s>/img_001_SRF_<s>_HR.png; keep the first of each image.
    out: Dict[str, Path] = {}
    for f in find_images(set_dir, recursive=True):
        m = re.match(r"^(.*?)(_SRF_\d+)?_HR$", f.stem)
        if m and m.group(1) not in out:
            out[m.group(1)] = f
    return sorted(out.items())


def lr_images(set_dir: Path) -> List[Tuple[str, Path]]:
    """(relative output path without suffix, file) for ``LR_bicubic/X<s>`` files."""
    lr = _subdir(set_dir, "LR_bicubic")
    if lr is None:
        return []
    out = []
    for d in sorted(p for p in lr.iterdir() if p.is_dir() and _LR_DIR.match(p.name)):
        out += [(f"LR_bicubic/X{_LR_DIR.match(d.name).group(1)}/{f.stem}", f) for f in find_images(d)]
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, default=default_src(""),
                    help="folder (or archive) with the test sets; default downloads/")
    ap.add_argument("--out", type=Path, default=default_out(""), help="sets go to <out>/<Set>/; default data/")
    ap.add_argument("--sets", nargs="+", default=None, metavar="SET",
                    help=f"subset of {', '.join(ALIASES)} (aliases such as BSD100 accepted)")
    ap.add_argument("--sha256sums", type=Path, default=None,
                    help="'<sha256>  <path>' list; listed source files are verified")
    ap.add_argument("--channels", type=int, choices=(1, 3), default=None,
                    help="1 grey, 3 RGB; default keeps each image as it is")
    args = ap.parse_args(argv)

    wanted = list(ALIASES) if args.sets is None else []
    for s in args.sets or []:
        c = canonical(s)
        if c is None:
            ap.error(f"unknown set {s!r}; choose from {', '.join(ALIASES)}")
        wanted.append(c)
    if not args.src.exists():
        return report_missing(args.src, "the test-set folder or archive", SOURCES)
    if args.sha256sums is not None and not args.sha256sums.is_file():
        print(f"error: checksum list {args.sha256sums} not found", file=sys.stderr)
        return EXIT_MISSING
    sums = Checksums.from_file(args.sha256sums) if args.sha256sums else None

    with ExitStack() as stack:
        root = stack.enter_context(SourceTree(args.src))
        found = find_set_dirs(unpack_archives(root, stack))
        plan = {name: hr_images(found[name]) + lr_images(found[name]) for name in wanted if name in found}
        plan = {k: v for k, v in plan.items() if v}
        missing = [n for n in wanted if n not in plan]
        if not plan:
            return report_missing(args.src, f"any of {', '.join(wanted)}", SOURCES)
        if sums is not None:
            ok, unlisted, bad = sums.verify(f for files in plan.values() for _, f in files)
            if bad:
                print("error: SHA256 mismatch for:\n  " + "\n  ".join(bad), file=sys.stderr)
                return EXIT_CHECKSUM
            print(f"verified {ok} files against {args.sha256sums} ({unlisted} not listed)")
        for name, files in plan.items():
            protect_output(args.out / name)
            for rel, f in files:
                save_png(f, args.out / name / f"{rel}.png", args.channels)
            n_hr = sum(1 for rel, _ in files if not rel.startswith("LR_bicubic/"))
            print(f"{name}: {n_hr} images (+{len(files) - n_hr} LR) -> {args.out / name}")
    if missing and args.sets is not None:
        return report_missing(args.src, ", ".join(missing), SOURCES)
    if missing:
        print(f"note: not found in {args.src}, skipped: {', '.join(missing)}", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
