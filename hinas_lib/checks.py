"""Argument checks for the public Python API, and the size limits shared by configs and genotypes.

A wrong type passed to a public function (a dict where a ``Config`` is
expected, an int as an output folder) would otherwise fail deep inside torch
or pathlib with a message that names neither the argument nor what was
expected. :func:`expect` fails at the door with a ``TypeError`` that names both.

This module imports nothing from the rest of the library, so any module can use it.
"""
from __future__ import annotations

import numbers
import os
from typing import Any, Optional, Tuple, Type, Union

# Upper limits on sizes. Beyond them a run would not finish (or not even build
# its network: 100,000 layers hang in construction), so a value past them is a
# typo or a misunderstanding, and saying so at once beats hanging.
MAX_LAYERS = 64
MAX_BLOCKS = 16
MAX_FILTERS = 4096
MAX_WIDTH_FACTOR = 16.0
MIN_WIDTH_FACTOR = 1 / 16  # below it every level rounds to a channel or two: a typo, not a design
MAX_BATCH = 65536
MAX_CROP = 8192
MAX_EPOCHS = 1_000_000
MAX_STEPS_PER_EPOCH = 10_000_000
MAX_VAL_BATCHES = 100_000
MAX_WORKERS = 1024
MAX_THREADS = 256  # torch threads; more than the largest servers' cores only oversubscribes them

# What a file or folder argument may be: a string or anything os.fspath accepts.
PATH_TYPES: Tuple[type, ...] = (str, os.PathLike)
PATH_OR_NONE: Tuple[type, ...] = (str, os.PathLike, type(None))

TypeSpec = Union[Type, Tuple[Type, ...]]

# How to get the right thing, for the messages of the commonest mistakes.
CONFIG_HINT = "build one with get_preset(...), Config.from_yaml(path) or Config.from_dict(d)"
GENOTYPE_HINT = "load one with Genotype.load(path) or build it with Genotype.from_dict(d)"


def _type_names(types: TypeSpec) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = []
    for t in types:
        if t is type(None):
            names.append("None")
        elif t is os.PathLike:
            names.append("a path (os.PathLike)")
        elif t is numbers.Real:
            names.append("a number")
        elif t is numbers.Integral:
            names.append("an integer")
        else:
            names.append(t.__name__)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def expect(value: Any, types: TypeSpec, name: str, hint: Optional[str] = None) -> Any:
    """Raise ``TypeError`` unless ``isinstance(value, types)``; return ``value``.

    ``bool`` is refused where ``int`` (or ``float``) is expected and ``bool`` is
    not listed, since ``True`` as a size is always a mistake.

    Args:
        value: the argument to check.
        types: a type or a tuple of types (``type(None)`` allows None).
        name: the argument's name as the caller wrote it (``"cfg"``, ``"out_dir"``).
        hint: an optional sentence on how to get the right thing.

    Returns:
        ``value`` unchanged, so a check can sit inside an expression.
    """
    listed = types if isinstance(types, tuple) else (types,)
    ok = isinstance(value, listed) and not (isinstance(value, bool) and bool not in listed)
    if not ok:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        msg = f"{name}: expected {_type_names(listed)}, got {type(value).__name__} {shown}"
        raise TypeError(msg + (f"; {hint}" if hint else ""))
    return value
