"""Test images that are also training images: the check behind a test score.

BSD68 is 68 of BSDS500's 100 *val* images, which the authors' split (300 = train + val to
train, 200 = test to test) trains on: whoever trains that way and reports BSD68 reports
training images. Files are renamed and re-encoded between sources (``test001.png`` against
``3096.jpg``; MATLAB's grey against Pillow's), so images are compared by content: each is
reduced to a 16x16 thumbnail of its normalised grey levels, in both orientations, and two
images of the same size whose thumbnails differ by under ``tol`` (RMS, in standard
deviations) are the same photograph.
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

THUMB = 16


def _grey(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a.mean(axis=2) if a.ndim == 3 else a


def thumbnail(a: np.ndarray) -> np.ndarray:
    """A 16x16 block average of the grey image, zero mean and unit standard deviation."""
    g = _grey(a)
    h, w = g.shape
    ys = np.linspace(0, h, THUMB + 1).astype(int)
    xs = np.linspace(0, w, THUMB + 1).astype(int)
    t = np.array([[g[ys[i]:max(ys[i + 1], ys[i] + 1), xs[j]:max(xs[j + 1], xs[j] + 1)].mean()
                   for j in range(THUMB)] for i in range(THUMB)])
    return (t - t.mean()) / (t.std() + 1e-8)


def find_overlap(test: Sequence[Tuple[str, np.ndarray]], train: Sequence[Tuple[str, np.ndarray]],
                 tol: float = 0.1) -> List[Tuple[str, str]]:
    """``(test name, train name)`` of every test image that is also in ``train`` (same shape,
    either orientation, thumbnails closer than ``tol``)."""
    index = {}
    for name, a in train:
        index.setdefault(tuple(sorted(_grey(a).shape)), []).append((name, thumbnail(a)))
    pairs = []
    for name, a in test:
        g = _grey(a)
        cands = index.get(tuple(sorted(g.shape)), [])
        if not cands:
            continue
        views = [thumbnail(g), thumbnail(g.T)]
        for tname, t in cands:
            if any(v.shape == t.shape and np.sqrt(np.mean((v - t) ** 2)) < tol for v in views):
                pairs.append((name, tname))
                break
    return pairs


def overlap_warning(test_dir, pairs: Sequence[Tuple[str, str]], n_test: int, train_dir) -> str:
    eg = ", ".join(f"{a} = {b}" for a, b in pairs[:3])
    return (f"warning: {len(pairs)} of the {n_test} images in {test_dir} are also in the model's training "
            f"folder {train_dir} (e.g. {eg}): these are not test scores")


__all__ = ["find_overlap", "overlap_warning", "thumbnail"]
