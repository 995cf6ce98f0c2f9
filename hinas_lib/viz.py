"""Figures for HiNAS, in one namespace: ``viz.cell_graph(...)``, ``viz.plot_alphas(...)``.

This module only re-exports; each concept lives in its own module:

* :mod:`hinas_lib.graphs` -- Graphviz pictures (a cell, the genotype, the width path,
  a mixed edge, a search cell) and rendering them: ``render`` (the DOT source when
  ``dot`` is missing), ``show`` (for notebooks), ``has_dot``;
* :mod:`hinas_lib.plots` -- matplotlib figures: alpha and beta heatmaps, which alpha
  each cell reads, the width grid, a search's curves and trajectories, image
  comparisons, and ``write_search_figures`` (a finished search's figures);
* :mod:`hinas_lib.history` -- a search's ``log.jsonl`` read back (``load_history``) and
  whether its alpha separates (``search_trajectory``).
"""
from __future__ import annotations

from .graphs import (INSTALL_HINT, PAGE_SIZE, DotSource, GraphPicture, cell_graph, genotype_graph, has_dot,
                     mixed_edge_graph, render, search_cell_graph, show, width_path_graph)
from .history import load_history, search_trajectory
from .plots import (image_grid, plot_alpha_heatmap, plot_alpha_readers, plot_alphas, plot_beta, plot_losses,
                    plot_search_trajectory, plot_trajectories, plot_width_grid, write_search_figures)

__all__ = ["cell_graph", "genotype_graph", "width_path_graph", "mixed_edge_graph", "search_cell_graph", "PAGE_SIZE",
           "render", "has_dot", "show", "DotSource", "GraphPicture", "INSTALL_HINT",
           "plot_alpha_heatmap", "plot_alphas", "plot_beta", "plot_alpha_readers", "plot_width_grid",
           "load_history", "search_trajectory", "plot_search_trajectory", "plot_trajectories", "plot_losses",
           "image_grid", "write_search_figures"]
