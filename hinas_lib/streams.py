"""Deterministic batch streams for search and training.

Sample ``i`` of a stream is drawn with a generator seeded by ``(seed, i)``, and
global batch ``t`` is samples ``t*B .. t*B+B-1``. So batch ``t`` is the same
whatever the number of worker processes, whether the run was interrupted and
resumed (a resumed run starts the stream at the step it stopped at), and
however many ranks share it: rank ``r`` of ``W`` takes the contiguous slice
``r*B/W .. (r+1)*B/W - 1`` of every global batch, so the ranks' slices put
together are exactly the single-process batch.
"""
from __future__ import annotations

from typing import Iterator, List

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


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


class ShardSampler(Sampler):
    """Sample indices of rank ``rank``'s slice of global batches ``start .. start+steps-1``."""

    def __init__(self, start_step: int, steps: int, global_batch: int, rank: int = 0, world_size: int = 1):
        if global_batch % world_size:
            raise ValueError(f"batch {global_batch} does not split evenly over {world_size} processes")
        self.start, self.steps, self.B = start_step, steps, global_batch
        self.b = global_batch // world_size
        self.offset = rank * self.b

    def __iter__(self):
        for t in range(self.start, self.start + self.steps):
            first = t * self.B + self.offset
            yield from range(first, first + self.b)

    def __len__(self):
        return self.steps * self.b


def batch_stream(base: Dataset, seed: int, batch_size: int, start_step: int, steps: int,
                 device: torch.device, num_workers: int = 0, *, rank: int = 0, world_size: int = 1) -> Iterator:
    """Batches ``start_step .. start_step+steps-1`` of the stream (this rank's slice of each).

    Args:
        base: a dataset of random pairs (e.g. :class:`~hinas_lib.datasets.PatchDataset`).
        seed: the stream's seed; the same seed gives the same batches.
        batch_size: the *global* batch.
        start_step, steps: which batches.
        device: pins memory when it is a GPU.
        num_workers: DataLoader workers (the stream does not depend on them).
        rank, world_size: this process's slice of each global batch.

    Returns:
        An iterator of ``(lq, gt)`` batches of ``batch_size // world_size`` samples.
    """
    sampler = ShardSampler(start_step, steps, batch_size, rank, world_size)
    loader = DataLoader(SeededSamples(base, seed), batch_size=sampler.b, sampler=sampler,
                        num_workers=num_workers, pin_memory=torch.device(device).type == "cuda",
                        drop_last=True, persistent_workers=False)
    return iter(loader)


def fixed_batches(base: Dataset, seed: int, batch_size: int, n_batches: int) -> List:
    """A fixed list of batches (validation patches that are the same every epoch)."""
    return list(batch_stream(base, seed, batch_size, 0, n_batches, torch.device("cpu")))


__all__ = ["SeededSamples", "ShardSampler", "batch_stream", "fixed_batches"]
