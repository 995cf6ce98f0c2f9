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
from hinas_lib.model_files import load_model
from hinas_lib.network import CompactNet
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
    net = CompactNet(geno, cfg, filters=int(ckpt["filters"]))
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


@pytest.mark.parametrize("method", ["nlm", "bm3d"])
def test_denoising_baselines_see_the_unclamped_noisy_image(method):
    """The baselines get the noisy image the network gets, values outside [0, 1] included: on a
    flat black and a flat white half at sigma 50, clamped noise has a mean of about 0.08 away
    from the edge value (0.4 sigma), which a denoiser told the noise is zero-mean keeps."""
    from hinas_lib.config import get_preset
    from hinas_lib.degrade import add_gaussian_noise
    from hinas_lib.tasks import bm3d_denoise, get_task
    if method == "bm3d":
        pytest.importorskip("bm3d")
        run = bm3d_denoise
    else:
        run = get_task(get_preset("tiny", "denoise")).baseline
    clean = torch.zeros(1, 64, 64)
    clean[:, :, 32:] = 1.0
    noisy = add_gaussian_noise(clean, 50, generator=torch.Generator().manual_seed(0))
    assert noisy.min() < -0.3 and noisy.max() > 1.3  # the input really leaves [0, 1]
    out = run(noisy, 50)
    # away from the edge: the black half's mean near 0, the white half's near 1
    assert float(out[:, :, 8:24].mean()) < 0.02 and float(out[:, :, 40:56].mean()) > 0.98
    clamped = run(noisy.clamp(0, 1), 50)  # what the baselines were fed until 2026-12-07
    assert float(clamped[:, :, 8:24].mean()) > 0.04


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
    for label, (steps, w, restarts) in grow.BRANCHES.items():
        info = zoo.entry_info(f"denoise-{label if label == 'blind' else 's' + label}")
        recipe = grow.BRANCH_TRUNKS.get(label, grow.TRUNK)
        assert (info["branch_steps"], info["branch_ssim_weight"]) == (steps, w)
        assert info.get("branch_restarts", []) == [list(r) for r in restarts]
        assert info.get("trunk_recipe", grow.TRUNK) == recipe
        # the trunk state it grew from is kept (committed), at the step the entry started from
        trunk = load_checkpoint(grow.BLIND / recipe / "train_checkpoint.pt", kind="train")
        assert info["train_steps"] == int(trunk["step"]) + steps + sum(n for n, _ in restarts)


def test_branch_restarts_continue_the_first_cycle():
    """A warm restart: the first cycle's sigma, loss and final rate, its own length and peak, new patches."""
    grow = _script("grow_denoise")
    trunk = grow.trunk_config(grow.TRUNK)
    first, second, third = grow.cycle_configs(trunk, 30.0, 500, 0.0, [(750, 5e-4), (250, 1e-4)])
    assert first.to_dict() == grow.branch_config(trunk, 30.0, 500, 0.0).to_dict()
    for cfg, (steps, lr, seed) in ((second, (750, 5e-4, first.train.seed + 1)),
                                   (third, (250, 1e-4, first.train.seed + 2))):
        assert (cfg.train.epochs * cfg.train.steps_per_epoch, cfg.train.lr, cfg.train.seed) == (steps, lr, seed)
        assert cfg.train.lr_min == first.train.lr_min and cfg.train.schedule == "cosine"
        assert cfg.task == first.task and cfg.train.ssim_weight == first.train.ssim_weight
        assert cfg.train.val_every == cfg.train.epochs  # validated once, at the end: model.pt = final weights
    with pytest.raises(ValueError, match="multiple of 250"):
        grow.restart_config(first, 1, 100, 5e-4)
    with pytest.raises(ValueError, match="peak learning rate"):
        grow.restart_config(first, 1, 250, 2e-3)  # above the first cycle's
    assert grow.parse_restart("2500@5e-4") == (2500, 5e-4)
    with pytest.raises(ValueError, match="STEPS@LR"):
        grow.parse_restart("2500")


