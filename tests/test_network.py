"""The discrete network of a genotype, and checkpoint files."""
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hinas_lib import checkpoint as ckpt_mod
from hinas_lib.checkpoint import CheckpointError, atomic_save, atomic_write_text, load_checkpoint
from hinas_lib.cells import FixedCell
from hinas_lib.config import get_preset
from hinas_lib.genotype import Genotype, default_genotype
from hinas_lib.network import CompactNet
from hinas_lib.ops import ActConvBN

CELL = ((("conv_3x3", 1), ("skip_connect", 0)), (("sep_conv_3x3", 2), ("dil_conv_3x3", 0)))


def _geno(path=(0, 1, 2)):
    return Genotype(cells=(CELL,) * len(path), path=path)


def _cfg(task="denoise", scale=2, channels=None, filters=8):
    cfg = get_preset("tiny", task=task, scale=scale).replace(train={"filters": filters})
    return cfg.replace(task={"channels": channels}) if channels else cfg


# ---------------------------------------------------------------- shapes
@pytest.mark.parametrize("task,channels,scale", [("denoise", 1, 1), ("denoise", 3, 1),
                                                 ("sr", 3, 2), ("sr", 3, 3), ("sr", 3, 4)])
def test_forward_shapes_at_odd_sizes(task, channels, scale):
    cfg = _cfg(task, scale if task == "sr" else 2, channels)
    for g in (_geno(), default_genotype(2, 2)):
        net = CompactNet(g, cfg)
        x = torch.rand(2, channels, 17, 23)
        y = net(x)
        assert y.shape == (2, channels, 17 * scale, 23 * scale)
        assert torch.isfinite(y).all()


def test_the_earlier_name_still_builds_the_compact_network():
    import hinas_lib
    from hinas_lib.designs import get_design
    from hinas_lib.network import HiNASNet
    assert HiNASNet is CompactNet is hinas_lib.HiNASNet is hinas_lib.CompactNet
    assert get_design("compact").network is CompactNet


def test_denoise_output_is_input_minus_predicted_noise():
    net = CompactNet(_geno(), _cfg()).eval()
    x = torch.rand(2, 1, 17, 23)
    with torch.no_grad():
        y = net(x)
        noise = net.head.conv(net.features(x))
    torch.testing.assert_close(y - x, -noise, atol=1e-6, rtol=1e-5)
    assert noise.abs().max() > 0


