"""Matplotlib figures of HiNAS: architecture weights (alpha, beta, which alpha each
cell reads), the width grid, a search's curves and trajectories, image comparisons,
and the figures a finished search writes.

Every function returns a new ``Figure`` and never calls ``plt.show`` or chooses a
backend, so they work headless (Agg) and inside Jupyter alike.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from .genotype import edge_index, input_name
from .graphs import cell_graph, render, width_path_graph
from .grid import MOVES, masked_softmax, move_mask, possible_moves, reachable
from .history import epochs_of
from .ops import PRIMITIVES
from .runfiles import FIGURES_DIR


# ---------------------------------------------------------------------------
# Architecture weights and the width grid
# ---------------------------------------------------------------------------

def _tensor(x) -> torch.Tensor:
    """Nested lists, numpy arrays or (trainable) tensors -> a float CPU tensor."""
    return torch.as_tensor(x).detach().float().cpu()


def _fig_ax(ax, figsize):
    if ax is None:
        return plt.subplots(figsize=figsize)
    return ax.figure, ax


def _grid(n: int, ncols: int, cell_w: float, cell_h: float, **kw):
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell_w * ncols, cell_h * nrows), squeeze=False, **kw)
    for ax in axes.flat[n:]:  # a ragged last row: drop the empty slots
        fig.delaxes(ax)
    return fig, list(axes.flat[:n])


def _op_names(primitives, n: int) -> List[str]:
    if primitives is not None:
        return list(primitives)
    return list(PRIMITIVES) if n == len(PRIMITIVES) else [f"op{i}" for i in range(n)]


# Deviations from uniform are drawn in percentage points: a short search moves a
# weight by 0.05 points, which "+0.00" (as a fraction) would hide.
PP = 100.0


def _deviation_limit(dev: np.ndarray) -> float:
    # symmetric colour range around 0; the floor (0.01 points, far above float
    # rounding) keeps an all-zero map from painting noise in full colour
    return max(float(np.nanmax(np.abs(dev))) if dev.size else 0.0, 0.01)


def _annotate(ax, dev: np.ndarray, lim: float, valid=None, fontsize: int = 9) -> None:
    for r in range(dev.shape[0]):
        for c in range(dev.shape[1]):
            if valid is None or valid[r, c]:
                ax.text(c, r, f"{dev[r, c]:+.2f}", ha="center", va="center", fontsize=fontsize,
                        color="white" if abs(dev[r, c]) > 0.6 * lim else "black")


def plot_alpha_heatmap(alpha, primitives: Sequence[str], blocks: int, *, title: Optional[str] = None, ax=None):
    """How far one cell's softmax(alpha) (E, O) is from uniform: softmax(alpha) - 1/O,
    in percentage points.

    Rows are edges "b{i}<-{input}", columns ops. A diverging colour map centred
    at 0 (red: the op gained weight, blue: it lost weight), so an alpha that
    has not moved is white rather than a wall of identical numbers. The op a
    row would keep (the largest weight) is boxed.
    """
    w = torch.softmax(_tensor(alpha), dim=-1).numpy()
    rows = [f"b{i}<-{input_name(j)}" for i, j in edge_index(blocks)]
    if w.shape != (len(rows), len(primitives)):
        raise ValueError(f"alpha has shape {w.shape}, expected ({len(rows)}, {len(primitives)}) "
                         f"for {blocks} blocks and {len(primitives)} primitives")
    dev = PP * (w - 1.0 / w.shape[1])
    lim = _deviation_limit(dev)
    fig, ax = _fig_ax(ax, (0.9 * len(primitives) + 2.5, 0.42 * len(rows) + 1.6))
    im = ax.imshow(dev, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    _annotate(ax, dev, lim)
    for e, o in enumerate(w.argmax(axis=1)):
        ax.add_patch(Rectangle((o - 0.5, e - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.5))
    ax.set_xticks(range(len(primitives)), labels=list(primitives), rotation=35, ha="right", fontsize=10)
    ax.set_yticks(range(len(rows)), labels=rows, fontsize=10)
    ax.figure.colorbar(im, ax=ax, shrink=0.8, label=f"softmax(alpha) - 1/{w.shape[1]} (points)")
    ax.set_title(title or "softmax(alpha) - uniform", fontsize=11)
    return fig


def plot_alphas(alpha, primitives: Sequence[str], blocks: int, *, ncols: int = 2):
    """Every cell's alpha as deviation from uniform (see :func:`plot_alpha_heatmap`):
    (L, E, O) one per layer, (1, E, O) tied, (L, S, E, O) one per grid node that exists."""
    a = _tensor(alpha)
    if a.dim() == 2:
        a = a[None]
    if a.dim() == 3:
        cells = [("all cells (tied)" if a.shape[0] == 1 else f"layer {l}", a[l]) for l in range(a.shape[0])]
    elif a.dim() == 4:
        L, S = a.shape[:2]
        cells = [(f"layer {l}, level {s}", a[l, s]) for l in range(L) for s in reachable(l, S)]
    else:
        raise ValueError(f"alpha must be (E,O), (L,E,O) or (L,S,E,O); got shape {tuple(a.shape)}")
    ncols = min(ncols, len(cells))
    fig, axes = _grid(len(cells), ncols, 0.9 * len(primitives) + 3.2, 0.42 * a.shape[-2] + 2.0)
    for ax, (title, cell) in zip(axes, cells):
        plot_alpha_heatmap(cell, primitives, blocks, title=f"{title}: softmax(alpha) - uniform", ax=ax)
    fig.tight_layout()
    return fig


def plot_beta(beta, mask=None, *, width_factors: Optional[Sequence[float]] = None):
    """Masked softmax of beta as deviation from uniform, one heatmap per layer:
    rows are the source level in the previous layer (the stem for layer 0),
    columns the move (:data:`hinas_lib.grid.MOVES`); a move's deviation is its
    weight minus 1/(number of moves out of that node), in percentage points.
    Impossible moves grey."""
    b = _tensor(beta)
    L, S, _ = b.shape
    mask = move_mask(L, S) if mask is None else torch.as_tensor(mask, dtype=torch.bool).cpu()
    w = masked_softmax(b, mask).numpy()
    m = mask.numpy()
    n_out = np.maximum(m.sum(-1, keepdims=True), 1)
    dev = np.where(m, PP * (w - 1.0 / n_out), np.nan)
    lim = _deviation_limit(np.nan_to_num(dev))
    ylabels = [f"{f:g}x" for f in width_factors] if width_factors else [f"level {s}" for s in range(S)]
    fig, axes = _grid(L, L, 2.6, 0.55 * S + 1.9)
    for l, ax in enumerate(axes):
        ax.set_facecolor("lightgrey")  # NaN cells are transparent, so this marks impossible moves
        im = ax.imshow(dev[l], cmap="RdBu_r", vmin=-lim, vmax=lim)
        _annotate(ax, np.nan_to_num(dev[l]), lim, valid=m[l])
        ax.set_xticks(range(3), labels=MOVES, fontsize=10)
        ax.set_yticks(range(S), labels=ylabels if l == 0 else [""] * S, fontsize=10)
        ax.set_title("from the stem" if l == 0 else f"from layer {l - 1}", fontsize=10)
    axes[0].set_ylabel("source width")
    fig.colorbar(im, ax=axes, shrink=0.8, label="softmax(beta) - uniform (points)")
    return fig


def plot_alpha_readers(net, ax=None):
    """The supernet's layer x width grid, each node coloured by which slice of
    alpha its cell reads, asked from ``net.alpha_for`` itself (so the picture
    cannot disagree with the code): one colour for tied, one per layer for
    layer-wise (LWAS), one per node for per-cell sharing.

    Args:
        net: a :class:`~hinas_lib.supernet.CompactSuperNet` (any ``alpha_sharing``).
        ax: axes to draw into (default: a new figure).
    """
    L, S = net.L, net.S
    n_slices = int(np.prod(net.alpha.shape[:-2]))
    reads = net.alpha_readers()
    cmap = plt.get_cmap("tab10" if n_slices <= 10 else "tab20")
    own = ax is None
    fig, ax = _fig_ax(ax, (1.2 * L + 2.0, 0.8 * S + 1.6))
    for (l, s), k in reads.items():
        ax.scatter([l], [s], s=1300, color=cmap(k % cmap.N), edgecolor="black", zorder=3)
        idx = ",".join(str(int(i)) for i in np.unravel_index(k, net.alpha.shape[:-2]))
        ax.text(l, s, f"α[{idx}]", ha="center", va="center", fontsize=9, zorder=4)
    for l in range(L):
        for s in range(S):
            if (l, s) not in reads:
                ax.scatter([l], [s], s=1300, facecolor="none", edgecolor="lightgrey", zorder=3)
    ax.set_xticks(range(L), labels=[f"layer {l}" for l in range(L)])
    ax.set_yticks(range(S), labels=[f"{f:g}x" for f in net.cfg.space.width_factors])
    ax.set_xlim(-0.6, L - 0.4)
    ax.set_ylim(S - 0.5, -0.5)
    ax.set_title(f"{net.cfg.space.alpha_sharing}: {len(set(reads.values()))} alpha(s) for {len(reads)} cells",
                 fontsize=10)
    if own:
        fig.tight_layout()
    return fig


def plot_width_grid(beta=None, mask=None, path=None, ax=None, *, levels: Optional[int] = None,
                    width_factors: Optional[Sequence[float]] = None):
    """The layer x width grid: nodes, possible moves (thicker and darker with more
    softmax(beta) weight), unreachable nodes grey, the chosen ``path`` in red."""
    if beta is not None:
        L, S = _tensor(beta).shape[:2]
    elif mask is not None:
        L, S = torch.as_tensor(mask).shape[:2]
    elif path is not None:
        L = len(path)
        S = levels or (len(width_factors) if width_factors else max(path) + 1)
    else:
        raise ValueError("plot_width_grid needs beta, mask or path")
    mask = move_mask(L, S) if mask is None else torch.as_tensor(mask, dtype=torch.bool)
    w = masked_softmax(_tensor(beta), mask) if beta is not None else None

    own = ax is None
    fig, ax = _fig_ax(ax, (1.3 * L + 2.5, 0.9 * S + 2.0))
    for l, src, k, s in possible_moves(mask):
        wt = float(w[l, src, k]) if w is not None else 0.5
        ax.annotate("", xy=(l, s), xytext=(l - 1, src),
                    arrowprops=dict(arrowstyle="-|>", lw=0.5 + 3.5 * wt, alpha=0.2 + 0.8 * wt,
                                    color="tab:blue", shrinkA=9, shrinkB=9))
        if w is not None:
            ax.text(l - 0.4, src + 0.6 * (s - src) - 0.08, f"{wt:.2f}", fontsize=7, color="tab:blue")
    exists = np.array([[s in reachable(l, S) for s in range(S)] for l in range(L)])
    ls, ss = np.nonzero(exists)
    ax.scatter(ls, ss, s=220, color="tab:blue", zorder=3, label="node")
    ls, ss = np.nonzero(~exists)
    ax.scatter(ls, ss, s=220, facecolor="none", edgecolor="lightgrey", zorder=3, label="unreachable")
    ax.scatter([-1], [0], s=220, marker="s", color="darkseagreen", zorder=3, label="stem")
    if path is not None:
        ax.plot([-1] + list(range(len(path))), [0] + list(path), color="tab:red", lw=3, zorder=4,
                label="chosen path")
    ax.set_xticks(range(-1, L), labels=["stem"] + [f"layer {l}" for l in range(L)])
    ax.set_yticks(range(S), labels=[f"{f:g}x" for f in width_factors] if width_factors
                  else [f"level {s}" for s in range(S)])
    ax.set_xlim(-1.5, L - 0.5)
    ax.set_ylim(S - 0.5, -0.5)  # narrow at the top, wider levels below
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4, fontsize=8, frameon=False)
    ax.set_title("width search space" + (" (beta weights)" if w is not None else ""))
    if own:  # never re-layout a figure the caller is composing
        fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------
# A search's curves, and the figures of a finished search
# ---------------------------------------------------------------------------

def plot_trajectories(history: Sequence[dict], key: str = "alpha", *, primitives: Optional[Sequence[str]] = None):
    """Architecture weights vs epoch, one subplot per layer. ``alpha``: softmax
    weight of each op, averaged over the cell's edges; ``beta``: weight of each
    possible move into each node."""
    recs = [h for h in history if h.get(key) is not None]
    if not recs:
        raise ValueError(f"no record in history has {key!r}")
    epochs, t = epochs_of(recs), _tensor([h[key] for h in recs])  # (T, L, ...)
    L = t.shape[1]
    series = []  # per layer: [(label, values over epochs)]
    if key == "alpha":
        w = torch.softmax(t, dim=-1)
        names = _op_names(primitives, t.shape[-1])
        for l in range(L):
            # per-node alphas (L,S,E,O): only nodes that exist were trained
            wl = w[:, l, reachable(l, t.shape[2])].flatten(1, 2) if t.dim() == 5 else w[:, l]
            series.append([(n, wl[:, :, o].mean(1)) for o, n in enumerate(names)])
    elif key == "beta":
        S = t.shape[2]
        mask = move_mask(L, S)
        w = masked_softmax(t, mask)
        series = [[(f"from level {s}: {MOVES[k]}", w[:, l, s, k]) for s in range(S) for k in range(3)
                   if mask[l, s, k]] for l in range(L)]
    else:
        raise ValueError(f"key must be 'alpha' or 'beta', got {key!r}")
    fig, axes = _grid(L, L, 4.2, 3.3, sharey=True)
    for l, ax in enumerate(axes):
        for label, ys in series[l]:
            ax.plot(epochs, ys.numpy(), marker=".", label=label)
        ax.set_title("all cells" if key == "alpha" and L == 1 else f"layer {l}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    axes[0].set_ylabel(f"softmax({key})" + (" (mean over edges)" if key == "alpha" else ""))
    fig.tight_layout()
    return fig


def plot_search_trajectory(trajectories: Dict[str, Sequence[dict]], *, edges: Optional[int] = None):
    """Does a search's alpha separate? Three panels over the epochs of one or more searches,
    from :func:`hinas_lib.history.search_trajectory` rows (``{label: rows}``): the spread of
    softmax(alpha) (mean over edges, solid; max, dashed), the derived genotype's edges that
    changed since the previous epoch, and its ``skip_connect`` edges (``edges``: their total,
    for the titles)."""
    of = f" (of {edges})" if edges else ""
    panels = (("spread_mean", "softmax(alpha) spread: max - min over an edge's ops"),
              ("changed_edges", f"derived edges changed since the previous epoch{of}"),
              ("skip_edges", f"skip_connect edges in the derived cells{of}"))
    fig, axes = plt.subplots(1, len(panels), figsize=(13.5, 3.6))
    for n, (label, rows) in enumerate(trajectories.items()):
        colour = f"C{n}"
        for ax, (key, title) in zip(axes, panels):
            pts = [(r["epoch"], r[key]) for r in rows if r[key] is not None]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, color=colour, label=label)
            ax.set_title(title, fontsize=9)
        axes[0].plot([r["epoch"] for r in rows], [r["spread_max"] for r in rows], "--", color=colour, lw=1)
    axes[0].axhline(0.0, color="k", lw=0.5)
    axes[0].set_ylabel("spread (uniform: 0)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_losses(history: Sequence[dict]):
    """Train/val (and architecture) loss on the left axis, validation PSNR on the right."""
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    epochs = epochs_of(history)

    def points(key):
        return [(e, h[key]) for e, h in zip(epochs, history) if h.get(key) is not None]

    for key, style in (("train_loss", "-"), ("val_loss", "--"), ("arch_loss", ":")):
        if points(key):
            ax.plot(*zip(*points(key)), style, marker=".", label=key)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    if points("val_psnr"):
        ax2.plot(*zip(*points("val_psnr")), color="tab:red", marker="o", label="val PSNR")
    ax2.set_ylabel("PSNR (dB)", color="tab:red")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    # beside the axes: inside, it hid the ends of the curves, where they matter most
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left", bbox_to_anchor=(1.15, 1.0), frameon=False)
    ax.set_title("search curves")
    fig.tight_layout()
    return fig


def write_search_figures(result) -> Optional[Path]:
    """The figures of a finished search (a :class:`~hinas_lib.search.SearchResult` with a
    folder) into ``out_dir/figures``: each cell and the width path (SVG), alpha, beta and
    the curves (PNG). The front ends pass it to ``Searcher(write_figures=...)``."""
    if result.out_dir is None:
        return None
    geno, net = result.genotype, result.net
    fig_dir = Path(result.out_dir) / FIGURES_DIR
    fig_dir.mkdir(exist_ok=True)
    for l in range(geno.layers):
        render(cell_graph(geno, l), fig_dir / f"cell_layer{l}", fmt="svg")
    render(width_path_graph(geno), fig_dir / "width_path", fmt="svg")
    sp = net.cfg.space
    figs = {"alpha": plot_alphas(net.alpha.detach().cpu(), sp.primitives, sp.blocks),
            "beta": plot_beta(net.beta.detach().cpu(), net.mask.cpu())}
    if result.history:
        figs["losses"] = plot_losses(result.history)
    for name, fig in figs.items():
        fig.savefig(fig_dir / f"{name}.png", dpi=100)
        plt.close(fig)  # only the figures made here, never the caller's
    return fig_dir


# ---------------------------------------------------------------------------
# Image comparisons
# ---------------------------------------------------------------------------

def _imshow(ax, im: np.ndarray) -> None:
    ax.imshow(im, cmap="gray" if im.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def image_grid(images: Sequence[np.ndarray], titles: Optional[Sequence] = None, *, crop=None,
               ncols: Optional[int] = None, size: float = 3.0):
    """Images (HxW or HxWx3 in [0, 1]) side by side. ``crop=(y, x, h, w)`` marks a
    box and adds a zoomed row under each row of images."""
    imgs = [np.clip(np.asarray(im, dtype=float), 0, 1) for im in images]
    imgs = [im[..., 0] if im.ndim == 3 and im.shape[2] == 1 else im for im in imgs]
    titles = [""] * len(imgs) if titles is None else [str(t) for t in titles]
    if len(titles) != len(imgs):
        raise ValueError(f"{len(imgs)} images but {len(titles)} titles")
    ncols = ncols or len(imgs)
    nrows = math.ceil(len(imgs) / ncols)
    per = 2 if crop else 1
    fig, axes = plt.subplots(nrows * per, ncols, figsize=(size * ncols, size * nrows * per), squeeze=False)
    H, W = max(im.shape[0] for im in imgs), max(im.shape[1] for im in imgs)
    for i, (im, title) in enumerate(zip(imgs, titles)):
        r, c = divmod(i, ncols)
        ax = axes[r * per, c]
        _imshow(ax, im)
        ax.set_title(title, fontsize=10)
        if crop:
            # the box is in the largest image's pixels; rescale it for smaller
            # images such as the low-resolution SR input
            fy, fx = im.shape[0] / H, im.shape[1] / W
            y, x = round(crop[0] * fy), round(crop[1] * fx)
            h, w = max(1, round(crop[2] * fy)), max(1, round(crop[3] * fx))
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="red", linewidth=1.5))
            zoom = axes[r * per + 1, c]
            _imshow(zoom, im[y:y + h, x:x + w])
            for spine in zoom.spines.values():
                spine.set_edgecolor("red")
    for i in range(len(imgs), nrows * ncols):  # empty slots of a ragged last row
        r, c = divmod(i, ncols)
        for k in range(per):
            fig.delaxes(axes[r * per + k, c])
    fig.tight_layout()
    return fig


__all__ = ["plot_alpha_heatmap", "plot_alphas", "plot_beta", "plot_alpha_readers", "plot_width_grid",
           "plot_trajectories", "plot_search_trajectory", "plot_losses", "image_grid", "write_search_figures"]
