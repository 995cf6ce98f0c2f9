"""The model zoo: short names for the trained models shipped in ``zoo/``."""
from __future__ import annotations

from pathlib import Path
from typing import Dict

ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"


def available() -> Dict[str, Path]:
    """name -> checkpoint path, for every ``zoo/<name>/model.pt``."""
    if not ZOO_DIR.is_dir():
        return {}
    return {p.parent.name: p for p in sorted(ZOO_DIR.glob("*/model.pt"))}


def resolve_model(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.is_file():
        return p
    if p.is_dir() and (p / "model.pt").is_file():
        return p / "model.pt"
    zoo = available()
    if str(name_or_path) in zoo:
        return zoo[str(name_or_path)]
    names = ", ".join(zoo) or "none installed"
    raise FileNotFoundError(f"model {str(name_or_path)!r} is neither a file nor a zoo name (zoo: {names})")
