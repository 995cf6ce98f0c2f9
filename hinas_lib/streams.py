"""Deterministic batch streams for search and training.

Sample ``i`` of a stream is drawn with a generator seeded by ``(seed, i)``, so
batch ``t`` is the same whatever the number of worker processes and whether
the run was interrupted and resumed: a resumed run starts the stream at the
step it stopped at and sees exactly the batches an uninterrupted run would.
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from . import data
from .config import Config


def _mix(seed: int, i: int) -> int:
    # splitmix-style integer hash: neighbouring indices get unrelated seeds
    z = (seed * 0x9E3779B97F4A7C15 + i * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & (2**64 - 1)
    z ^= z >> 31
    return z & (2**63 - 1)


class SeededSamples(Dataset):
    """Wraps a random-crop dataset: item ``i`` is ``base[i % len(base)]`` drawn
    under a private RNG state seeded from ``(seed, i)``."""

    def __init__(self, base: Dataset, seed: int):
        self.base, self.seed = base, seed

    def __len__(self):
        return 2**62

    def __getitem__(self, i: int):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_mix(self.seed, i))
            return self.base[i % len(self.base)]


class _RangeSampler(Sampler):
    def __init__(self, start: int, stop: int):
        self.start, self.stop = start, stop

    def __iter__(self):
        return iter(range(self.start, self.stop))

    def __len__(self):
        return self.stop - self.start


def batch_stream(base: Dataset, seed: int, batch_size: int, start_step: int, steps: int,
                 device: torch.device, num_workers: int = 0) -> Iterator:
    """Batches ``start_step .. start_step+steps-1`` of the stream."""
    ds = SeededSamples(base, seed)
    sampler = _RangeSampler(start_step * batch_size, (start_step + steps) * batch_size)
    loader = DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                        pin_memory=device.type == "cuda", drop_last=True,
                        persistent_workers=False)
    return iter(loader)


def fixed_batches(base: Dataset, seed: int, batch_size: int, n_batches: int) -> List:
    """A fixed list of batches (validation patches that are the same every epoch)."""
    return list(batch_stream(base, seed, batch_size, 0, n_batches, torch.device("cpu")))


# ---------------------------------------------------------------------------
# Which images a run uses
# ---------------------------------------------------------------------------

def image_split(cfg: Config) -> Tuple[List, List, List]:
    """(train, val, test) lists of (name, image array) for the config's data.

    Without ``data.train_dir`` this is the embedded scikit-image split (see
    :mod:`hinas_lib.data`). With it, validation is ``data.val_dir`` or a fixed
    ``val_fraction`` of the train folder, and test is ``data.test_dir`` (or the
    validation images when no test folder is given).
    """
    d, c = cfg.data, cfg.task.channels
    if d.train_dir is None:
        sp = data.embedded_split(cfg.task.task, c)
        train, val, test = sp["train"], sp["val"], sp["test"]
        if d.val_dir is not None:
            val = data.load_folder(d.val_dir, c)
    else:
        sp = data.folder_split(d.train_dir, d.val_dir, d.val_fraction, channels=c)
        train, val = sp["train"], sp["val"]
        test = val
    if d.test_dir is not None:
        test = data.load_folder(d.test_dir, c)
    return train, val, test


def patch_dataset(images: Sequence, cfg: Config, crop: int, augment: bool = True) -> Dataset:
    t = cfg.task
    names = [n for n, _ in images]
    arrays = [a for _, a in images]
    return data.PatchDataset(arrays, names, t.task, crop, sigmas=t.sigmas, sigma_range=t.sigma_range,
                             scale=t.scale, augment=augment, channels=t.channels)


def eval_dataset(images: Sequence, cfg: Config, sigma: Optional[float] = None) -> Dataset:
    t = cfg.task
    names = [n for n, _ in images]
    arrays = [a for _, a in images]
    return data.EvalDataset(arrays, names, t.task, sigma=t.eval_sigma if sigma is None else sigma,
                            scale=t.scale, channels=t.channels)


def stack_to_numpy(x: torch.Tensor) -> np.ndarray:
    """(C,H,W) tensor in [0,1] -> HxW or HxWxC numpy array."""
    a = x.detach().float().clamp(0, 1).cpu().numpy()
    return a[0] if a.shape[0] == 1 else np.transpose(a, (1, 2, 0))
