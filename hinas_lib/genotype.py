"""Genotypes: a derived architecture as plain, validated JSON data.

A genotype holds, per layer, one discrete cell and the width level the
network takes at that layer:

* ``cells[l][i]`` is block ``i`` of layer ``l``'s cell: two ``(op, input)``
  edges whose outputs are summed. Input ``0`` is the cell's first input
  (output of layer l-2, or the stem), ``1`` its second input (layer l-1),
  ``2 + j`` the output of block ``j < i``.
* ``path[l]`` is the width level (an index into ``width_factors``) of layer l.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple

from .checkpoint import atomic_write_text
from .grid import DEFAULT_WIDTH_FACTORS, path_error
from .checks import MAX_BLOCKS, MAX_LAYERS, MAX_WIDTH_FACTOR, MIN_WIDTH_FACTOR, PATH_TYPES, expect
from .ops import OPS

FORMAT = "hinas-genotype"
VERSION = 1

Edge = Tuple[str, int]
Block = Tuple[Edge, Edge]


class GenotypeError(ValueError):
    """A genotype file or object is malformed; the message says where."""


def input_name(idx: int) -> str:
    return {0: "s0", 1: "s1"}.get(idx, f"b{idx - 2}")


@dataclass(frozen=True)
class Genotype:
    cells: Tuple[Tuple[Block, ...], ...]
    path: Tuple[int, ...]
    width_factors: Tuple[float, ...] = DEFAULT_WIDTH_FACTORS

    def __post_init__(self):
        # Normalise lists (e.g. from JSON) into hashable tuples, then validate. Strings are
        # refused, not parsed: "012" as a path would otherwise be read digit by digit.
        def seq(x, what):
            if not isinstance(x, (list, tuple)):
                raise ValueError(f"{what} must be a list, got {type(x).__name__} {x!r:.40}")
            return x

        def integer(i, what):
            if isinstance(i, bool) or not isinstance(i, (int, float)) or not float(i).is_integer():
                raise ValueError(f"{what} {i!r:.40} is not an integer")
            return int(i)

        def number(w):
            if isinstance(w, bool) or not isinstance(w, (int, float)):
                raise ValueError(f"width factor {w!r:.40} is not a number")
            return float(w)

        try:
            cells = tuple(tuple(tuple((op if isinstance(op, str) else repr(op), integer(i, "input index"))
                                      for op, i in seq(block, "a block"))
                                for block in seq(cell, "a cell"))
                          for cell in seq(self.cells, "'cells'"))
            path = tuple(integer(p, "path entry") for p in seq(self.path, "'path'"))
            wf = tuple(number(w) for w in seq(self.width_factors, "'width_factors'"))
        except (TypeError, ValueError) as e:
            raise GenotypeError(f"genotype: malformed structure ({e}); expected cells[layer][block] = "
                                "[[op, input], [op, input]], path = [level, ...], width_factors = [number, ...]"
                                ) from None
        object.__setattr__(self, "cells", cells)
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "width_factors", wf)
        self.validate()

    # ------------------------------------------------------------------
    @property
    def layers(self) -> int:
        return len(self.cells)

    @property
    def blocks(self) -> int:
        return len(self.cells[0])

    def ops(self) -> List[str]:
        """Every op used, in cell order (with repeats)."""
        return [op for cell in self.cells for block in cell for op, _ in block]

    def validate(self) -> None:
        if len(self.cells) == 0:
            raise GenotypeError("genotype: 'cells' is empty; need one cell per layer")
        if len(self.path) != len(self.cells):
            raise GenotypeError(f"genotype: 'path' has {len(self.path)} entries but there are "
                                f"{len(self.cells)} cells (one width level per layer)")
        if len(self.width_factors) == 0:
            raise GenotypeError("genotype: 'width_factors' is empty")
        if any(b <= a for a, b in zip(self.width_factors, self.width_factors[1:])) or min(self.width_factors) <= 0:
            raise GenotypeError(f"genotype: 'width_factors' must be positive and increasing, got {self.width_factors}")
        # a width factor of 1000 builds layers of F*1000 channels: it hangs instead of failing
        # (written so that NaN fails too)
        if not all(MIN_WIDTH_FACTOR <= w <= MAX_WIDTH_FACTOR for w in self.width_factors):
            raise GenotypeError(f"genotype: 'width_factors' must be numbers in [{MIN_WIDTH_FACTOR:g}, "
                                f"{MAX_WIDTH_FACTOR:g}], got {list(self.width_factors)}")
        if len(self.cells) > MAX_LAYERS:
            raise GenotypeError(f"genotype: {len(self.cells)} layers; at most {MAX_LAYERS} are supported")
        nb = len(self.cells[0])
        if nb == 0:
            raise GenotypeError("genotype: cell of layer 0 has no blocks")
        if nb > MAX_BLOCKS:
            raise GenotypeError(f"genotype: {nb} blocks per cell; at most {MAX_BLOCKS} are supported")
        for l, cell in enumerate(self.cells):
            if len(cell) != nb:
                raise GenotypeError(f"genotype: layer {l} has {len(cell)} blocks, layer 0 has {nb}")
            for i, block in enumerate(cell):
                if len(block) != 2:
                    raise GenotypeError(f"genotype: layer {l} block {i} has {len(block)} edges; need 2")
                for op, idx in block:
                    if op not in OPS or op == "none":
                        raise GenotypeError(f"genotype: layer {l} block {i}: unknown op {op!r} "
                                            f"(known: {sorted(k for k in OPS if k != 'none')})")
                    if not 0 <= idx < 2 + i:
                        raise GenotypeError(f"genotype: layer {l} block {i}: input index {idx} out of "
                                            f"range [0, {2 + i})")
        err = path_error(self.path, len(self.width_factors))
        if err:
            raise GenotypeError(f"genotype: {err}")

    # ------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "width_factors": list(self.width_factors),
            "path": list(self.path),
            "cells": [[[[op, i] for op, i in block] for block in cell] for cell in self.cells],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, d: dict) -> "Genotype":
        if not isinstance(d, dict):
            raise GenotypeError(f"genotype: expected a JSON object, got {type(d).__name__}")
        if d.get("format", FORMAT) != FORMAT:
            raise GenotypeError(f"genotype: format is {d.get('format')!r}, expected {FORMAT!r}")
        if d.get("version", VERSION) != VERSION:
            raise GenotypeError(f"genotype: version {d.get('version')} is not supported (expected {VERSION})")
        missing = [k for k in ("cells", "path") if k not in d]
        if missing:
            raise GenotypeError(f"genotype: missing key(s) {missing}")
        return cls(cells=d["cells"], path=d["path"], width_factors=d.get("width_factors", DEFAULT_WIDTH_FACTORS))

    @classmethod
    def from_json(cls, text: str) -> "Genotype":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise GenotypeError(f"genotype: not valid JSON ({e})") from None
        except RecursionError:
            raise GenotypeError("genotype: nested too deeply to be a genotype (cells are 3 lists deep)") from None
        return cls.from_dict(d)

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Genotype":
        expect(path, PATH_TYPES, "path", "give the genotype.json file's path")
        p = Path(path)
        if not p.is_file():
            raise GenotypeError(f"genotype file not found: {p}")
        try:
            return cls.from_json(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise GenotypeError(f"{p}: not a genotype JSON file (binary content; a model.pt goes to --model)") from None
        except GenotypeError as e:
            raise GenotypeError(f"{p}: {e}") from None

    # ------------------------------------------------------------------
    def describe_cell(self, layer: int) -> str:
        parts = []
        for i, block in enumerate(self.cells[layer]):
            terms = " + ".join(f"{op}({input_name(idx)})" for op, idx in block)
            parts.append(f"b{i} = {terms}")
        return "; ".join(parts)

    def __str__(self) -> str:
        widths = " -> ".join(f"{self.width_factors[s]:g}x" for s in self.path)
        lines = [f"Genotype: {self.layers} layers x {self.blocks} blocks, width path {widths}"]
        for l in range(self.layers):
            lines.append(f"  layer {l} ({self.width_factors[self.path[l]]:g}x): {self.describe_cell(l)}")
        return "\n".join(lines)


def default_genotype(layers: int, blocks: int, width_factors: Sequence[float] = DEFAULT_WIDTH_FACTORS) -> Genotype:
    """A hand-made reference architecture (a plain chain of 3x3 convs with skips at
    width 1x), used to size the discrete network before any search has run."""
    cell = []
    for i in range(blocks):
        prev = 1 if i == 0 else i + 1  # s1 for the first block, then the previous block
        cell.append((("conv_3x3", prev), ("skip_connect", 0 if i == 0 else 1)))
    return Genotype(cells=tuple(tuple(cell) for _ in range(layers)), path=(0,) * layers,
                    width_factors=tuple(width_factors))


def edges_per_cell(blocks: int) -> int:
    """Block i has 2 + i candidate inputs, hence that many mixed-op edges."""
    return sum(2 + i for i in range(blocks))


def edge_index(blocks: int) -> List[Tuple[int, int]]:
    """(block, input) for every edge, in the order alpha rows use."""
    return [(i, j) for i in range(blocks) for j in range(2 + i)]
