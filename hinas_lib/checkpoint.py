"""Atomic file writes and safe checkpoint loading.

Checkpoints are written to a temporary file in the same folder, flushed and
fsynced, then renamed over the target: a crash mid-write never leaves a
truncated checkpoint, and the previous one survives. They hold only tensors and
plain Python data so that ``torch.load(weights_only=True)`` can read them.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Dict

import torch


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or belongs to another run/task."""


def _atomic_write(path: str | Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    _atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_save(obj: Dict[str, Any], path: str | Path) -> None:
    _atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(path: str | Path, *, kind: str | None = None) -> Dict[str, Any]:
    """Load with ``weights_only=True``; ``kind`` ('search' | 'model') is checked."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # corrupted file, pickle with arbitrary objects, ...
        raise CheckpointError(f"cannot read checkpoint {p}: {type(e).__name__}: {e}") from None
    if not isinstance(ckpt, dict) or "kind" not in ckpt:
        raise CheckpointError(f"{p} is not a hinas checkpoint (no 'kind' entry)")
    if kind is not None and ckpt["kind"] != kind:
        raise CheckpointError(f"{p} is a {ckpt['kind']!r} checkpoint, expected a {kind!r} checkpoint")
    return ckpt
