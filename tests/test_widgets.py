"""The notebook search panel, driven from code (no browser)."""
import pytest

pytest.importorskip("ipywidgets")

from hinas_lib.config import Config, ConfigError, get_preset
from hinas_lib.widgets import SearchPanel


def output_text(panel):
    return "".join(o.get("text", "") for o in panel.output.outputs)


def test_defaults_reproduce_the_preset():
    import ipywidgets as W
    panel = SearchPanel()
    assert isinstance(panel.widget, W.VBox)
    assert panel.config().to_dict() == get_preset("tiny").to_dict()
    assert "sigma" in panel.controls and "scale" not in panel.controls


def test_controls_change_the_config():
    panel = SearchPanel("tiny", "denoise")
    c = panel.controls
    c["layers"].value = 4
    c["blocks"].value = 3
    c["width_factors"].value = "1, 2,3"
    c["w_lr"].value = 0.0005  # below the preset's lr floor: the floor follows
    c["a_lr"].value = 3e-4
    c["alpha_sharing"].value = "cell"
    c["cell_sharing"].value = False
    c["sigma"].value = 50
    c["epochs"].value = 9
    c["warmup_epochs"].value = 3
    cfg = panel.config()
    assert (cfg.space.layers, cfg.space.blocks) == (4, 3)
    assert cfg.space.width_factors == (1.0, 2.0, 3.0)
    assert cfg.search.w_lr == 0.0005 and cfg.search.w_lr_min <= 0.0005
    assert cfg.search.a_lr == 3e-4
    assert cfg.space.alpha_sharing == "cell" and cfg.space.cell_sharing is False
    assert cfg.task.sigmas == (50.0,) and cfg.task.eval_sigma == 50.0
    assert (cfg.search.epochs, cfg.search.warmup_epochs) == (9, 3)


def test_sr_panel_sets_the_scale():
    panel = SearchPanel("tiny", task="sr")
    assert "scale" in panel.controls and "sigma" not in panel.controls
    panel.controls["scale"].value = 3
    cfg = panel.config()
    assert cfg.task.task == "sr" and cfg.task.scale == 3


@pytest.mark.parametrize("name,value,field", [
    ("width_factors", "2, 1", "space.width_factors"),
    ("width_factors", "1, one", "space.width_factors"),
    ("width_factors", "", "space.width_factors"),
    ("layers", 0, "space.layers"),
    ("a_lr", -1.0, "search.a_lr"),
    ("warmup_epochs", 99, "search.warmup_epochs"),
])
def test_bad_values_name_the_field(name, value, field):
    panel = SearchPanel()
    panel.controls[name].value = value
    with pytest.raises(ConfigError, match=field):
        panel.config()


def test_click_with_bad_values_shows_the_error_and_does_not_run():
    calls = []
    panel = SearchPanel(on_run=calls.append)
    panel.controls["layers"].value = 0
    assert panel.click_run() is None
    assert calls == []
    assert "space.layers" in output_text(panel) and "space.layers" in panel.message


def test_click_with_good_values_runs_once():
    calls = []
    panel = SearchPanel(on_run=calls.append)
    panel.controls["layers"].value = 3
    cfg = panel.click_run()
    assert len(calls) == 1 and calls[0] is cfg
    assert isinstance(cfg, Config) and cfg.space.layers == 3
    assert not panel.button.disabled
    assert "Searching" in output_text(panel)
    # a fixed mistake clears the old message on the next click
    panel.controls["layers"].value = 0
    panel.click_run()
    panel.controls["layers"].value = 2
    panel.click_run()
    assert len(calls) == 2 and "invalid" not in output_text(panel)


def test_show_figure_replaces_the_output_and_closes_the_figures():
    import matplotlib
    matplotlib.use("Agg")
    import ipywidgets as W
    import matplotlib.pyplot as plt
    from hinas_lib.widgets import show_figure, shown_images
    out = W.Output()
    out.append_stdout("old text\n")
    figs = [plt.figure(), plt.figure()]
    for f in figs:
        f.add_subplot().plot([0, 1])
    show_figure(out, *figs)
    pngs = shown_images(out)
    assert len(out.outputs) == 2 and len(pngs) == 2 and all(p[:4] == b"\x89PNG" for p in pngs)
    assert not any(plt.fignum_exists(f.number) for f in figs)  # not shown a second time below the cell
    show_figure(out)
    assert out.outputs == ()
