"""A search's live plot for notebooks: an ``on_epoch`` callback that redraws the curves
and the alpha/beta heatmaps inside a widget while the search runs (ipywidgets, an
optional extra, is imported only when one is made)."""
from __future__ import annotations

from typing import Dict, List, Sequence

from . import plots
from .config import Config


class LivePlot:
    """``on_epoch`` callback: keeps the epoch records and redraws, inside one
    widget, the loss/PSNR curves and heatmaps of the current alpha and beta.

    Why a widget and not display handles: inside an ipywidgets ``Output`` (the
    search panel's) IPython display handles are never applied, so curves drawn
    that way froze at epoch 0. Each figure lives in its own ``Output`` whose
    content is replaced every epoch (:func:`hinas_lib.widgets.show_figure`),
    which redraws anywhere and leaves a progress bar above it alone.

    Args:
        cfg: the search's config (primitives, blocks, width factors, epochs).
        kinds: which figures, from :attr:`KINDS` (heatmaps of the latest
            alpha/beta, and their trajectories over the epochs).
    """

    KINDS = ("losses", "alpha", "beta", "alpha_trajectory", "beta_trajectory")
    DEFAULT_KINDS = ("losses", "alpha", "beta")

    def __init__(self, cfg: Config, kinds: Sequence[str] = DEFAULT_KINDS):
        bad = set(kinds) - set(self.KINDS)
        if bad:
            raise ValueError(f"unknown plot kind(s) {sorted(bad)}; choose from {self.KINDS}")
        import ipywidgets as W  # noqa: PLC0415 (an optional extra, needed only in notebooks)

        self.cfg, self.kinds = cfg, tuple(kinds)
        self.history: List[Dict] = []
        self.status = W.HTML("<i>waiting for the first epoch ...</i>")
        self.outputs = {kind: W.Output() for kind in self.kinds}
        self.widget = W.VBox([self.status, *self.outputs.values()])
        self._shown = False

    def figure(self, kind: str):
        """A new figure of ``kind`` from the records so far."""
        last, sp = self.history[-1], self.cfg.space
        if kind == "losses":
            return plots.plot_losses(self.history)
        if kind == "alpha":
            return plots.plot_alphas(last["alpha"], sp.primitives, sp.blocks)
        if kind == "beta":
            return plots.plot_beta(last["beta"], width_factors=sp.width_factors)
        return plots.plot_trajectories(self.history, kind.split("_")[0], primitives=sp.primitives)

    def __call__(self, rec: Dict) -> None:
        from .widgets import show_figure  # noqa: PLC0415 (ipywidgets is an optional extra)

        self.history.append(rec)
        if not self._shown:  # shown at the first record, where the caller's output is
            self._ipython_display_()
        for kind in self.kinds:
            show_figure(self.outputs[kind], self.figure(kind))
        # the status last, so that it never names an epoch the figures do not show yet
        psnr = rec.get("val_psnr")
        phase = "warm-up (weights only)" if rec.get("arch_loss") is None else "searching alpha, beta"
        self.status.value = (f"<b>epoch {rec['epoch'] + 1} of {self.cfg.search.epochs}</b>: {phase}"
                             + (f", validation PSNR {psnr:.2f} dB" if psnr is not None else ""))

    def _ipython_display_(self):
        from IPython.display import display  # noqa: PLC0415 (only inside a notebook)
        self._shown = True
        display(self.widget)


__all__ = ["LivePlot"]
