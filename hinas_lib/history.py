"""A search's epoch records, read back from its ``log.jsonl`` (one JSON object a line), and
what they say about the search: :func:`search_trajectory` (does alpha separate, is the derived
cell stable, does it drift to ``skip_connect``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch


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


__all__ = ["load_history", "epochs_of", "search_trajectory"]
