"""A small ipywidgets panel to set up and launch a HiNAS search from a notebook,
and the helper every course widget uses to show a figure.

Everything runs through :class:`~hinas_lib.config.Config`, so the panel accepts
exactly what the CLI and YAML files accept, and bad values produce the same
``ConfigError`` naming the field. The panel works without a browser: tests set
``panel.controls[name].value`` and call ``panel.click_run()``.

Figures inside widgets: an ``ipywidgets.Output`` does not apply IPython display
handles (``display(..., display_id=True).update()``), so a figure "updated"
that way never changes inside a panel. :func:`show_figure` instead replaces the
Output's ``outputs`` with a PNG of the figure: a synced trait, which JupyterLab
redraws at once, and which works without a kernel (tests read it back).
"""
from __future__ import annotations

import base64
import io
from typing import Callable, Dict, Optional

try:
    import ipywidgets as W
except ImportError as e:  # an optional extra: say how to get it
    raise ImportError("hinas_lib.widgets needs ipywidgets: pip install 'ipywidgets>=8' "
                      "(or pip install 'hinas[notebooks]')") from e

from .config import ALPHA_SHARING, PRESET_TASKS, Config, ConfigError, get_preset
from .tasks import task_class, with_level

import matplotlib.pyplot as plt

_STYLE = {"description_width": "150px"}
_LAYOUT = W.Layout(width="320px")

# The one list of what the panel controls: (section, field, label, kind); a tuple
# as kind is a dropdown's options. The task's level (noise sigma, SR scale) is
# added per task by SearchPanel.
FIELDS = (
    ("space", "layers", "layers L", int),
    ("space", "blocks", "blocks per cell B", int),
    ("space", "filters", "filters F", int),
    ("space", "width_factors", "width factors", "floats"),
    ("space", "alpha_sharing", "alpha sharing", ALPHA_SHARING),
    ("space", "cell_sharing", "cell sharing (HiNAS)", bool),
    ("search", "w_lr", "weight lr", float),
    ("search", "a_lr", "arch lr", float),
    ("search", "warmup_epochs", "warm-up epochs", int),
    ("search", "epochs", "epochs", int),
    ("search", "steps_per_epoch", "steps per epoch", int),
    ("search", "batch_size", "batch size", int),
    ("search", "crop", "crop (px)", int),
)


