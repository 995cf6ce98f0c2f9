"""The model zoo: every shipped entry loads, restores, and is what it says it is.

These tests read only ``zoo/`` (never ../shared), so they run on a fresh clone.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hinas_lib import zoo
from hinas_lib.checkpoint import load_checkpoint
from hinas_lib.cli import main as cli_main
from hinas_lib.data import load_image, save_image
from hinas_lib.genotype import Genotype
from hinas_lib.metrics import psnr
from hinas_lib.network import HiNASNet
from hinas_lib.network import load_model
from hinas_lib.tasks import get_task

ENTRIES = sorted(zoo.available())
EXPECTED = {"denoise-s30", "denoise-s50", "denoise-s70", "denoise-blind", "sr-x2", "sr-x3", "sr-x4"}


def test_zoo_ships_the_promised_entries():
    assert EXPECTED <= set(ENTRIES), f"missing zoo entries: {sorted(EXPECTED - set(ENTRIES))}"


@pytest.mark.parametrize("name", ENTRIES)
def test_entry_is_small_and_self_describing(name):
    entry = zoo.ZOO_DIR / name
    assert (entry / "model.pt").stat().st_size < 5 * 2 ** 20
    ckpt = load_checkpoint(entry / "model.pt", kind="model")  # weights_only=True inside
    info = zoo.entry_info(name)
    assert info["name"] == name and info["task"] == ckpt["config"]["task"]["task"]
    assert (entry / "genotype.svg").is_file() or (entry / "genotype.gv").is_file()
    assert info["recipe"]["data"] and info["recipe"]["search"] and info["recipe"]["train"]
    assert info["results"], "an entry without test scores"


@pytest.mark.parametrize("name", ENTRIES)
def test_stored_genotype_matches_weights(name):
    entry = zoo.ZOO_DIR / name
    ckpt = torch.load(entry / "model.pt", map_location="cpu", weights_only=True)
    geno = Genotype.load(entry / "genotype.json")
    assert geno.to_dict() == ckpt["genotype"]
    _, cfg, _ = load_model(entry / "model.pt", "cpu")
    net = HiNASNet(geno, cfg, filters=int(ckpt["filters"]))
    net.load_state_dict(ckpt["state_dict"], strict=True)  # every tensor has its place and shape
    assert sum(p.numel() for p in net.parameters()) == zoo.entry_info(name)["params"]


def _clean_image(channels):
    import skimage.data
    img = skimage.data.astronaut()[100:196, 150:246].astype(np.float32) / 255  # 96x96 RGB
    return img.mean(axis=2) if channels == 1 else img


@pytest.mark.parametrize("name", ENTRIES)
def test_entry_restores_a_small_image(name, tmp_path):
    net, cfg, _ = load_model(zoo.ZOO_DIR / name, "cpu")
    t = cfg.task
    clean = _clean_image(t.channels)
    if t.task == "denoise":
        rng = np.random.default_rng(0)
        sigma = zoo.entry_info(name).get("sigma") or t.eval_sigma  # the blind model: its eval sigma
        degraded = np.clip(clean + rng.normal(0, sigma / 255, clean.shape), 0, 1).astype(np.float32)
    else:
        from hinas_lib.degrade import bicubic_downscale
        x = torch.from_numpy(clean).permute(2, 0, 1)
        degraded = bicubic_downscale(x, t.scale).clamp(0, 1).permute(1, 2, 0).numpy()
    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    save_image(src, degraded)
    # by short name, through the command line a user types
    assert cli_main(["restore", "--model", name, str(src), str(dst), "--device", "cpu"]) == 0
    out = load_image(dst, channels=t.channels)
    assert out.shape == clean.shape
    ref = load_image(src, channels=t.channels)
    to_t = (lambda a: torch.from_numpy(a).unsqueeze(0) if a.ndim == 2 else torch.from_numpy(a).permute(2, 0, 1))
    if t.task == "denoise":
        # the network must clearly improve on its input at its own noise level
        assert psnr(to_t(out), to_t(clean)) > psnr(to_t(ref), to_t(clean)) + 3.0
    else:
        from hinas_lib.degrade import bicubic_upscale
        bic = bicubic_upscale(to_t(ref), t.scale).clamp(0, 1)
        kw = dict(crop_border=t.scale, test_y_channel=True)
        assert psnr(to_t(out), to_t(clean), **kw) > psnr(bic, to_t(clean), **kw)


def test_results_page_lists_every_entry():
    page = (zoo.ZOO_DIR / "RESULTS.md").read_text()
    for name in ENTRIES:
        assert f"`{name}`" in page
    assert page.endswith(_script("zootools").results_table())  # regenerated from the entries' info.json


def test_unknown_zoo_name_is_a_clear_error(capsys):
    assert cli_main(["restore", "--model", "denoise-s999", "a.png", "b.png"]) == 2
    err = capsys.readouterr().err
    assert "denoise-s999" in err and "denoise-s30" in err


def test_build_entry_writes_a_complete_entry(tmp_path):
    """The zoo scripts' machinery, end to end at a toy size on the embedded images."""
    from hinas_lib.config import get_preset
    from hinas_lib.genotype import default_genotype
    from hinas_lib import data

    cfg = get_preset("tiny", "denoise").replace(train=dict(epochs=2, steps_per_epoch=3, batch_size=2, crop=24,
                                                           val_every=1))
    geno = default_genotype(cfg.space.layers, cfg.space.blocks, cfg.space.width_factors)
    test_dir = tmp_path / "test"
    test_dir.mkdir()
    save_image(test_dir / "cam.png", data.load_embedded("camera", 1)[:64, :64])
    tools = _script("zootools")
    info = tools.build_entry("toy-s30", cfg, geno, work_dir=tmp_path / "runs", test_sets={"toy": test_dir},
                           recipe={"data": "embedded", "search": "none", "train": "toy"}, zoo_dir=tmp_path / "zoo",
                           progress=False)
    entry = tmp_path / "zoo" / "toy-s30"
    assert sorted(p.name for p in entry.iterdir() if p.suffix != ".gv") == [
        "genotype.json", "genotype.svg", "info.json", "model.pt"] or (entry / "genotype.gv").is_file()
    assert zoo.available(tmp_path / "zoo") == {"toy-s30": entry / "model.pt"}
    assert info["train_steps"] == 6 and info["sigma"] == 30 and info["params"] > 0
    m = info["results"]["toy"]["mean"]
    assert {"input_psnr", "baseline_psnr", "ours_psnr"} <= set(m)
    assert json.loads((entry / "info.json").read_text())["results"]["toy"]["mean"] == m
    table = tools.results_table(tmp_path / "zoo")
    assert "`toy-s30`" in table and f"{m['ours_psnr']:.2f}" in table


