"""Atomic file writes and safe checkpoint loading.

Checkpoints are written to a temporary file in the same folder, flushed and
fsynced, then renamed over the target: a crash mid-write never leaves a
truncated checkpoint, and the previous one survives. They hold only tensors and
plain Python data so that ``torch.load(weights_only=True)`` can read them.
"""
from __future__ import annotations

import errno
import io
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any, Dict

import torch


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or belongs to another run/task."""


def current_umask() -> int:
    """The process umask, read without changing it where the system allows.

    ``os.umask`` can only be read by setting it; between the two calls another
    thread could create a file with the wrong mask. Linux shows it in
    /proc/self/status; elsewhere fall back to set-and-restore, with the
    restrictive 0o077 in between so that the race can only make a file private.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def _atomic_write(path: str | Path, write) -> None:
    """Write ``path`` through a temporary file in its folder, fsync, rename.

    A crash or a full disk mid-write leaves the previous file untouched (and
    removes the temporary one). ``mkstemp`` creates files 0600; the file gets
    the permissions any new file would (0666 minus the umask), so that a
    colleague can read a shared ``model.pt``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            if hasattr(os, "fchmod"):  # POSIX; on Windows mkstemp's mode is not restrictive anyway
                os.fchmod(f.fileno(), 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename is None:
            # a failed write (e.g. disk full) does not say which file: name the one we were writing
            raise _with_filename(e, path) from e
        raise


def _with_filename(e: OSError, path: Path) -> OSError:
    try:
        return type(e)(e.errno, e.strerror or str(e), str(path))
    except Exception:  # an OSError subclass with another constructor: keep it as it is
        return e


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`_atomic_write`)."""
    _atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    _atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_save(obj: Dict[str, Any], path: str | Path) -> None:
    """``torch.save`` atomically. Serialised in memory first: torch's writer reports a
    full disk as a RuntimeError ("unexpected pos"), a plain write as OSError ENOSPC."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path, *, kind: str | None = None) -> Dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (never runs code from the file).

    Args:
        path: the checkpoint file.
        kind: when given ('search' | 'model' | ...), the checkpoint must be of this kind.

    Returns:
        The checkpoint's dict.

    Raises:
        CheckpointError: naming the file, when it is missing, damaged, holds
            Python objects other than tensors and plain data, or is of another kind.
        OSError: when it exists but cannot be opened (e.g. permissions).
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    if p.stat().st_size == 0:
        raise CheckpointError(f"cannot read checkpoint {p}: the file is empty (an interrupted copy?)")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except OSError as e:
        if e.errno not in (errno.EINVAL, None):
            raise  # permissions and the like: a file-system error, not a bad checkpoint
        # torch's zip reader says "Invalid argument" for a truncated file
        raise CheckpointError(f"cannot read checkpoint {p}: the file is damaged or truncated "
                              f"({_first_line(e)})") from None
    except pickle.UnpicklingError as e:
        raise CheckpointError(_unpickling_message(p, e)) from None
    except Exception as e:  # damaged file, not a torch file, ...
        raise CheckpointError(f"cannot read checkpoint {p}: the file is damaged or not a torch checkpoint "
                              f"({type(e).__name__}: {_first_line(e)})") from None
    if not isinstance(ckpt, dict) or "kind" not in ckpt:
        raise CheckpointError(f"{p} is not a hinas checkpoint (no 'kind' entry)")
    if kind is not None and ckpt["kind"] != kind:
        raise CheckpointError(f"{p} is a {ckpt['kind']!r} checkpoint, expected a {kind!r} checkpoint")
    return ckpt


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    # torch's messages may suggest weights_only=False, i.e. running the file's code: never pass that on
    lines = [ln for ln in lines if "weights_only" not in ln]
    return lines[0] if lines else type(e).__name__


def _unpickling_message(p: Path, e: pickle.UnpicklingError) -> str:
    text = str(e)
    # torch's weights-only unpickler names the Python object it refused: "GLOBAL posix.system"
    # (torch >= 2.4) or "Unsupported class posix.system" (2.3)
    if "Weights only load failed" not in text or not re.search(r"global|unsupported class", text, re.IGNORECASE):
        return f"cannot read checkpoint {p}: the file is damaged or not a torch checkpoint ({_first_line(e)})"
    found = re.search(r"(?:GLOBAL|Unsupported class) ([\w.]+)", text)
    what = f" (it refers to {found.group(1)})" if found else ""
    return (f"{p} is not a hinas checkpoint: it contains Python objects that cannot be loaded safely "
            f"(weights_only){what}")