def figure_png(fig, dpi: int = 80) -> bytes:
    """The PNG bytes of a matplotlib figure (``dpi`` keeps widget images small)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def show_figure(output: "W.Output", *figs, dpi: int = 80) -> None:
    """Replace what ``output`` shows with ``figs`` (as PNG images) and close them.

    Args:
        output: the ipywidgets Output to draw into; its previous content goes.
        figs: matplotlib figures, shown one below the other.
        dpi: resolution of the PNGs.
    """
    items = []
    for fig in figs:
        png = base64.b64encode(figure_png(fig, dpi)).decode("ascii")
        items.append({"output_type": "display_data", "metadata": {},
                      "data": {"image/png": png, "text/plain": f"<Figure: {fig.get_label() or 'plot'}>"}})
        plt.close(fig)  # shown through the Output only; never a second time below the cell
    output.outputs = tuple(items)


def shown_images(output: "W.Output") -> list:
    """The PNG bytes an Output currently shows (for tests and checks)."""
    return [base64.b64decode(o["data"]["image/png"]) for o in output.outputs
            if "image/png" in o.get("data", {})]


def parse_widths(text: str) -> tuple:
    """"1, 1.5, 2" -> (1.0, 1.5, 2.0); anything else is a ConfigError on the field."""
    try:
        return tuple(float(t) for t in text.replace(",", " ").split())
    except ValueError:
        raise ConfigError(f"space.width_factors: expected numbers separated by commas, got {text!r}") from None


def _control(kind, value, label) -> W.Widget:
    if isinstance(kind, tuple):
        return W.Dropdown(options=list(kind), value=value, description=label, style=_STYLE, layout=_LAYOUT)
    if kind is bool:
        return W.Checkbox(value=value, description=label, indent=False)
    if kind == "floats":
        return W.Text(value=", ".join(f"{w:g}" for w in value), description=label, style=_STYLE, layout=_LAYOUT)
    cls = {int: W.IntText, float: W.FloatText}[kind]
    return cls(value=value, description=label, style=_STYLE, layout=_LAYOUT)


def _value(kind, widget):
    if kind == "floats":
        return parse_widths(widget.value)
    return bool(widget.value) if kind is bool else widget.value


class SearchPanel:
    """Controls for the search space and loop, a "Run search" button and an output area.

    ``on_run(config)`` is called with a validated Config when the button is
    clicked; with invalid settings the error is shown and nothing runs.
    ``config`` (optional) is where the controls start, e.g. a notebook's own config.
    """

    def __init__(self, preset: str = "tiny", task: Optional[str] = None,
                 on_run: Optional[Callable[[Config], object]] = None, config: Optional[Config] = None):
        self.preset = preset
        allowed = PRESET_TASKS.get(preset)
        self.task = config.task.task if config is not None else (task or (allowed[0] if allowed else "denoise"))
        self.on_run = on_run
        self.last_config: Optional[Config] = None
        self.message = ""
        # fails early on a bad preset/task pair
        base = config if config is not None else get_preset(preset, task=self.task)
        self.base = base
        self.task_cls = task_class(self.task)
        lv = self.task_cls(base.task).level()
        self.level_name = self.task_cls.level_name
        choices = self.task_cls.level_choices
        self.controls: Dict[str, W.Widget] = {
            self.level_name: _control(tuple(choices) if choices else self.task_cls.level_type, lv,
                                      self.task_cls.level_label)}
        for sec, name, label, kind in FIELDS:
            self.controls[name] = _control(kind, getattr(getattr(base, sec), name), label)
        self.button = W.Button(description="Run search", button_style="primary", icon="play")
        self.button.on_click(self._on_click)
        self.output = W.Output(layout=W.Layout(border="1px solid #ddd", min_height="2em"))

        c = self.controls
        space = [c[n] for sec, n, _, _ in FIELDS if sec == "space"]
        loop = [c[n] for sec, n, _, _ in FIELDS if sec == "search"]
        self.widget = W.VBox([
            W.HTML(f"<b>HiNAS search</b> &mdash; config <code>{base.name}</code>, task <code>{self.task}</code>"),
            W.HBox([W.VBox([W.HTML("<i>search space</i>"), *space]),
                    W.VBox([W.HTML("<i>task</i>"), c[self.level_name], W.HTML("<i>search loop</i>"), *loop])]),
            self.button,
            self.output,
        ])

    # ------------------------------------------------------------------
    def config(self) -> Config:
        """The Config the controls describe; ConfigError (naming the field) if invalid."""
        changes: Dict[str, Dict] = {"space": {}, "search": {}}
        for sec, name, _, kind in FIELDS:
            changes[sec][name] = _value(kind, self.controls[name])
        w_lr = changes["search"]["w_lr"]
        # keep the cosine floor below a lowered lr instead of refusing it
        if w_lr > 0:
            changes["search"]["w_lr_min"] = min(self.base.search.w_lr_min, w_lr)
        return with_level(self.base, self.controls[self.level_name].value).replace(**changes)

    def _say(self, text: str) -> None:
        # append_stdout records the text even without a running kernel (tests)
        self.message = text
        self.output.append_stdout(text + "\n")

    def _on_click(self, _button=None) -> None:
        # reset the model directly: clear_output() needs a kernel to take effect
        self.output.outputs = ()
        self.last_config = None
        try:
            cfg = self.config()
        except ConfigError as e:
            self._say(f"Not started, invalid setting: {e}")
            return
        self.last_config = cfg
        sp = cfg.space
        self._say(f"Searching: {sp.layers} layers x {sp.blocks} blocks, F={sp.filters}, widths "
                  f"{list(sp.width_factors)}, {cfg.search.epochs} epochs x {cfg.search.steps_per_epoch} steps")
        if self.on_run is None:
            return
        self.button.disabled = True  # a search takes a while: no second run by a double click
        try:
            with self.output:  # prints and plots of the run land in the panel
                self.on_run(cfg)
        finally:
            self.button.disabled = False

    def click_run(self) -> Optional[Config]:
        """Press the button from code; returns the Config it ran with, or None if refused."""
        self.button.click()
        return self.last_config

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


__all__ = ["FIELDS", "SearchPanel", "parse_widths", "figure_png", "show_figure", "shown_images"]
