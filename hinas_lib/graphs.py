"""Graphviz pictures of HiNAS: a cell, the whole genotype, the width path, one mixed
edge and a search cell, and how they are rendered or shown.

Graphviz objects need the ``dot`` program to become pictures. Without it
nothing here fails: :func:`render` writes the ``.gv`` DOT source and warns once
with how to install it, and :func:`show` returns a text stand-in.
"""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Dict, Optional, Sequence

import graphviz

from .genotype import Genotype, edge_index, input_name
from .grid import move_mask, possible_moves, reachable

INSTALL_HINT = ("drawing graphs needs the Graphviz 'dot' program, which the pip package does not "
                "include: install it with `apt-get install graphviz`, `conda install graphviz` "
                "or `brew install graphviz`")
_warned = False


# ---------------------------------------------------------------------------
# Cells, the whole genotype, the width path, a mixed edge, a search cell
# ---------------------------------------------------------------------------

def _darts_style() -> Dict[str, Dict[str, str]]:
    # fresh dicts each call: graphviz keeps references to what it is given
    return dict(
        graph_attr={"rankdir": "LR"},
        node_attr={"style": "filled", "shape": "rect", "align": "center", "fontsize": "20",
                   "height": "0.5", "width": "0.5", "penwidth": "2", "fontname": "times"},
        edge_attr={"fontsize": "16", "fontname": "times"},
    )


def _add_cell(g: graphviz.Digraph, genotype: Genotype, layer: int, prefix: str = "") -> None:
    """Draw one cell into ``g``; ``prefix`` keeps node ids unique when cells share a graph."""
    g.node(prefix + "s0", "c_{l-2}", fillcolor="darkseagreen2")
    g.node(prefix + "s1", "c_{l-1}", fillcolor="darkseagreen2")
    blocks = genotype.cells[layer]
    for i, block in enumerate(blocks):
        g.node(f"{prefix}b{i}", str(i), fillcolor="lightblue")
        for op, j in block:
            g.edge(prefix + input_name(j), f"{prefix}b{i}", label=op, fillcolor="gray")
    g.node(prefix + "out", "c_{l}", fillcolor="palegoldenrod")
    for i in range(len(blocks)):  # the cell output concatenates every block
        g.edge(f"{prefix}b{i}", prefix + "out", fillcolor="gray")


def _layer_title(genotype: Genotype, layer: int) -> str:
    return f"layer {layer} ({genotype.width_factors[genotype.path[layer]]:g}x)"


def cell_graph(genotype: Genotype, layer: int, *, fmt: str = "svg") -> graphviz.Digraph:
    """The cell of one layer, drawn like the DARTS figures."""
    g = graphviz.Digraph(f"cell_layer{layer}", format=fmt, **_darts_style())
    g.attr(label=_layer_title(genotype, layer), labelloc="t", fontsize="20", fontname="times")
    _add_cell(g, genotype, layer)
    return g


# Widest a genotype picture may be, in inches (graphviz `size`): a notebook page
# is about 9 in (~860 px) wide; dot scales a larger drawing down to fit.
PAGE_SIZE = "9,30"


def genotype_graph(genotype: Genotype, *, fmt: str = "svg") -> graphviz.Digraph:
    """Every cell in one picture, wired through the stem.

    Cells are stacked top to bottom (one cluster per layer, blocks flowing
    downwards inside it), so the picture grows in height with the layers and
    stays within a page's width (:data:`PAGE_SIZE`).
    """
    style = _darts_style()
    style["graph_attr"] = {"rankdir": "TB", "size": PAGE_SIZE, "nodesep": "0.25", "ranksep": "0.35"}
    g = graphviz.Digraph("genotype", format=fmt, **style)
    g.node("stem", "stem", fillcolor="darkseagreen2")
    for l in range(genotype.layers):
        with g.subgraph(name=f"cluster_{l}") as c:
            c.attr(label=_layer_title(genotype, l), style="rounded", color="gray", fontname="times")
            _add_cell(c, genotype, l, prefix=f"L{l}_")
        # c_{l-2} and c_{l-1} are earlier cell outputs, or the stem before layer 0
        for j, back in ((0, 2), (1, 1)):
            src = f"L{l - back}_out" if l - back >= 0 else "stem"
            g.edge(src, f"L{l}_s{j}", style="dashed", color="gray40")
    return g


