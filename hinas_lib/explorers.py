"""Small interactive widgets for the course notebooks: move a control, see the effect.

* :class:`MixedEdgeExplorer` (notebook 1) -- one slider per primitive's alpha on
  one mixed edge; shows softmax(alpha) as bars and the edge's output image.
* :class:`WidthPathPicker` (notebook 3) -- one dropdown per layer offering only
  the legal width moves; shows the path on the grid and the network's size.
* :class:`ViterbiExplorer` (notebook 3) -- beta sliders on the moves out of one grid
  node; shows the width path Viterbi decodes (and a greedy walk's) on the grid.
* :class:`DenoiseExplorer` (notebooks 5 and 7) -- a noise-sigma slider on a zoo
  denoiser; shows noisy / non-local means (and BM3D with ``bm3d=True``) / the network
  with their PSNR.
* :class:`SRExplorer` (notebook 6) -- a scale selector over the zoo's SR models;
  shows LR / bicubic / the network / HR with their PSNR.
* :class:`SharingExplorer` (notebook 2) -- alpha sharing mode, layers and blocks; shows
  which alpha slice every cell reads and the sizes that follow.
* :class:`DerivationExplorer` (notebook 5) -- an epoch slider over search logs; shows each
  block's edge strengths, the two the top-2 rule keeps and by what margin.

Each keeps what it computed last in ``self.state`` (a dict), draws into
``self.output`` through :func:`hinas_lib.widgets.show_figure`, and exposes its
controls, so tests drive it without a browser: set a control's ``.value`` and
read ``state`` and ``output.outputs``. Display one with ``explorer`` as the last
expression of a cell (or ``display(explorer)``).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from . import data, plots
from .cells import MixedOp
from .config import Config
from .evaluate import run_model
from .derive import derive_cell, edge_choices
from .describe import candidate_architectures
from .genotype import Genotype, default_genotype, edge_index, edges_per_cell, input_name
from .grid import MOVES, masked_softmax, move_mask, path_error, path_log_prob, possible_moves, viterbi
from .metrics import psnr
from .model_files import load_model
from .network import CompactNet
from .supernet import build_supernet
from .tasks import get_task
from .widgets import W, show_figure, shown_images
from .zoo import nearest_model


class _Explorer:
    """Shared plumbing: an Output to draw into and notebook display."""

    widget: "W.Widget"

    def __init__(self):
        self.output = W.Output()
        self.state: Dict = {}

    def _ipython_display_(self):
        from IPython.display import display  # noqa: PLC0415 (only inside a notebook)
        display(self.widget)

    def snapshot(self):
        """The picture the widget shows now, as a static image: it stays in a saved
        notebook, where the live widget is only a placeholder until the cells run."""
        from IPython.display import Image  # noqa: PLC0415

        pngs = shown_images(self.output)
        return Image(data=pngs[0]) if pngs else None


def _photo(name: str, channels: int, size: int) -> np.ndarray:
    """A centre crop of an embedded photograph (held out from every search and training)."""
    return data.centre_crop(data.load_embedded(name, channels), size)


# ---------------------------------------------------------------------------
# Notebook 1: one mixed edge
# ---------------------------------------------------------------------------

class MixedEdgeExplorer(_Explorer):
    """Alpha sliders on one mixed edge of a search cell.

    The edge holds every primitive with fixed random weights (as at the start
    of a search; BN in eval mode, so it does not renormalise the output). The
    output is ``MixedOp(x, softmax(alpha))``: drag one alpha up and the output
    becomes that op's output; give ``none`` the weight and it fades to zero.

    Args:
        primitives: the candidate ops.
        image: the input picture's name (an embedded grey photograph).
        size: side of the crop.
        seed: for the ops' random weights.
    """

    def __init__(self, primitives: Sequence[str], image: str = "camera", size: int = 96, seed: int = 0):
        super().__init__()
        self.primitives = list(primitives)
        torch.manual_seed(seed)
        self.op = MixedOp(1, self.primitives, affine=False).eval()
        self.x = data.to_tensor(_photo(image, 1, size))[None]
        with torch.no_grad():  # each op's own output, to show what is being mixed
            eye = torch.eye(len(self.primitives))
            self.op_outputs = [self.op(self.x, eye[k])[0, 0].numpy() for k in range(len(self.primitives))]
        # one colour range for every picture, so fading to `none` shows as fading
        allv = np.concatenate([self.x[0, 0].numpy().ravel()] + [o.ravel() for o in self.op_outputs])
        self.vrange = (float(np.percentile(allv, 1)), float(np.percentile(allv, 99)))
        self.sliders = {p: W.FloatSlider(value=0.0, min=-4.0, max=4.0, step=0.1, description=p,
                                         continuous_update=False, style={"description_width": "110px"},
                                         layout=W.Layout(width="440px"))
                        for p in self.primitives}
        for s in self.sliders.values():
            s.observe(self._redraw, names="value")
        reset = W.Button(description="all alpha = 0")
        reset.on_click(lambda _b: self.set_alpha([0.0] * len(self.primitives)))
        # the slider column never shrinks (narrowed, it hid the handles and readouts at 1400 px);
        # when the window is too narrow for both, the figure wraps below it
        column = W.VBox([W.HTML("<b>alpha of each op on this edge</b>"), *self.sliders.values(), reset],
                        layout=W.Layout(flex="0 0 auto", width="460px"))
        self.widget = W.HBox([column, self.output], layout=W.Layout(flex_flow="row wrap"))
        self._redraw()

    def set_alpha(self, values: Sequence[float]) -> None:
        """Set every slider at once (one redraw)."""
        for s, v in zip(self.sliders.values(), values):
            s.unobserve(self._redraw, names="value")
            s.value = float(v)
            s.observe(self._redraw, names="value")
        self._redraw()

    def alpha(self) -> torch.Tensor:
        return torch.tensor([self.sliders[p].value for p in self.primitives])

    def _redraw(self, _change=None) -> None:
        w = torch.softmax(self.alpha(), dim=0)
        with torch.no_grad():
            y = self.op(self.x, w)[0, 0].numpy()
        self.state = {"weights": w, "output": y}
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.3), gridspec_kw={"width_ratios": [1.6, 1, 1]})
        ax = axes[0]
        ax.barh(self.primitives, w.numpy(), color=["lightgrey" if p == "none" else "tab:blue"
                                                   for p in self.primitives])
        ax.axvline(1 / len(self.primitives), color="gray", ls="--", lw=1, label="uniform")
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
        ax.set_xlabel("softmax(alpha)")
        ax.legend(fontsize=8, loc="lower right")
        lo, hi = self.vrange
        for a, img, title in ((axes[1], self.x[0, 0].numpy(), "input x"),
                              (axes[2], y, "mixed output  sum_k w_k o_k(x)")):
            a.imshow(img, cmap="gray", vmin=lo, vmax=hi)
            a.set_title(title, fontsize=10)
            a.set_xticks([])
            a.set_yticks([])
        fig.tight_layout()
        show_figure(self.output, fig)


# ---------------------------------------------------------------------------
# Notebook 3: a width path by hand
# ---------------------------------------------------------------------------

class WidthPathPicker(_Explorer):
    """One dropdown per layer; each offers only the levels one move away from
    the previous layer's (the stem is at level 0). Changing a layer clamps the
    later ones to the nearest legal level. Shows the path on the grid and the
    parameters of the network it gives (the hand-made reference cells of
    :func:`~hinas_lib.genotype.default_genotype`, at ``cfg.train.filters``).

    Args:
        cfg: the config (layers, blocks, width factors, task, filters).
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        sp = cfg.space
        self.L, self.factors = sp.layers, tuple(sp.width_factors)
        self.cells = default_genotype(sp.layers, sp.blocks, sp.width_factors).cells
        self.dropdowns = [W.Dropdown(description=f"layer {l}", style={"description_width": "60px"},
                                     layout=W.Layout(width="160px")) for l in range(self.L)]
        self._busy = False
        self._sync_options([0] * self.L)
        for d in self.dropdowns:
            d.observe(self._changed, names="value")
        self.widget = W.VBox([W.HBox(self.dropdowns), self.output])
        self._redraw()

    def legal_levels(self, prev: int) -> List[int]:
        """Levels reachable in one move (lower / keep / raise) from level ``prev``."""
        return [s for s in (prev - 1, prev, prev + 1) if 0 <= s < len(self.factors)]

    def path(self) -> List[int]:
        return [int(d.value) for d in self.dropdowns]

    def _sync_options(self, wanted: Sequence[int]) -> None:
        # rebuild every dropdown's options from the layer before it, keeping each
        # wanted level when still legal, else the nearest legal one
        self._busy = True
        try:
            prev = 0
            for d, want in zip(self.dropdowns, wanted):
                legal = self.legal_levels(prev)
                value = min(legal, key=lambda s: (abs(s - want), s))
                d.options = [(f"{self.factors[s]:g}x", s) for s in legal]
                d.value = value
                prev = value
        finally:
            self._busy = False

    def _changed(self, _change=None) -> None:
        if self._busy:
            return
        self._sync_options(self.path())
        self._redraw()

    def set_path(self, path: Sequence[int]) -> None:
        """Choose a whole path at once (illegal steps are clamped to legal ones)."""
        self._sync_options(list(path))
        self._redraw()

    def genotype(self) -> Genotype:
        return Genotype(cells=self.cells, path=tuple(self.path()), width_factors=self.factors)

    def _redraw(self) -> None:
        geno = self.genotype()
        assert path_error(geno.path, len(self.factors)) is None  # the dropdowns only offer legal moves
        net = CompactNet(geno, self.cfg)
        self.state = {"path": list(geno.path), "params": net.num_params(), "widths": net.widths}
        fig = plots.plot_width_grid(path=geno.path, levels=len(self.factors), width_factors=self.factors)
        fig.axes[0].set_title(f"path {' -> '.join(f'{self.factors[s]:g}x' for s in geno.path)}: "
                              f"{self.state['params']:,} parameters (F={self.cfg.train.filters}, "
                              f"channels {net.widths})", fontsize=10)
        show_figure(self.output, fig)


