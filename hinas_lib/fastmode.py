"""Fast mode: whether the course runs shrunk (``HINAS_FAST``).

The test suite (nbval) and CI run every notebook in fast mode, in a few minutes on
2 CPU cores. What it shrinks (loops, crops, image sizes; never the search space) is
:mod:`hinas_lib.course`'s.
"""
from __future__ import annotations

import os

FAST_ENV = "HINAS_FAST"
_OFF = ("", "0", "false", "no", "off")


def fast_mode() -> bool:
    """True when the environment variable ``HINAS_FAST`` is set to anything but
    ``0`` (or an empty string, ``false``, ``no``, ``off``)."""
    return os.environ.get(FAST_ENV, "").strip().lower() not in _OFF


__all__ = ["FAST_ENV", "fast_mode"]
