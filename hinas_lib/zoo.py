"""The model zoo's names: ``zoo/<name>/model.pt`` found by name.

Each entry is a folder ``zoo/<name>/`` holding

* ``model.pt``      - a self-describing checkpoint (config + genotype + weights,
                      ``torch.load(weights_only=True)``), as :mod:`hinas_lib.model_files` writes it;
* ``genotype.json`` - the searched architecture, the same one ``model.pt`` stores;
* ``genotype.svg``  - the cells and width path as a picture (``genotype.gv`` without ``dot``);
* ``info.json``     - how it was made (data, settings, CPU-hours, machine) and its test scores.

``python -m hinas_lib restore --model denoise-s30 IN OUT`` finds an entry by name.
How entries are made lives with the zoo itself: ``zoo/zootools.py`` and the
``zoo/make_*.py`` scripts.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional, Sequence

from .checks import PATH_TYPES, expect
from .runfiles import MODEL_FILE

ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"


def available(zoo_dir: Path = ZOO_DIR) -> Dict[str, Path]:
    """name -> checkpoint path, for every ``zoo/<name>/model.pt``."""
    zoo_dir = Path(zoo_dir)
    if not zoo_dir.is_dir():
        return {}
    return {p.parent.name: p for p in sorted(zoo_dir.glob(f"*/{MODEL_FILE}"))}


def resolve_model(name_or_path: str | Path) -> Path:
    """A model file from a ``model.pt`` path, a folder holding one, or a zoo name.

    Raises:
        TypeError: when ``name_or_path`` is not a string or path (``load_model(123)``).
        FileNotFoundError: naming it, when it is none of the three.
    """
    expect(name_or_path, PATH_TYPES, "path", "give a model.pt path, a run folder or a zoo name")
    p = Path(name_or_path)
    if p.is_file():
        return p
    if p.is_dir() and (p / MODEL_FILE).is_file():
        return p / MODEL_FILE
    zoo = available()
    if str(name_or_path) in zoo:
        return zoo[str(name_or_path)]
    names = ", ".join(zoo) or "none installed"
    raise FileNotFoundError(f"model {str(name_or_path)!r} is neither a file nor a zoo name (zoo: {names})")


def entry_info(name: str, zoo_dir: Path = ZOO_DIR) -> Dict:
    """The ``info.json`` of a zoo entry."""
    path = Path(zoo_dir) / name / "info.json"
    if not path.is_file():
        raise FileNotFoundError(f"zoo entry {name!r} has no info.json at {path}")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ValueError(f"{path}: damaged info.json, not valid JSON ({type(e).__name__}: {e})") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: damaged info.json, expected a JSON object, got {type(info).__name__}")
    return info


__all__ = ["ZOO_DIR", "available", "resolve_model", "entry_info", "nearest_model"]


def nearest_model(sigma: float, trained: Dict[str, Optional[Sequence[float]]]) -> str:
    """The model to run at noise level ``sigma``: of the models trained at fixed levels
    (``trained[name]``: their sigmas; None for a blind model, trained over a range), the one
    trained nearest ``sigma``; on a tie, the first in ``trained``'s order. Blind models are
    only chosen when there is nothing else (then by their nominal sigmas, when given)."""
    if not trained:
        raise ValueError("nearest_model: no models to choose from")
    fixed = {n: s for n, s in trained.items() if s}
    if not fixed:
        return next(iter(trained))
    gap = {n: min(abs(float(v) - float(sigma)) for v in s) for n, s in fixed.items()}
    return min(gap, key=gap.get)