def greedy_path(beta: torch.Tensor, mask: torch.Tensor) -> List[int]:
    """The path of a greedy walk: from the stem, always the move with the most weight out of
    the current node (ties towards the lower level). What Viterbi is *not*: it can walk into a
    node whose moves are all weak."""
    w = masked_softmax(beta.detach(), mask)
    path, s = [], 0
    for l in range(beta.shape[0]):
        k = max((k for k in range(3) if mask[l, s, k]), key=lambda k: (float(w[l, s, k]), -k))
        s = s - 1 + k
        path.append(s)
    return path


class ViterbiExplorer(_Explorer):
    """Sliders on the beta logits of the moves out of one grid node; the grid redrawn with
    the move weights softmax(beta), the most probable width path (:func:`hinas_lib.grid.viterbi`,
    red) and a greedy walk's path (dashed), with their probabilities.

    Args:
        layers: layers L of the grid.
        width_factors: one per width level (S levels).
        beta: where beta starts, shape (L, S, 3) (default: random, seeded).
        node: ``(layer, source level)``, the slice ``beta[layer, level]`` the sliders start on:
            the moves out of node (layer - 1, level) (out of the stem for layer 0).
        seed: for the default beta.
    """

    def __init__(self, layers: int = 4, width_factors: Sequence[float] = (1.0, 1.5, 2.0),
                 beta: Optional[torch.Tensor] = None, node: Sequence[int] = (1, 1), seed: int = 0):
        super().__init__()
        self.factors = tuple(width_factors)
        self.L, self.S = int(layers), len(self.factors)
        self.mask = move_mask(self.L, self.S)
        if beta is None:
            beta = torch.randn(self.L, self.S, 3, generator=torch.Generator().manual_seed(seed))
        if tuple(beta.shape) != (self.L, self.S, 3):
            raise ValueError(f"beta: expected shape {(self.L, self.S, 3)}, got {tuple(beta.shape)}")
        self.beta = beta.detach().clone().float()
        nodes = sorted({(l, src) for l, src, _k, _d in possible_moves(self.mask)})
        self.node = W.Dropdown(options=[(self.node_name(l, src), (l, src)) for l, src in nodes],
                               value=tuple(node), description="moves out of", style={"description_width": "90px"},
                               layout=W.Layout(width="260px"))
        self.sliders = [W.FloatSlider(value=0.0, min=-4.0, max=4.0, step=0.1, description=f"beta {m}",
                                      continuous_update=False, style={"description_width": "90px"},
                                      layout=W.Layout(width="360px")) for m in MOVES]
        self._busy = False
        self._load_node()
        self.node.observe(self._node_changed, names="value")
        for k, sl in enumerate(self.sliders):
            sl.observe(lambda ch, k=k: self._slid(k, ch), names="value")
        self.widget = W.VBox([W.HBox([self.node, W.VBox(self.sliders)]), self.output])
        self._redraw()

    @staticmethod
    def node_name(layer: int, level: int) -> str:
        return f"stem -> layer 0" if layer == 0 else f"node ({layer - 1},{level}) -> layer {layer}"

    def _load_node(self) -> None:
        # show the chosen node's beta; moves that cannot happen are disabled (masked to -inf)
        l, s = self.node.value
        self._busy = True
        try:
            for k, sl in enumerate(self.sliders):
                sl.value = float(self.beta[l, s, k])
                sl.disabled = not bool(self.mask[l, s, k])
        finally:
            self._busy = False

    def _node_changed(self, _change=None) -> None:
        self._load_node()

    def _slid(self, k: int, change) -> None:
        if self._busy:
            return
        l, s = self.node.value
        self.beta[l, s, k] = float(change["new"])
        self._redraw()

    def set_beta(self, layer: int, level: int, values: Sequence[float]) -> None:
        """Choose node (``layer``, ``level``) and set its three logits (one redraw)."""
        self.node.value = (int(layer), int(level))
        self.beta[layer, level] = torch.tensor([float(v) for v in values])
        self._load_node()
        self._redraw()

    def _redraw(self) -> None:
        path, logp = viterbi(self.beta, self.mask)
        greedy = greedy_path(self.beta, self.mask)
        p_greedy = float(np.exp(path_log_prob(self.beta, self.mask, greedy)))
        self.state = {"beta": self.beta.clone(), "path": path, "prob": float(np.exp(logp)),
                      "greedy": greedy, "greedy_prob": p_greedy}
        fig = plots.plot_width_grid(beta=self.beta, mask=self.mask, path=path, width_factors=self.factors)
        ax = fig.axes[0]
        l, s = self.node.value
        ax.scatter([l - 1], [s], s=520, facecolor="none", edgecolor="tab:orange", lw=2, zorder=5)
        if greedy != path:
            ax.plot([-1] + list(range(self.L)), [0] + greedy, color="dimgrey", lw=2, ls="--", zorder=4)
        fmt = lambda p: " -> ".join(f"{self.factors[v]:g}x" for v in p)  # noqa: E731
        title = f"Viterbi (red): {fmt(path)}, P = {self.state['prob']:.3f}"
        title += (f"\ngreedy walk (dashed): {fmt(greedy)}, P = {p_greedy:.3f}" if greedy != path
                  else "\nthe greedy walk finds the same path")
        ax.set_title(title, fontsize=10)
        show_figure(self.output, fig)


