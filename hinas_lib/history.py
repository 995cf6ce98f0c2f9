"""A search's epoch records, read back from its ``log.jsonl`` (one JSON object a line)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Sequence


def load_history(path) -> List[dict]:
    """The records of a ``log.jsonl`` search log, one dict per epoch."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def epochs_of(history: Sequence[dict]) -> List[int]:
    """The epoch of each record (its position where a record has none)."""
    return [h.get("epoch", i) for i, h in enumerate(history)]


__all__ = ["load_history", "epochs_of"]