# Grid layout of the width-path graph, in inches: one column per layer, one row per level.
_COL, _ROW = 1.4, 0.9


def width_path_graph(genotype_or_path, levels: Optional[int] = None, layers: Optional[int] = None,
                     *, fmt: str = "svg") -> graphviz.Digraph:
    """The layer x width grid: possible moves in grey, the chosen path in red,
    nodes no path can reach dashed. Levels are named by width factor when a
    Genotype is given.

    Every node is pinned to its place (``neato`` with ``pos="x,y!"``): layer l
    in column l, level s in row s (narrowest on top), so keeping the width is a
    horizontal arrow and a 1x -> 1x -> 1x path is a straight line. (``dot``
    would place nodes by rank only and could draw it as a diagonal.)
    """
    if isinstance(genotype_or_path, Genotype):
        path, factors = list(genotype_or_path.path), genotype_or_path.width_factors
    else:
        path, factors = [int(s) for s in genotype_or_path], None
    layers = layers or len(path)
    levels = levels or (len(factors) if factors else max(path) + 1)
    mask = move_mask(layers, levels)

    g = graphviz.Digraph("width_path", format=fmt, engine="neato",
                         graph_attr={"splines": "line", "outputorder": "edgesfirst"},
                         node_attr={"shape": "circle", "fixedsize": "true", "width": "0.6",
                                    "fontsize": "12", "style": "filled", "fillcolor": "white"})

    def pos(col: float, row: float) -> str:
        return f"{col * _COL:.2f},{-row * _ROW:.2f}!"

    g.node("stem", "stem", pos=pos(-1, 0), shape="box", fillcolor="darkseagreen2")
    for l in range(layers):  # column titles above the grid
        g.node(f"title{l}", f"layer {l}", pos=pos(l, -0.8), shape="plaintext", style="", fixedsize="false")
    for l in range(layers):
        for s in range(levels):
            label = f"{factors[s]:g}x" if factors else f"s{s}"
            kw = {"pos": pos(l, s)}
            if s not in reachable(l, levels):
                g.node(f"n{l}_{s}", label, style="dashed", color="gray70", fontcolor="gray70", **kw)
            elif l < len(path) and path[l] == s:
                g.node(f"n{l}_{s}", label, color="red", penwidth="2", fillcolor="mistyrose", **kw)
            else:
                g.node(f"n{l}_{s}", label, **kw)
    for l, src, k, s in possible_moves(mask):
        tail = f"n{l - 1}_{src}" if l > 0 else "stem"
        taken = l < len(path) and path[l] == s and (path[l - 1] if l > 0 else 0) == src
        g.edge(tail, f"n{l}_{s}", color="red" if taken else "gray60", penwidth="3" if taken else "1")
    return g


def mixed_edge_graph(primitives: Sequence[str], *, weights: Optional[Sequence[float]] = None,
                     fmt: str = "svg") -> graphviz.Digraph:
    """One mixed edge x -> y: every candidate op on its own branch, each scaled
    by its softmax(alpha) weight and summed (the continuous relaxation).

    Args:
        primitives: the candidate ops.
        weights: softmax(alpha) to print on the branches (default: uniform).
    """
    n = len(primitives)
    w = [1.0 / n] * n if weights is None else [float(v) for v in weights]
    g = graphviz.Digraph("mixed_edge", format=fmt,
                         graph_attr={"rankdir": "LR", "ranksep": "0.5", "nodesep": "0.12"},
                         node_attr={"fontname": "helvetica", "fontsize": "12", "style": "filled",
                                    "shape": "box", "fillcolor": "white"},
                         edge_attr={"fontname": "helvetica", "fontsize": "10", "arrowsize": "0.6"})
    g.node("x", "x", shape="circle", fillcolor="darkseagreen2")
    g.node("sum", "+", shape="circle", fillcolor="palegoldenrod", fontsize="18")
    g.node("y", "y", shape="circle", fillcolor="lightblue")
    for k, (p, wk) in enumerate(zip(primitives, w)):
        g.node(f"op{k}", p, fillcolor="gray90" if p == "none" else "white",
               fontcolor="gray40" if p == "none" else "black")
        g.edge("x", f"op{k}")
        g.edge(f"op{k}", "sum", label=f"x {wk:.2f}", penwidth=f"{0.5 + 4 * wk:.2f}")
    g.edge("sum", "y")
    return g