# ---------------------------------------------------------------------------
# Notebooks 5-7: zoo models on a photograph
# ---------------------------------------------------------------------------

AUTO = "auto (nearest sigma)"


class DenoiseExplorer(_Explorer):
    """A noise-sigma slider on a zoo denoiser, next to non-local means.

    Args:
        model: where the dropdown starts: a zoo name (``denoise-s30``), a model
            path, or :data:`AUTO` (the model trained nearest the slider's sigma).
        models: zoo names to choose from (default: just ``model``); with
            several, :data:`AUTO` is offered first.
        image: an embedded photograph none of them was trained on.
        size: side of its centre crop.
        sigma: where the slider starts.
        bm3d: also show BM3D (the task's ``extra_baselines``; about a second per redraw).
    """

    def __init__(self, model: str = "denoise-s30", models: Optional[Sequence[str]] = None, image: str = "camera",
                 size: int = 128, sigma: float = 30.0, bm3d: bool = False):
        super().__init__()
        self.bm3d = bool(bm3d)
        self._load = load_model
        self._cache: Dict[str, tuple] = {}
        self.image = image
        self.size = size
        names = list(models or [model])
        self.choices = ([AUTO] if len(names) > 1 else []) + [n for n in names if n != AUTO]
        self.model = W.Dropdown(options=self.choices, value=model, description="model")
        self.sigma = W.IntSlider(value=int(sigma), min=5, max=75, step=5, description="noise sigma",
                                 continuous_update=False)
        self.model.observe(self._redraw, names="value")
        self.sigma.observe(self._redraw, names="value")
        self.widget = W.VBox([W.HBox([self.model, self.sigma]), self.output])
        self._redraw()

    def _net(self, name: str):
        if name not in self._cache:
            net, cfg, _ = self._load(name, "cpu")
            self._cache[name] = (net, cfg)
        return self._cache[name]

    def chosen(self) -> str:
        """The model to run: the dropdown's, or under AUTO the per-sigma model trained nearest
        the sigma (a blind model, trained over a range, is picked by hand)."""
        if self.model.value != AUTO:
            return self.model.value
        return self.auto_choice(self.sigma.value)

    def auto_choice(self, sigma: float) -> str:
        """The model :data:`AUTO` runs at ``sigma``, without moving the widgets (an exercise
        check must neither change the learner's view nor show the answer in it)."""
        cfgs = {n: self._net(n)[1].task for n in self.choices[1:]}
        trained = {n: None if t.sigma_range is not None else list(t.sigmas) for n, t in cfgs.items()}
        if not any(trained.values()):  # only blind models: by the sigmas they were validated at
            trained = {n: list(t.sigmas) for n, t in cfgs.items()}
        return nearest_model(sigma, trained)

    def _redraw(self, _change=None) -> None:
        name = self.chosen()
        net, cfg = self._net(name)
        task = get_task(cfg)
        clean = data.to_tensor(_photo(self.image, cfg.task.channels, self.size))
        sigma = float(self.sigma.value)
        noisy, _ = task.eval_pair(clean, self.image, level=sigma)  # seeded by image name and sigma
        outs = {"noisy": noisy.clamp(0, 1), "NLM": task.baseline(noisy, sigma)}
        if self.bm3d:
            outs["BM3D"] = task.extra_baselines["bm3d"](noisy, sigma)
        outs[f"HiNAS ({name})"] = run_model(net, noisy, cfg)
        scores = {k: psnr(v, clean, **task.metric_kwargs) for k, v in outs.items()}
        self.state = {"sigma": sigma, "model": name, "psnr": scores}
        rng = cfg.task.sigma_range
        trained = (f"over sigma {rng[0]:g}-{rng[1]:g}: blind" if rng is not None
                   else "at sigma " + ", ".join(f"{s:g}" for s in cfg.task.sigmas))
        fig = plots.image_grid([data.to_numpy(v) for v in (*outs.values(), clean)],
                             [f"{k}\n{scores[k]:.2f} dB" for k in outs] + ["clean"], size=2.6)
        fig.suptitle(f"sigma = {sigma:g} (the model was trained {trained})", fontsize=10)
        fig.tight_layout()
        show_figure(self.output, fig)