def test_train_seconds_adds_up_resumed_stretches(tmp_path):
    rows = [{"elapsed_s": 10}, {"elapsed_s": 20}, {"elapsed_s": 5}, {"elapsed_s": 12}]  # resumed after 20
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    tools = _script("zootools")
    assert tools.run_seconds(tmp_path) == 32
    assert tools.run_seconds(tmp_path / "missing") == 0


def test_bm3d_baseline_beats_the_noisy_input_and_is_denoise_only():
    pytest.importorskip("bm3d")
    from hinas_lib import data, evaluate
    from hinas_lib.config import get_preset
    from hinas_lib.degrade import add_gaussian_noise
    from hinas_lib.tasks import bm3d_denoise

    clean = data.to_tensor(data.load_embedded("camera", 1)[200:264, 200:264])
    noisy = add_gaussian_noise(clean, 30, generator=torch.Generator().manual_seed(0))
    out = bm3d_denoise(noisy, 30)
    assert out.shape == clean.shape
    assert psnr(out, clean) > psnr(noisy.clamp(0, 1), clean) + 5
    with pytest.raises(ValueError, match="BM3D is a denoising baseline"):
        evaluate.evaluate(None, get_preset("tiny", "sr"), [], bm3d=True)


def _script(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"zoo_{name}", zoo.ZOO_DIR / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name,argv", [("grow_denoise", ["status"]), ("make_sr", [])])
def test_make_scripts_refuse_a_missing_shared_folder(name, argv, tmp_path, capsys):
    assert _script(name).main(argv + ["--shared", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err


def test_grow_denoise_branch_lengths_are_checked():
    grow = _script("grow_denoise")
    trunk = grow.trunk_config(grow.TRUNK)
    with pytest.raises(ValueError, match="multiple of 250"):
        grow.branch_config(trunk, 30.0, steps=300)
    b = grow.branch_config(trunk, 30.0, steps=500)
    # a branch: one sigma, the trunk's learning rate decayed (cosine) to 1/1000 of it
    assert tuple(b.task.sigmas) == (30.0,) and b.task.sigma_range is None
    assert b.train.epochs * b.train.steps_per_epoch == 500 and b.train.lr_min == trunk.train.lr * 1e-3
    blind = grow.branch_config(trunk, None, steps=500)
    assert blind.task.sigma_range == trunk.task.sigma_range
    # the branch's loss: MSE alone when its log-SSIM weight is 0, whatever the trunk's
    mse = grow.branch_config(trunk, 30.0, steps=500, ssim_weight=0.0)
    assert mse.train.ssim_weight == 0.0 and mse.task.ssim_weight == trunk.task.ssim_weight
    loss = get_task(mse).loss(mse.train.ssim_weight)
    x, y = torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16)
    assert loss(x, y).item() == pytest.approx(torch.mean((x - y) ** 2).item())


def test_branches_default_to_the_shipped_entries_settings():
    """`grow_denoise.py branches` with no options remakes each entry as shipped."""
    grow = _script("grow_denoise")
    for label, (steps, w) in grow.BRANCHES.items():
        info = zoo.entry_info(f"denoise-{label if label == 'blind' else 's' + label}")
        assert (info["branch_steps"], info["branch_ssim_weight"]) == (steps, w)


def test_grown_entries_record_their_cpu_hours():
    """Zoo v2: every grey entry says what it cost (trunk + branch CPU-hours) and, on Set12,
    carries the BM3D column it is judged against."""
    for name in [n for n in ENTRIES if n.startswith("denoise-")]:
        info = zoo.entry_info(name)
        h = info["cpu_hours"]
        assert h["total"] == pytest.approx(h["search"] + h["trunk"] + h["branch"], abs=0.02) and h["trunk"] > 0
        for r in info["results"].values():
            assert "bm3d_psnr" in r["mean"] and "ours_psnr" in r["mean"]
    blind = zoo.entry_info("denoise-blind")["results"]
    assert {r["sigma"] for r in blind.values()} == {30, 50, 70}


@pytest.mark.parametrize("name", ENTRIES)
def test_entry_was_made_by_its_script(name):
    """The shipped weights were trained with exactly the settings the script holds now
    (every section a retraining reads; its ``search`` section is not used by retraining)."""
    _, cfg, _ = load_model(zoo.ZOO_DIR / name, "cpu")
    if cfg.task.task == "denoise":
        grow, info = _script("grow_denoise"), zoo.entry_info(name)
        want_cfg = grow.branch_config(grow.trunk_config(info["trunk_recipe"]), info["sigma"], info["branch_steps"],
                                      info["branch_ssim_weight"])
    else:
        _, trains = _script("make_sr").configs("../shared", [cfg.task.scale])
        want_cfg = trains[name]
    want, have = want_cfg.to_dict(), cfg.to_dict()
    for d in (want, have):
        d.pop("search")
        d.pop("data")  # the folders it was trained from are machine paths, left out of the entry
    assert want == have


@pytest.mark.parametrize("name", ENTRIES)
def test_entry_carries_no_machine_paths(name):
    """`eval --model NAME` without --data must not name a folder the user never mentioned."""
    _, cfg, _ = load_model(zoo.ZOO_DIR / name, "cpu")
    assert (cfg.data.train_dir, cfg.data.val_dir, cfg.data.test_dir) == (None, None, None)


def test_grow_refuses_a_curve_without_its_checkpoint(tmp_path, monkeypatch, capsys):
    """Only the trunk's checkpoint is kept in git: growing a trial from a fresh clone must not
    append a new run's points to the old curve."""
    grow = _script("grow_denoise")
    folder = tmp_path / "g2-f24"
    folder.mkdir()
    (folder / "curves.jsonl").write_text('{"step": 0, "cpu_h": 0.0}\n')
    monkeypatch.setattr(grow, "BLIND", tmp_path)
    with pytest.raises(SystemExit) as e:
        grow.grow("g2-f24", 0.01)
    assert e.value.code == 2 and "no train_checkpoint.pt" in capsys.readouterr().err
    assert (folder / "curves.jsonl").read_text() == '{"step": 0, "cpu_h": 0.0}\n'
    assert sorted(p.name for p in folder.iterdir()) == ["curves.jsonl"]
