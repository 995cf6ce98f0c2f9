"""Sizes of the search space: what `python -m hinas_lib describe` prints."""
from __future__ import annotations

import textwrap

from math import comb
from typing import Dict

from .config import Config
from .genotype import default_genotype, edges_per_cell
from .grid import MOVES, count_paths, reachable
from .network import build_network
from .supernet import build_supernet
from .tasks import get_task


def cell_space_size(blocks: int, n_ops: int) -> int:
    """Discrete cells: block i picks 2 of its 2+i inputs, each with a non-`none` op."""
    total = 1
    for i in range(blocks):
        total *= comb(2 + i, 2) * n_ops ** 2
    return total


def candidate_architectures(layers: int, levels: int, blocks: int, n_ops: int, sharing: str) -> int:
    """Discrete architectures the search can derive: a cell per layer (LWAS and per-cell alpha
    both derive one cell per layer) or one cell for all (tied), times the width paths.
    ``n_ops`` counts the candidate ops other than ``none``."""
    cells = cell_space_size(blocks, n_ops)
    return (cells if sharing == "tied" else cells ** layers) * count_paths(layers, levels)


def describe(cfg: Config) -> Dict:
    sp = cfg.space
    non_none = len([p for p in sp.primitives if p != "none"])
    n_cells = cell_space_size(sp.blocks, non_none)
    n_paths = count_paths(sp.layers, len(sp.width_factors))
    n_arch = candidate_architectures(sp.layers, len(sp.width_factors), sp.blocks, non_none, sp.alpha_sharing)
    net = build_supernet(cfg)
    geno = default_genotype(sp.layers, sp.blocks, sp.width_factors)
    disc = build_network(geno, cfg)
    nodes = sum(len(reachable(l, len(sp.width_factors))) for l in range(sp.layers))
    return {
        "preset": cfg.name,
        "task": cfg.task.task,
        "scale": get_task(cfg).scale if get_task(cfg).scale > 1 else None,
        "channels": cfg.task.channels,
        "layers": sp.layers,
        "blocks": sp.blocks,
        "filters": sp.filters,
        "widths": sp.widths(),
        "primitives": list(sp.primitives),
        "edges_per_cell": edges_per_cell(sp.blocks),
        "alpha_sharing": sp.alpha_sharing,
        "cell_sharing": sp.cell_sharing,
        "alpha_shape": list(net.alpha.shape),
        "beta_shape": list(net.beta.shape),
        "grid_nodes": nodes,
        "cells_in_supernet": len(net.cells),
        "candidate_cells": n_cells,
        "candidate_width_paths": n_paths,
        "candidate_architectures": n_arch,
        "supernet_params": net.num_weight_params(),
        "arch_params": sum(p.numel() for p in net.arch_parameters()),
        "network_params": disc.num_params(),
        "network_filters": cfg.train.filters,
        "network_genotype": "default (conv_3x3 chain with skips, width 1x)",
    }


def format_description(d: Dict) -> str:
    lines = [f"HiNAS search space: preset {d['preset']}, task {d['task']}"
             + (f" x{d['scale']}" if d["scale"] else "") + f", {d['channels']} channel(s)"]
    rows = [
        ("layers x blocks", f"{d['layers']} x {d['blocks']}  ({d['edges_per_cell']} mixed-op edges per cell)"),
        ("widths (F x factors)", f"{d['widths']}"),
        ("primitives", ", ".join(d["primitives"])),
        ("alpha sharing", f"{d['alpha_sharing']}  -> alpha shape {tuple(d['alpha_shape'])}"),
        ("beta shape", f"{tuple(d['beta_shape'])}  (layers x widths x {'/'.join(MOVES)})"),
        ("cell sharing", f"{'on' if d['cell_sharing'] else 'off'}  ({d['cells_in_supernet']} cells on "
                         f"{d['grid_nodes']} grid nodes)"),
        ("candidate cells", f"{d['candidate_cells']:.3e}"),
        ("candidate width paths", f"{d['candidate_width_paths']}"),
        ("candidate architectures", f"{d['candidate_architectures']:.3e}"),
        ("supernet weights", f"{d['supernet_params']:,}  (+ {d['arch_params']} architecture parameters)"),
        ("derived net params", f"{d['network_params']:,}  (F={d['network_filters']}, {d['network_genotype']})"),
    ]
    # long values (the primitives) wrap under their column: JupyterLab breaks long output
    # lines anywhere, mid-word, and terminals at 100 columns are common
    for k, v in rows:
        lines += textwrap.wrap(v, 100, initial_indent=f"  {k:<24} ", subsequent_indent=" " * 27,
                               break_long_words=False, break_on_hyphens=False) or [f"  {k:<24}"]
    return "\n".join(lines)