class SRExplorer(_Explorer):
    """A scale selector over the zoo's SR models: LR, bicubic, the network and
    HR (a zoom on the centre), with PSNR on the Y channel, ``scale`` pixels shaved.

    Args:
        models: scale -> zoo name (default ``sr-x2``, ``sr-x3``, ``sr-x4``).
        image: an embedded RGB photograph.
        size: side of the HR centre crop (a multiple of every scale is taken).
    """

    def __init__(self, models: Optional[Dict[int, str]] = None, image: str = "astronaut", size: int = 192):
        super().__init__()
        self._load = load_model
        self.models = dict(models or {2: "sr-x2", 3: "sr-x3", 4: "sr-x4"})
        self.image, self.size = image, size
        self.scale = W.ToggleButtons(options=[(f"x{r}", r) for r in self.models], value=next(iter(self.models)),
                                     description="scale")
        self.scale.observe(self._redraw, names="value")
        self.widget = W.VBox([self.scale, self.output])
        self._redraw()

    def _redraw(self, _change=None) -> None:
        r = int(self.scale.value)
        net, cfg, _ = self._load(self.models[r], "cpu")
        task = get_task(cfg)
        hr = data.to_tensor(data.centre_crop(data.load_embedded(self.image, cfg.task.channels), self.size, r))
        lr, hr = task.eval_pair(hr, self.image)
        outs = {"bicubic": task.baseline(lr), f"HiNAS ({self.models[r]})": run_model(net, lr, cfg)}
        scores = {k: psnr(v, hr, **task.metric_kwargs) for k, v in outs.items()}
        self.state = {"scale": r, "model": self.models[r], "psnr": scores, "lr_shape": tuple(lr.shape)}
        H, Wd = hr.shape[-2:]
        box = (H // 3, Wd // 3, H // 3, Wd // 3)
        fig = plots.image_grid([data.to_numpy(lr)] + [data.to_numpy(v) for v in outs.values()] + [data.to_numpy(hr)],
                             [f"LR input ({lr.shape[-1]} px)"] + [f"{k}\n{scores[k]:.2f} dB" for k in outs]
                             + [f"HR ({Wd} px)"], crop=box, size=2.4)
        fig.suptitle(f"x{r}: PSNR on Y, {r} border pixels shaved", fontsize=10)
        fig.tight_layout()
        show_figure(self.output, fig)


__all__ = ["MixedEdgeExplorer", "WidthPathPicker", "ViterbiExplorer", "greedy_path", "DenoiseExplorer", "SRExplorer", "AUTO"]


# ---------------------------------------------------------------------------
# Notebook 2: who reads which alpha
# ---------------------------------------------------------------------------

class SharingExplorer(_Explorer):
    """The alpha sharing mode, the number of layers and of blocks as controls; shows the grid
    coloured by the alpha slice each cell reads (asked from the supernet's own ``alpha_for``)
    and the sizes that follow: alpha's shape, the architecture parameters, how many slices no
    cell reads, and the candidate architectures.

    Args:
        cfg: the config whose other settings (widths, primitives) the supernets keep.
    """

    MODES = ("tied", "layer", "cell")

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        sp = cfg.space
        self.mode = W.ToggleButtons(options=[("tied (DARTS)", "tied"), ("layer-wise (HiNAS)", "layer"),
                                             ("per-cell", "cell")], value=sp.alpha_sharing, description="alpha")
        self.layers = W.IntSlider(value=sp.layers, min=1, max=6, description="layers", continuous_update=False)
        self.blocks = W.IntSlider(value=sp.blocks, min=1, max=5, description="blocks", continuous_update=False)
        for c in (self.mode, self.layers, self.blocks):
            c.observe(self._redraw, names="value")
        self.widget = W.VBox([self.mode, W.HBox([self.layers, self.blocks]), self.output])
        self._redraw()

    def _redraw(self, _change=None) -> None:
        sp = self.cfg.space
        cfg = self.cfg.replace(space=dict(alpha_sharing=self.mode.value, layers=self.layers.value,
                                          blocks=self.blocks.value, filters=4))  # widths do not matter here
        net = build_supernet(cfg)
        n_ops = len([p for p in sp.primitives if p != "none"])
        slices = int(np.prod(net.alpha.shape[:-2]))
        read = set(net.alpha_readers().values())
        self.state = {"mode": self.mode.value, "layers": net.L, "blocks": self.blocks.value,
                      "alpha_shape": tuple(net.alpha.shape), "arch_params": sum(p.numel() for p in net.arch_parameters()),
                      "slices": slices, "unread_slices": slices - len(read), "cells": len(net.nodes),
                      "architectures": candidate_architectures(net.L, net.S, self.blocks.value, n_ops, self.mode.value)}
        fig = plots.plot_alpha_readers(net)
        st = self.state
        fig.axes[0].set_title(f"{st['mode']}: alpha {'x'.join(map(str, st['alpha_shape']))}, "
                              f"{st['arch_params']} architecture parameters (with beta), "
                              f"{st['unread_slices']} slice(s) no cell reads\n"
                              f"{st['cells']} cells; {st['architectures']:.3g} candidate architectures", fontsize=9)
        fig.tight_layout()
        show_figure(self.output, fig)


# ---------------------------------------------------------------------------
# Notebook 5: how sure is the top-2 rule?
# ---------------------------------------------------------------------------

class DerivationExplorer(_Explorer):
    """An epoch slider and a layer picker over search logs; shows, block by block, each
    incoming edge's strength (its best op other than ``none``, softmax over all ops) with the
    two the top-2 rule keeps, and the *margin*: how much weaker the best dropped edge is than
    the weaker kept one. Near-uniform alpha gives margins of thousandths: the derived cell is
    a coin toss there.

    Args:
        logs: {label: the search's log records (``history.load_history``)}, each with ``alpha``
            (logits, layer-wise: (L, E, |O|)) and ``epoch``.
        primitives: the candidate ops of the logs' search space (the number of blocks is read
            from each log's alpha: E = B (B + 3) / 2 edges).
    """

    def __init__(self, logs: Dict[str, List[dict]], primitives: Sequence[str]):
        super().__init__()
        self.logs = {k: [r for r in v if "alpha" in r] for k, v in logs.items()}
        self.primitives = list(primitives)
        first = next(iter(self.logs))
        self.search = W.Dropdown(options=list(self.logs), value=first, description="search",
                                 layout=W.Layout(width="420px"))
        self.epoch = W.IntSlider(value=len(self.logs[first]) - 1, min=0, max=len(self.logs[first]) - 1,
                                 description="epoch", continuous_update=False)
        self.layer = W.Dropdown(options=list(range(len(self.logs[first][0]["alpha"]))), value=0, description="layer",
                                layout=W.Layout(width="160px"))
        self._busy = False
        self.search.observe(self._search_changed, names="value")
        for c in (self.epoch, self.layer):
            c.observe(self._redraw, names="value")
        self.widget = W.VBox([W.HBox([self.search, self.layer]), self.epoch, self.output])
        self._redraw()

    def _search_changed(self, _change=None) -> None:
        self._busy = True
        try:
            log = self.logs[self.search.value]
            self.epoch.max = len(log) - 1
            self.epoch.value = len(log) - 1
            self.layer.options = list(range(len(log[0]["alpha"])))
            self.layer.value = 0
        finally:
            self._busy = False
        self._redraw()

    def _redraw(self, _change=None) -> None:
        if self._busy:
            return
        rec = self.logs[self.search.value][self.epoch.value]
        alpha = torch.tensor(rec["alpha"], dtype=torch.float64)[self.layer.value]
        blocks = next(b for b in range(1, 64) if edges_per_cell(b) >= alpha.shape[0])
        if edges_per_cell(blocks) != alpha.shape[0]:
            raise ValueError(f"{self.search.value}: alpha has {alpha.shape[0]} edges, which no number of blocks gives")
        strength = [s for s, _ in edge_choices(alpha, self.primitives)]
        cell = derive_cell(alpha, self.primitives, blocks)
        edges = edge_index(blocks)
        margins = []
        fig, axes = plt.subplots(1, blocks, figsize=(2.6 * blocks + 1, 3.0), squeeze=False)
        for b, ax in enumerate(axes[0]):
            mine = [(e, j) for e, (bb, j) in enumerate(edges) if bb == b]
            kept = {j for _, j in cell[b]}
            vals = [float(strength[e]) for e, _ in mine]
            kept_vals = [v for (e, j), v in zip(mine, vals) if j in kept]
            dropped = [v for (e, j), v in zip(mine, vals) if j not in kept]
            margins.append(min(kept_vals) - max(dropped) if dropped else float("nan"))
            ax.bar(range(len(mine)), vals, color=["tab:red" if j in kept else "lightgrey" for _, j in mine])
            ax.axhline(1 / len(self.primitives), color="k", lw=0.8, ls=":")
            ax.set_xticks(range(len(mine)), labels=[input_name(j) for _, j in mine])
            lo, hi = min(vals), max(vals)
            pad = max(hi - lo, 1e-3) * 0.6
            ax.set_ylim(max(0.0, lo - pad), hi + pad)
            m = margins[-1]
            ax.set_title((f"block {b}: margin {m:.4f}" if m >= 1e-3 else f"block {b}: margin {m:.1e}")
                         if dropped else f"block {b}: both inputs kept",
                         fontsize=9)
        axes[0][0].set_ylabel("edge strength")
        self.state = {"search": self.search.value, "epoch": int(rec.get("epoch", self.epoch.value)),
                      "layer": self.layer.value, "cell": cell, "margins": margins,
                      "strengths": strength}
        fig.suptitle(f"{self.search.value}, epoch {self.state['epoch']}, layer {self.layer.value}: red = kept by "
                     f"the top-2 rule; dotted = uniform 1/{len(self.primitives)}", fontsize=9)
        fig.tight_layout()
        show_figure(self.output, fig)