def search_cell_graph(blocks: int, *, fmt: str = "svg") -> graphviz.Digraph:
    """A search cell before derivation: every (block, earlier state) pair is a
    mixed edge (one arrow, labelled with its row of alpha), the blocks are
    concatenated and a 1x1 conv makes the cell output."""
    style = _darts_style()
    style["graph_attr"] = {"rankdir": "TB", "size": PAGE_SIZE, "ranksep": "0.45"}
    g = graphviz.Digraph("search_cell", format=fmt, **style)
    g.attr(label="every arrow is a mixed op; its label is its row of alpha", labelloc="t", fontsize="14",
           fontname="times")
    g.node("s0", "c_{l-2}", fillcolor="darkseagreen2")
    g.node("s1", "c_{l-1}", fillcolor="darkseagreen2")
    for i in range(blocks):
        g.node(f"b{i}", f"b{i}", fillcolor="lightblue")
    for e, (i, j) in enumerate(edge_index(blocks)):
        g.edge(input_name(j), f"b{i}", label=f"α[{e}]", color="gray40")
    g.node("cat", "concat + 1x1 conv", fillcolor="palegoldenrod")
    for i in range(blocks):
        g.edge(f"b{i}", "cat", color="gray")
    g.node("out", "c_{l}", fillcolor="palegoldenrod")
    g.edge("cat", "out")
    return g


# ---------------------------------------------------------------------------
# Rendering, with a fallback when `dot` is missing
# ---------------------------------------------------------------------------

def has_dot() -> bool:
    """Whether the Graphviz ``dot`` executable is on PATH."""
    return shutil.which("dot") is not None


def _warn_no_dot(err: Exception) -> None:
    global _warned
    if not _warned:  # once per session: a search renders many cells
        warnings.warn(f"{INSTALL_HINT}; wrote the DOT source (.gv) instead ({err})",
                      RuntimeWarning, stacklevel=3)
        _warned = True


def render(graph: graphviz.Digraph, path_without_ext, fmt: str = "svg") -> Path:
    """Write ``<path>.gv`` and render ``<path>.<fmt>``; return the picture's path,
    or the ``.gv`` path (after one warning) when ``dot`` is unavailable."""
    base = Path(path_without_ext)
    base.parent.mkdir(parents=True, exist_ok=True)
    gv = base.parent / f"{base.name}.gv"
    # write the source ourselves: graph.save() would change graph.filename
    gv.write_text(graph.source, encoding="utf-8")
    try:
        out = graphviz.render(graph.engine, fmt, gv, outfile=base.parent / f"{base.name}.{fmt}")
        return Path(out)
    except (graphviz.ExecutableNotFound, graphviz.CalledProcessError) as e:
        _warn_no_dot(e)
        return gv


class DotSource:
    """Shown instead of a graph when ``dot`` is missing: the DOT text plus the install hint."""

    def __init__(self, source: str):
        self.source = source

    def __repr__(self) -> str:
        return f"{self.source}\n// {INSTALL_HINT}\n// (paste the text above into any Graphviz viewer)"

    __str__ = __repr__


class GraphPicture:
    """A rendered graph for notebooks: offers SVG and PNG together.

    JupyterLab renders SVG only in *trusted* notebooks; a notebook someone just
    opened is not, and showed "<graphviz.graphs.Digraph>" in place of every
    graph. PNG is always rendered, so an untrusted notebook shows the PNG and a
    trusted one (or a code host) the sharper SVG.
    """

    def __init__(self, graph: graphviz.Digraph):
        self.graph = graph
        self.source = graph.source

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"image/svg+xml": self.graph.pipe(format="svg", encoding="utf-8"),
                "image/png": self.graph.pipe(format="png"),
                "text/plain": f"<graph {self.graph.name}>"}


def show(graph: graphviz.Digraph):
    """For notebooks: the graph as a picture (SVG and PNG, see :class:`GraphPicture`)
    when ``dot`` exists, else a :class:`DotSource` so the cell prints text instead
    of a traceback."""
    return GraphPicture(graph) if has_dot() else DotSource(graph.source)


__all__ = ["cell_graph", "genotype_graph", "width_path_graph", "mixed_edge_graph", "search_cell_graph", "PAGE_SIZE",
           "render", "has_dot", "show", "DotSource", "GraphPicture", "INSTALL_HINT"]