def test_sr_output_is_bicubic_plus_subpixel_residual():
    net = CompactNet(_geno(), _cfg("sr", 3)).eval()
    x = torch.rand(2, 3, 9, 11)
    with torch.no_grad():
        y = net(x)
        up = F.interpolate(x, scale_factor=3, mode="bicubic", align_corners=False)
        res = net.head.shuffle(net.head.conv(net.features(x)))
    torch.testing.assert_close(y - up, res, atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------- structure
def test_parameter_count_grows_with_filters():
    g, cfg = _geno(), _cfg()
    counts = [CompactNet(g, cfg, filters=f).num_params() for f in (4, 8, 16)]
    assert counts[0] < counts[1] < counts[2]
    assert CompactNet(g, cfg).num_params() == counts[1]  # filters default to cfg.train.filters
    assert counts[1] == sum(p.numel() for p in CompactNet(g, cfg).parameters())


def test_widths_follow_the_path_and_routers():
    net = CompactNet(_geno((0, 1, 2)), _cfg(filters=8))
    assert net.widths == [8, 12, 16]
    assert isinstance(net.routers[0], nn.Identity)
    for l, (c_in, c_out) in enumerate([(8, 12), (12, 16)], start=1):
        r = net.routers[l]
        assert isinstance(r, ActConvBN)
        conv = r[1]
        assert (conv.in_channels, conv.out_channels) == (c_in, c_out)
    assert net.proj.in_channels == 16 and net.proj.out_channels == 8
    for cell, C in zip(net.cells, net.widths):
        assert isinstance(cell, FixedCell) and cell.out.out_channels == C

    net = CompactNet(_geno((1, 1, 0)), _cfg(filters=8))
    assert net.widths == [12, 12, 8]
    assert [isinstance(r, nn.Identity) for r in net.routers] == [False, True, False]


def test_widths_come_from_the_genotype_factors():
    g = Genotype(cells=(CELL, CELL), path=(1, 2), width_factors=(1.0, 2.0, 3.0))
    net = CompactNet(g, _cfg(filters=4))
    assert net.widths == [8, 12]
    assert net(torch.rand(1, 1, 9, 9)).shape == (1, 1, 9, 9)


def test_cells_follow_the_genotype():
    net = CompactNet(_geno((0, 0, 0)), _cfg())
    for cell in net.cells:
        assert cell.inputs == [[1, 0], [2, 0]]
        assert isinstance(cell.ops[0][1], nn.Identity)


def test_a_few_adam_steps_reduce_the_loss():
    net = CompactNet(_geno((0, 1, 1)), _cfg(filters=8)).train()
    clean = torch.rand(2, 1, 16, 16)
    noisy = clean + 0.1 * torch.randn_like(clean)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = F.mse_loss(net(noisy), clean)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    with torch.no_grad():
        assert F.mse_loss(net(noisy), clean).item() < losses[0]


# ---------------------------------------------------------------- checkpoints
def test_atomic_save_and_load_round_trip(tmp_path):
    net = CompactNet(_geno(), _cfg())
    obj = {"kind": "model", "state": net.state_dict(), "genotype": _geno().to_dict(), "step": 7}
    p = tmp_path / "deep" / "model.pt"
    atomic_save(obj, p)
    back = load_checkpoint(p, kind="model")
    assert back["step"] == 7 and back["genotype"] == obj["genotype"]
    assert Genotype.from_dict(back["genotype"]) == _geno()
    fresh = CompactNet(_geno(), _cfg())
    fresh.load_state_dict(back["state"])
    x = torch.rand(1, 1, 12, 12)
    net.eval(), fresh.eval()
    with torch.no_grad():
        assert torch.equal(net(x), fresh(x))
    assert load_checkpoint(p)["kind"] == "model"  # kind=None: no check
    assert sorted(os.listdir(p.parent)) == ["model.pt"]


def test_wrong_kind_is_rejected(tmp_path):
    p = tmp_path / "s.pt"
    atomic_save({"kind": "search", "x": torch.zeros(2)}, p)
    with pytest.raises(CheckpointError, match="'search' checkpoint, expected a 'model'"):
        load_checkpoint(p, kind="model")
    atomic_save({"x": torch.zeros(2)}, p)
    with pytest.raises(CheckpointError, match="not a hinas checkpoint"):
        load_checkpoint(p, kind="model")


def test_missing_and_corrupted_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")
    p = tmp_path / "broken.pt"
    atomic_save({"kind": "model", "w": torch.randn(100)}, p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*broken\.pt"):
        load_checkpoint(p, kind="model")
    p.write_bytes(b"garbage" * 10)
    with pytest.raises(CheckpointError, match=r"broken\.pt"):
        load_checkpoint(p)


def test_arbitrary_pickles_are_refused(tmp_path):
    from fractions import Fraction  # picklable, but not on weights_only's allow-list

    p = tmp_path / "evil.pt"
    torch.save({"kind": "model", "obj": Fraction(1, 3)}, p)
    with pytest.raises(CheckpointError, match=r"evil\.pt"):
        load_checkpoint(p)


def test_old_file_survives_a_failing_writer(tmp_path, monkeypatch):
    p = tmp_path / "model.pt"
    atomic_save({"kind": "model", "v": torch.arange(5)}, p)
    before = p.read_bytes()

    def half_then_crash(obj, f, *a, **k):
        f.write(b"PARTIAL" * 100)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ckpt_mod.torch, "save", half_then_crash)
    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_save({"kind": "model", "v": torch.arange(9)}, p)
    monkeypatch.undo()
    assert p.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]  # no temp file left behind
    assert torch.equal(load_checkpoint(p, kind="model")["v"], torch.arange(5))


def test_atomic_write_text_failure_leaves_old_text(tmp_path, monkeypatch):
    p = tmp_path / "g.json"
    atomic_write_text(p, "old\n")

    def boom(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(ckpt_mod.os, "fsync", boom)
    with pytest.raises(OSError, match="fsync failed"):
        atomic_write_text(p, "new\n")
    monkeypatch.undo()
    assert p.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["g.json"]