@pytest.mark.parametrize("bad", ["2500", "300@5e-4", "250@0.1"])
def test_branches_refuse_a_bad_restart_in_one_line(bad, tmp_path, capsys, monkeypatch):
    (tmp_path / "data" / "Train400").mkdir(parents=True)
    grow = _script("grow_denoise")
    monkeypatch.setattr(grow, "set_threads", lambda n: None)  # (torch's thread count is process-wide)
    assert grow.main(["branches", "--sigmas", "30", "--restarts", bad, "--shared", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_branches_cli_makes_the_shipped_settings_unless_told_otherwise(tmp_path, monkeypatch):
    grow = _script("grow_denoise")
    (tmp_path / "data" / "Train400").mkdir(parents=True)
    monkeypatch.setattr(grow, "set_threads", lambda n: None)
    calls = []
    monkeypatch.setattr(grow, "branch", lambda sigma, shared, *rest: calls.append((sigma, *rest)))

    def run(*argv):
        calls.clear()
        assert grow.main(["branches", *argv, "--no-page", "--shared", str(tmp_path)]) == 0
        return calls

    t, t30, tb = grow.TRUNK, grow.BRANCH_TRUNKS.get("30", grow.TRUNK), grow.BRANCH_TRUNKS.get("blind", grow.TRUNK)
    # each entry's own trunk by default
    assert run("--sigmas", "30", "blind") == [(30.0, *grow.BRANCHES["30"], t30), (None, *grow.BRANCHES["blind"], tb)]
    # a first cycle of one's own choosing has no restarts unless asked (the commands entries record)
    assert run("--sigmas", "30", "--steps", "750") == [(30.0, 750, grow.BRANCHES["30"][1], (), t30)]
    assert run("--sigmas", "50", "--steps", "750", "--ssim-weight", "0", "--restarts", "500@1e-4", "250@5e-5") == \
        [(50.0, 750, 0.0, ((500, 1e-4), (250, 5e-5)), t)]
    assert run("--sigmas", "30", "--restarts") == [(30.0, grow.BRANCHES["30"][0], grow.BRANCHES["30"][1], (), t30)]
    assert run("--sigmas", "30", "--trunk", "g1-f32")[0][-1] == "g1-f32"
    # another recipe's kept state as the trunk (to compare trunks at equal CPU-hours); an unknown one is refused
    assert run("--sigmas", "30", "--steps", "2500", "--trunk", "g1-f48") == [(30.0, 2500, grow.BRANCHES["30"][1], (),
                                                                              "g1-f48")]
    assert grow.main(["branches", "--trunk", "g9", "--no-page", "--shared", str(tmp_path)]) == 2


def test_shipped_cycles_are_reused_only_from_an_entry_that_is_exactly_them(monkeypatch):
    """A restart goes on from the shipped entry when the entry is the branch's first cycles (same
    trunk, steps, loss, its restarts a proper prefix of the branch's) and never from anything else."""
    grow = _script("grow_denoise")
    trunk = load_checkpoint(grow.BLIND / grow.TRUNK / "train_checkpoint.pt", kind="train")
    # a single cycle on MSE alone: denoise-s70's weights, its record as if it had not been
    # restarted (every shipped entry now has restarts)
    real = zoo.entry_info("denoise-s70")
    first_h, first_val = real["branch_cycles_val"][0]
    info = {**real, "branch_restarts": [], "branch_cycles_val": [[first_h, first_val]], "best_val_psnr": first_val,
            "train_steps": real["train_steps"] - sum(n for n, _ in real["branch_restarts"]),
            "train_seconds": round(float(trunk.get("cpu_s", 0.0)) + first_h * 3600),
            "cpu_hours": {**real["cpu_hours"], "branch": first_h}}
    monkeypatch.setattr(grow, "entry_info", lambda name: info if name == "denoise-s70" else zoo.entry_info(name))
    steps, w = info["branch_steps"], info["branch_ssim_weight"]
    assert w == 0.0
    done, weights, cpu_s, points = grow._shipped_cycles("denoise-s70", trunk, steps, w, ((500, 5e-4),))
    net, _, _ = load_model(zoo.ZOO_DIR / "denoise-s70", "cpu")
    assert done == 1 and all(torch.equal(weights[k], v) for k, v in net.state_dict().items())
    assert cpu_s / 3600 == pytest.approx(info["cpu_hours"]["branch"], abs=0.01)
    assert points[-1][1] == info["best_val_psnr"]
    assert grow._shipped_cycles("denoise-s70", trunk, steps, w) is None  # nothing left to train
    assert grow._shipped_cycles("denoise-s70", trunk, steps + 250, w, ((500, 5e-4),)) is None
    assert grow._shipped_cycles("denoise-s70", trunk, steps, 1.0, ((500, 5e-4),)) is None
    assert grow._shipped_cycles("denoise-s999", trunk, steps, w, ((500, 5e-4),)) is None
    # a restarted entry: reused as the first cycles of a branch that adds one more
    # (from its own trunk's state: denoise-blind grew from g1-f48 since 2026-12-08)
    blind = zoo.entry_info("denoise-blind")
    done_r = [tuple(r) for r in blind["branch_restarts"]]
    recipe = blind.get("trunk_recipe", grow.TRUNK)
    btrunk = load_checkpoint(grow.BLIND / recipe / "train_checkpoint.pt", kind="train")
    assert done_r
    more = tuple(done_r) + ((5000, 3e-4),)
    args = ("denoise-blind", btrunk, blind["branch_steps"], blind["branch_ssim_weight"])
    got = grow._shipped_cycles(*args, more, recipe)
    assert got is not None and got[0] == 1 + len(done_r) and got[3] == blind["branch_cycles_val"]
    assert grow._shipped_cycles(*args, tuple(done_r), recipe) is None
    other = ((done_r[0][0], done_r[0][1] * 2),) + tuple(done_r[1:]) + ((5000, 3e-4),)
    assert grow._shipped_cycles(*args, other, recipe) is None
    # the same entry is not a branch of another trunk
    wrong = next(r for r in (grow.TRUNK, "g1-f48") if r != recipe)
    assert grow._shipped_cycles(*args, more, wrong) is None
    # another trunk's entry (denoise-s30 grew from g1-f48) is not this trunk's branch
    s30 = zoo.entry_info("denoise-s30")
    assert s30["trunk_recipe"] != grow.TRUNK
    assert grow._shipped_cycles("denoise-s30", trunk, s30["branch_steps"], s30["branch_ssim_weight"],
                                tuple(tuple(r) for r in s30["branch_restarts"]) + ((500, 1e-4),)) is None


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
        want_cfg = grow.cycle_configs(grow.trunk_config(info["trunk_recipe"]), info["sigma"], info["branch_steps"],
                                      info["branch_ssim_weight"], info.get("branch_restarts", []))[-1]
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


def test_branch_cycles_go_on_from_the_entry_and_resume_without_redoing_a_cycle(tmp_path, monkeypatch):
    """A warm restart starts from the shipped first cycle's weights (not trained again), records
    where it came from, and a later call resumes the restart, not the whole branch."""
    from types import SimpleNamespace
    grow = _script("grow_denoise")
    monkeypatch.setattr(grow, "ROOT", tmp_path)
    calls = []

    class FakeTrainer:  # stands for a cycle's training: 100 CPU seconds, PSNR 30 + the cycle's seed
        def __init__(self, cfg, geno, out, *, resume, progress, val_size, init_weights):
            self.cfg, self.out = cfg, out
            out.mkdir(parents=True, exist_ok=True)
            calls.append((out.name, resume, None if init_weights is None else float(init_weights["w"])))

        def run(self):
            (self.out / grow.STATE_NAME).write_text("state")
            net = torch.nn.Module()
            net.register_buffer("w", torch.tensor(float(self.cfg.train.seed)))
            return SimpleNamespace(net=net, best_psnr=30.0 + self.cfg.train.seed, model_path=self.out / "model.pt")

        def _cpu_now(self):
            return 100.0

    monkeypatch.setattr(grow, "Trainer", FakeTrainer)
    trunk_state = {"step": 3500, "model": {"w": torch.tensor(-1.0)}, "genotype": load_checkpoint(
        grow.BLIND / grow.TRUNK / "train_checkpoint.pt", kind="train")["genotype"], "cpu_s": 0.0}
    restarts = ((500, 5e-4), (250, 1e-4))
    cfgs = grow.cycle_configs(grow.trunk_config(grow.TRUNK), 30.0, 750, 0.0, restarts)

    # the shipped entry is the first cycle: not trained again, its weights go on
    monkeypatch.setattr(grow, "_shipped_cycles", lambda *a: (1, {"w": torch.tensor(7.0)}, 3600.0, [[1.0, 26.5]]))
    res, cpu_s, points = grow.train_cycles("denoise-s30", trunk_state, cfgs, 750, 0.0, restarts)
    assert calls == [("branch-s30-750-ssim0+500@0.0005", False, 7.0),
                     ("branch-s30-750-ssim0+500@0.0005+250@0.0001", False, cfgs[1].train.seed)]
    assert cpu_s == 3800.0 and [p for _, p in points] == [26.5, 30.0 + cfgs[1].train.seed, 30.0 + cfgs[2].train.seed]
    assert res.best_psnr == 30.0 + cfgs[2].train.seed
    runs = grow.branch_runs("s30", 3500, 750, 0.0, restarts)
    assert runs[0].parent == tmp_path / "runs" / "zoo-v2" / "trunk3500"
    assert json.loads((runs[2] / grow.ORIGIN).read_text())["prior_cpu_s"] == 3700.0

    # later, the run folders hold the cycles' states: only the last cycle resumes
    calls.clear()
    monkeypatch.setattr(grow, "_shipped_cycles", lambda *a: None)
    res2, cpu_s2, points2 = grow.train_cycles("denoise-s30", trunk_state, cfgs, 750, 0.0, restarts)
    assert calls == [("branch-s30-750-ssim0+500@0.0005+250@0.0001", True, None)]
    assert (cpu_s2, points2) == (cpu_s, points)

    # an entry shipped after two cycles, trained on another machine (no run folders here): only
    # the third cycle trains, from the entry's weights, its CPU time and points carried over
    calls.clear()
    monkeypatch.setattr(grow, "ROOT", tmp_path / "elsewhere")
    monkeypatch.setattr(grow, "_shipped_cycles",
                        lambda *a: (2, {"w": torch.tensor(8.0)}, 7200.0, [[1.0, 26.5], [2.0, 26.7]]))
    res3, cpu_s3, points3 = grow.train_cycles("denoise-s30", trunk_state, cfgs, 750, 0.0, restarts)
    assert calls == [("branch-s30-750-ssim0+500@0.0005+250@0.0001", False, 8.0)]
    assert cpu_s3 == 7300.0 and [p for _, p in points3] == [26.5, 26.7, 30.0 + cfgs[2].train.seed]
    third = grow.branch_runs("s30", 3500, 750, 0.0, restarts)[2]
    assert json.loads((third / grow.ORIGIN).read_text()) == {"prior_cpu_s": 7200.0,
                                                            "prior_points": [[1.0, 26.5], [2.0, 26.7]]}

    # a branch without restarts trains its one cycle from the trunk's weights
    calls.clear()
    monkeypatch.setattr(grow, "_shipped_cycles", lambda *a: None)
    one = grow.cycle_configs(grow.trunk_config(grow.TRUNK), 50.0, 750, 0.0)
    grow.train_cycles("denoise-s50", trunk_state, one, 750, 0.0)
    assert calls == [("branch-s50-750-ssim0", False, -1.0)]


def test_a_replaced_entry_stays_on_the_curves(tmp_path, monkeypatch):
    """When a branch replaces a shipped entry, the old entry becomes a trials row (its trunk,
    CPU-hours and cycles) and the curves draw it as a hollow star in its trunk's colour."""
    grow = _script("grow_denoise")
    info = {"name": "denoise-s30", "branch_steps": 2500, "branch_ssim_weight": 0.0,
            "branch_restarts": [[2500, 5e-4]], "trunk_recipe": "g1-f32", "best_val_psnr": 26.9,
            "cpu_hours": {"search": 1.0, "trunk": 1.75, "branch": 2.0, "total": 4.75},
            "branch_cycles_val": [[1.0, 26.8], [2.0, 26.9]], "date": "2026-12-02"}
    row = grow.replaced_row(info, "2026-12-07")
    assert row["replaced"] == "2026-12-07" and not row["shipped"] and row["trunk_recipe"] == "g1-f32"
    assert row["trunk_cpu_h"] + row["branch_cpu_h"] == pytest.approx(3.75) and row["cycles"] == info["branch_cycles_val"]
    trials = tmp_path / "trials.jsonl"
    trials.write_text(json.dumps(row) + "\n")
    monkeypatch.setattr(grow, "TRIALS", trials)
    labels = []
    import matplotlib.figure
    real = matplotlib.figure.Figure.savefig

    def spy(fig, *a, **k):
        labels.extend(t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts())
        return real(fig, *a, **k)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    grow.plot_curves(tmp_path / "curves.png")
    assert "denoise-s30 of g1-f32, replaced 2026-12-07" in labels
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_park_keeps_an_unfinished_cycle_that_a_fresh_checkout_resumes(tmp_path, monkeypatch):
    """A branch cycle longer than a session: `park` copies its checkpoint from the ignored runs/
    into zoo/state/parked (committed); in a checkout without runs/, `train_cycles` puts it back
    and resumes that cycle alone, its origin carried over; the finished branch leaves nothing parked."""
    from types import SimpleNamespace
    from hinas_lib.checkpoint import atomic_save
    grow = _script("grow_denoise")
    monkeypatch.setattr(grow, "ROOT", tmp_path)
    restarts = ((500, 5e-4),)
    cfgs = grow.cycle_configs(grow.trunk_config(grow.TRUNK), 30.0, 750, 0.0, restarts)
    runs = grow.branch_runs("s30", 3500, 750, 0.0, restarts)

    def state(run, cfg, step):
        run.mkdir(parents=True, exist_ok=True)
        atomic_save({"kind": "train", "config": cfg.to_dict(), "step": step}, run / grow.STATE_NAME)

    # the first cycle finished; the restart has written its origin but not yet its first checkpoint
    state(runs[0], cfgs[0], 750)
    (runs[0] / "model.pt").write_bytes(b"best")
    runs[1].mkdir(parents=True)
    origin = {"prior_cpu_s": 900.0, "prior_points": [[0.25, 26.5]]}
    (runs[1] / grow.ORIGIN).write_text(json.dumps(origin))
    assert grow.park() == [runs[0]]  # the finished cycle is what the branch goes on from
    assert sorted(f.name for f in grow.parked(runs[0]).iterdir()) == ["model.pt", grow.STATE_NAME]
    assert grow.parked(runs[0]) == tmp_path / "zoo" / "state" / "parked" / "zoo-v2" / "trunk3500" / runs[0].name

    # the restart at step 250 of its 500: parked, and the first cycle's parked copy dropped
    state(runs[1], cfgs[1], 250)
    assert grow.park() == [runs[1]]
    assert sorted(f.name for f in grow.parked(runs[1]).iterdir()) == [grow.ORIGIN, grow.STATE_NAME]
    assert not grow.parked(runs[0]).exists()
    saved = (runs[1] / grow.STATE_NAME).read_bytes()

    # a fresh checkout: no runs/ at all; park leaves the parked cycle alone
    import shutil
    shutil.rmtree(tmp_path / "runs")
    assert grow.park() == [] and (grow.parked(runs[1]) / grow.STATE_NAME).exists()
    calls = []

    class FakeTrainer:
        def __init__(self, cfg, geno, out, *, resume, progress, val_size, init_weights):
            calls.append((out.name, resume, (out / grow.STATE_NAME).read_bytes() if resume else None))
            self.out = out

        def run(self):
            net = torch.nn.Module()
            return SimpleNamespace(net=net, best_psnr=27.0, model_path=self.out / "model.pt")

        def _cpu_now(self):
            return 100.0

    monkeypatch.setattr(grow, "Trainer", FakeTrainer)
    monkeypatch.setattr(grow, "_shipped_cycles", lambda *a: pytest.fail("the parked cycle comes first"))
    trunk_state = {"step": 3500, "model": {}, "genotype": load_checkpoint(
        grow.BLIND / grow.TRUNK / "train_checkpoint.pt", kind="train")["genotype"], "cpu_s": 0.0}
    res, cpu_s, points = grow.train_cycles("denoise-s30", trunk_state, cfgs, 750, 0.0, restarts)
    assert calls == [(runs[1].name, True, saved)]  # the restart resumed, the first cycle not trained again
    assert cpu_s == 1000.0 and points == [[0.25, 26.5], [round(1000.0 / 3600, 4), 27.0]]
    assert not (tmp_path / "zoo" / "state" / "parked").exists()  # the branch is done: nothing parked


def test_park_needs_no_data_folder(tmp_path, monkeypatch, capsys):
    """`park` only copies checkpoints: it runs where ../shared is missing, and says what it kept."""
    grow = _script("grow_denoise")
    monkeypatch.setattr(grow, "ROOT", tmp_path)
    assert grow.main(["park", "--shared", str(tmp_path / "nowhere")]) == 0
    assert "0 unfinished cycle(s) in zoo/state/parked" in capsys.readouterr().out
