"""A small ipywidgets panel to set up and launch a HiNAS search from a notebook.

Everything runs through :class:`~hinas_lib.config.Config`, so the panel accepts
exactly what the CLI and YAML files accept, and bad values produce the same
``ConfigError`` naming the field. The panel works without a browser: tests set
``panel.controls[name].value`` and call ``panel.click_run()``.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

try:
    import ipywidgets as W
except ImportError as e:  # an optional extra: say how to get it
    raise ImportError("hinas_lib.widgets needs ipywidgets: pip install 'ipywidgets>=8' "
                      "(or pip install 'hinas[notebooks]')") from e

from .config import ALPHA_SHARING, SR_SCALES, Config, ConfigError, get_preset, DEFAULT_TASK

_STYLE = {"description_width": "150px"}
_LAYOUT = W.Layout(width="320px")


def parse_widths(text: str) -> tuple:
    """"1, 1.5, 2" -> (1.0, 1.5, 2.0); anything else is a ConfigError on the field."""
    try:
        return tuple(float(t) for t in text.replace(",", " ").split())
    except ValueError:
        raise ConfigError(f"space.width_factors: expected numbers separated by commas, got {text!r}") from None


class SearchPanel:
    """Controls for the search space and loop, a "Run search" button and an output area.

    ``on_run(config)`` is called with a validated Config when the button is
    clicked; with invalid settings the error is shown and nothing runs.
    """

    def __init__(self, preset: str = "tiny", task: Optional[str] = None,
                 on_run: Optional[Callable[[Config], object]] = None):
        self.preset = preset
        self.task = task or DEFAULT_TASK.get(preset, "denoise")
        self.on_run = on_run
        self.last_config: Optional[Config] = None
        self.message = ""
        base = get_preset(preset, task=self.task)  # fails early on a bad preset/task pair
        sp, se, tk = base.space, base.search, base.task

        def ctl(cls, value, desc):
            return cls(value=value, description=desc, style=_STYLE, layout=_LAYOUT)

        self.controls: Dict[str, W.Widget] = {
            "layers": ctl(W.IntText, sp.layers, "layers L"),
            "blocks": ctl(W.IntText, sp.blocks, "blocks per cell B"),
            "filters": ctl(W.IntText, sp.filters, "filters F"),
            "width_factors": ctl(W.Text, ", ".join(f"{w:g}" for w in sp.width_factors), "width factors"),
            "alpha_sharing": W.Dropdown(options=list(ALPHA_SHARING), value=sp.alpha_sharing,
                                        description="alpha sharing", style=_STYLE, layout=_LAYOUT),
            "cell_sharing": W.Checkbox(value=sp.cell_sharing, description="cell sharing (HiNAS)",
                                       indent=False),
        }
        if self.task == "denoise":
            self.controls["sigma"] = ctl(W.FloatText, tk.sigmas[0], "noise sigma (0-255)")
        else:
            self.controls["scale"] = W.Dropdown(options=list(SR_SCALES), value=tk.scale, description="SR scale",
                                                style=_STYLE, layout=_LAYOUT)
        self.controls.update({
            "w_lr": ctl(W.FloatText, se.w_lr, "weight lr"),
            "a_lr": ctl(W.FloatText, se.a_lr, "arch lr"),
            "warmup_epochs": ctl(W.IntText, se.warmup_epochs, "warm-up epochs"),
            "epochs": ctl(W.IntText, se.epochs, "epochs"),
            "steps_per_epoch": ctl(W.IntText, se.steps_per_epoch, "steps per epoch"),
            "batch_size": ctl(W.IntText, se.batch_size, "batch size"),
            "crop": ctl(W.IntText, se.crop, "crop (px)"),
        })
        self.button = W.Button(description="Run search", button_style="primary", icon="play")
        self.button.on_click(self._on_click)
        self.output = W.Output(layout=W.Layout(border="1px solid #ddd", min_height="2em"))

        c = self.controls
        space = [c[k] for k in ("layers", "blocks", "filters", "width_factors", "alpha_sharing", "cell_sharing")]
        loop = [c[k] for k in ("w_lr", "a_lr", "warmup_epochs", "epochs", "steps_per_epoch", "batch_size", "crop")]
        task_ctl = [c["sigma" if self.task == "denoise" else "scale"]]
        self.widget = W.VBox([
            W.HTML(f"<b>HiNAS search</b> &mdash; preset <code>{preset}</code>, task <code>{self.task}</code>"),
            W.HBox([W.VBox([W.HTML("<i>search space</i>"), *space]),
                    W.VBox([W.HTML("<i>task</i>"), *task_ctl, W.HTML("<i>search loop</i>"), *loop])]),
            self.button,
            self.output,
        ])

    # ------------------------------------------------------------------
    def config(self) -> Config:
        """The Config the controls describe; ConfigError (naming the field) if invalid."""
        v = {k: w.value for k, w in self.controls.items()}
        scale = v.get("scale") if self.task == "sr" else None
        base = get_preset(self.preset, task=self.task, scale=scale)
        task = {"sigmas": [v["sigma"]], "eval_sigma": v["sigma"]} if self.task == "denoise" else {}
        return base.replace(
            task=task,
            space={"layers": v["layers"], "blocks": v["blocks"], "filters": v["filters"],
                   "width_factors": parse_widths(v["width_factors"]),
                   "alpha_sharing": v["alpha_sharing"], "cell_sharing": bool(v["cell_sharing"])},
            search={"w_lr": v["w_lr"], "a_lr": v["a_lr"],
                    # keep the cosine floor below a lowered lr instead of refusing it
                    "w_lr_min": min(base.search.w_lr_min, v["w_lr"]) if v["w_lr"] > 0 else base.search.w_lr_min,
                    "warmup_epochs": v["warmup_epochs"], "epochs": v["epochs"],
                    "steps_per_epoch": v["steps_per_epoch"], "batch_size": v["batch_size"], "crop": v["crop"]},
        )

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


__all__ = ["SearchPanel", "parse_widths"]
