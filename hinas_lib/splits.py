"""Which images a run uses: the search's two halves (weights, architecture), the
held-out images and the test images, from the embedded pictures or from folders.

The embedded split is fixed (:data:`hinas_lib.data.EMBEDDED_IMAGES`, where each
picture's role is explained), so every run and every machine searches, validates
and tests on the same pictures. Reading the images is :mod:`hinas_lib.data`'s.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np

from .data import EMBEDDED_IMAGES, ImageError, NamedImages, load_embedded, load_folder


def embedded_split(channels: int) -> Dict[str, NamedImages]:
    """The fixed embedded split as ``{'train', 'val', 'test'}`` lists of (name, image).

    The same pictures serve every task.
    """
    keys = {"train": "search_train", "val": "search_val", "test": "test"}
    return {k: [(n, load_embedded(n, channels)) for n in EMBEDDED_IMAGES[src]] for k, src in keys.items()}


def folder_split(train_dir: Union[str, Path], val_dir: Optional[Union[str, Path]] = None,
                 val_fraction: float = 0.2, *, holdout_fraction: float = 0.0, channels: int = 1, seed: int = 0,
                 recursive: bool = False) -> Dict[str, NamedImages]:
    """``{'train', 'val', 'holdout'}`` from folders.

    Without ``val_dir``, a seeded random ``holdout_fraction`` of ``train_dir`` is
    held out first (none by default), then ``val_fraction`` of the rest (at least
    one image each side). The authors split their 300 BSD images 2% held out,
    the rest half and half between the search's weight and architecture steps.
    """
    train = load_folder(train_dir, channels, recursive)
    if val_dir is not None:
        return {"train": train, "val": load_folder(val_dir, channels, recursive), "holdout": []}
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_hold = max(1, round(len(train) * holdout_fraction)) if holdout_fraction > 0 else 0
    if len(train) - n_hold < 2:
        raise ImageError(f"image folder {train_dir} has {len(train)} image(s); need {n_hold + 2} to split off "
                         "validation" + (" and the held-out images" if n_hold else ""))
    order = np.random.default_rng(seed).permutation(len(train))
    hold, rest = order[:n_hold].tolist(), order[n_hold:]
    n_val = min(len(rest) - 1, max(1, round(len(rest) * val_fraction)))
    val_idx = set(rest[:n_val].tolist())
    return {"train": [x for i, x in enumerate(train) if i not in val_idx and i not in hold],
            "val": [x for i, x in enumerate(train) if i in val_idx],
            "holdout": [train[i] for i in sorted(hold)]}


def split_images(cfg) -> Dict[str, NamedImages]:
    """The images of a run: ``{'train', 'val', 'holdout', 'test'}`` lists of (name, image).

    * train / val: the search's weight and architecture halves (retraining uses both);
    * holdout: images in neither half, to select the search's epoch and to
      validate retraining (``data.holdout_fraction``; empty by default: then val does it);
    * test: ``data.test_dir``, else the held-out or validation images.

    Without ``data.train_dir`` this is the embedded scikit-image split. Images
    have ``cfg.task.channels`` channels.
    """
    d, c = cfg.data, cfg.task.channels
    if d.train_dir is None:
        sp = embedded_split(c)
        sp["holdout"] = []
        if d.val_dir is not None:
            sp["val"] = load_folder(d.val_dir, c)
    else:
        sp = folder_split(d.train_dir, d.val_dir, d.val_fraction, holdout_fraction=d.holdout_fraction, channels=c)
        sp["test"] = sp["holdout"] or sp["val"]
    if d.test_dir is not None:
        sp["test"] = load_folder(d.test_dir, c)
    return sp


def image_split(cfg) -> Tuple[NamedImages, NamedImages, NamedImages]:
    """(train, val, test) of :func:`split_images`."""
    sp = split_images(cfg)
    return sp["train"], sp["val"], sp["test"]


__all__ = ["embedded_split", "folder_split", "split_images", "image_split"]
