"""A search's epoch records, read back from its ``log.jsonl`` (one JSON object a line), and
what they say about the search: :func:`search_trajectory` (does alpha separate, is the derived
cell stable, does it drift to ``skip_connect``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch

from .schedules import selection_score


def load_history(path) -> List[dict]:
    """The records of a ``log.jsonl`` search log, one dict per epoch."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def epochs_of(history: Sequence[dict]) -> List[int]:
    """The epoch of each record (its position where a record has none)."""
    return [h.get("epoch", i) for i, h in enumerate(history)]


def _edges(genotype: Optional[dict]) -> List[tuple]:
    """The derived genotype's edges as (layer, block, (op, input)); none without a genotype."""
    if not genotype:
        return []
    return [(l, i, tuple(e)) for l, cell in enumerate(genotype["cells"]) for i, block in enumerate(cell)
            for e in block]


def search_trajectory(log: Union[str, Path, Sequence[dict]],
                      primitives: Optional[Sequence[str]] = None) -> List[Dict]:
    """Per epoch of a search: how far softmax(alpha) has separated, and what its derived cell does.

    Args:
        log: a search's ``log.jsonl``, or its records (:func:`load_history`).
        primitives: the space's op names (kept for callers that pass them; the spread is
            over all ops of an edge, whatever their names).

    Returns:
        one dict per epoch: ``epoch``, ``step``; ``spread_mean`` / ``spread_max``, the spread of
        softmax(alpha) (max - min over an edge's ops; 0 when uniform) averaged / maximised over
        edges; ``changed_edges``, how many (layer, block, op, input) edges of the derived genotype
        are new since the previous epoch (None for the first); ``skip_edges``, how many of them
        are ``skip_connect``; ``path``, the derived width path.
    """
    records = load_history(log) if isinstance(log, (str, Path)) else list(log)
    rows, prev = [], None
    for i, rec in enumerate(records):
        a = torch.softmax(torch.as_tensor(rec["alpha"], dtype=torch.float64), -1)
        spread = a.max(-1).values - a.min(-1).values
        g = rec.get("genotype")
        edges = _edges(g)
        rows.append({"epoch": rec.get("epoch", i), "step": rec.get("step"), "spread_mean": float(spread.mean()),
                     "spread_max": float(spread.max()),
                     "changed_edges": None if prev is None else len(set(edges) - set(prev)),
                     "skip_edges": sum(1 for _, _, (op, _) in edges if op == "skip_connect"),
                     "path": g["path"] if g else None})
        prev = edges
    return rows


def selected_epoch(log: Sequence[dict], select_from: int, by: str = "ssim_psnr") -> Optional[int]:
    """The epoch a search keeps under ``search.select = "best"``, read from its log: the highest
    :func:`~hinas_lib.schedules.selection_score` (``by``: the authors' ``"ssim_psnr"``, SSIM +
    PSNR/100, or ``"psnr"``) among the validated epochs from ``select_from`` on, the earliest on a
    tie (the rule ``Searcher`` applies as it goes). None when no epoch qualifies."""
    best, epoch = -float("inf"), None
    for r in log:
        if r["epoch"] >= select_from and "val_psnr" in r:
            score = selection_score(r["val_psnr"], r["val_ssim"], by)
            if score > best:
                best, epoch = score, int(r["epoch"])
    return epoch


__all__ = ["load_history", "epochs_of", "search_trajectory", "selected_epoch"]
