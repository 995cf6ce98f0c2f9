"""A model of the zoo and where it comes from: the network with its ``info.json``, and
one line saying how it was made."""
from __future__ import annotations

from typing import Mapping

from . import zoo
from .model_files import load_model
from .text import wrap


def shipped_model(name: str):
    """A zoo model and where it comes from.

    Args:
        name: a zoo entry (``denoise-s30``, ``sr-x2``, ...).

    Returns:
        ``(net, config, info)``: the network on the CPU in eval mode, its
        config, and its ``info.json`` (how it was made and its test scores).
    """
    net, cfg, _ = load_model(name, "cpu")
    return net, cfg, zoo.entry_info(name)


def provenance(info: Mapping) -> str:
    """One line saying how a zoo entry was made, read from its ``info.json``
    (the entries may be rebuilt, so nothing here is hard-coded)."""
    recipe = info.get("recipe", {})
    hours = info.get("cpu_hours")
    if hours:  # a zoo v2 entry: grown from a blind trunk, then a branch
        return wrap(f"shipped model (zoo/{info['name']}, {hours['total']:.1f} CPU-hours: search "
                    f"{hours.get('search', 0):.1f} + blind trunk {hours['trunk']:.1f} + branch {hours['branch']:.1f}, "
                    f"on {recipe.get('data', '?')}, "
                    f"{info.get('date', '?')}; see zoo/RESULTS.md)")
    search_min = recipe.get("search_seconds", 0) / 60
    train_min = info.get("train_seconds", 0) / 60
    return wrap(f"shipped model (zoo/{info['name']}, searched {search_min:.0f} + trained {train_min:.0f} "
                f"CPU-minutes on {recipe.get('data', '?')}, {info.get('date', '?')}; see zoo/RESULTS.md)")


__all__ = ["shipped_model", "provenance"]
