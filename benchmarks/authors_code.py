"""The authors' own code as the benchmark's anchor, timed side by side with ours.

Nothing of theirs is in this repository: pass a checkout of
github.com/hkzhang91/HiNAS with ``--authors-src DIR`` (and ``pip install yacs``,
their config library). Their search code calls ``.cuda()`` unconditionally; on
a CPU the worker process (only it) replaces ``Tensor.cuda`` / ``Module.cuda``
with no-ops, and stubs ``tensorboardX`` and ``rawpy`` when they are missing
(imported, never used in a search step).

One iteration is their ``one_stage_nas/engine/searcher.py:train`` loop body
after the warm-up: an architecture step (forward, a full backward into every
parameter, Adam on alpha/beta) then a weight step (forward, backward, SGD).
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

import torch

# their search configs for our paper presets
CONFIGS = {"paper-denoise": "configs/dn/BSD500_3c4n/03_search_CR_R0.yaml",
           "paper-sr": "configs/sr/DIV2K_2c3n/03_search_CR.yaml"}


def _stub(name: str, **attrs) -> None:
    if name not in sys.modules:
        try:
            __import__(name)
        except ImportError:
            mod = types.ModuleType(name)
            mod.__dict__.update(attrs)
            sys.modules[name] = mod


def build(src: str, preset: str, scale: int = 4):
    """Their supernet and optimisers for ``preset``; returns ``(model, iteration)``
    where ``iteration(val_batch, train_batch)`` runs one search iteration."""
    if preset not in CONFIGS:
        raise SystemExit(f"--authors-src: no authors' config for preset {preset!r} (only {list(CONFIGS)})")
    root = Path(src).expanduser()
    if not (root / "one_stage_nas").is_dir():
        raise SystemExit(f"--authors-src {src}: not a checkout of hkzhang91/HiNAS (no one_stage_nas/)")
    try:
        import yacs  # noqa: F401
    except ImportError:
        raise SystemExit("--authors-src needs their config library: pip install yacs") from None
    torch.Tensor.cuda = lambda self, *a, **k: self           # CPU: their .cuda() calls become no-ops
    torch.nn.Module.cuda = lambda self, *a, **k: self
    _stub("tensorboardX", SummaryWriter=lambda *a, **k: None)
    _stub("rawpy")
    sys.path.insert(0, str(root))
    from one_stage_nas.config import cfg as base  # noqa: PLC0415 -- their code, found at run time
    from one_stage_nas.modeling.architectures import build_model  # noqa: PLC0415
    from one_stage_nas.solver.build import make_search_optimizers  # noqa: PLC0415

    cfg = base.clone()
    cfg.merge_from_file(str(root / CONFIGS[preset]))
    if preset == "paper-sr":
        cfg.merge_from_list(["DATALOADER.S_FACTOR", scale])
    torch.manual_seed(0)
    model = build_model(cfg)
    model.train()
    opt = make_search_optimizers(cfg, model)
    optim_w, optim_a = opt["optim_w"], opt["optim_a"]

    def iteration(val_batch, train_batch):
        xa, ya = val_batch
        loss_a = sum(loss for loss in model(xa, ya).values()).mean()
        optim_a.zero_grad()
        loss_a.backward()
        optim_a.step()
        x, y = train_batch
        loss_w = sum(loss for loss in model(x, y).values()).mean()
        optim_w.zero_grad()
        loss_w.backward()
        optim_w.step()
        return float(loss_a), float(loss_w)

    return model, iteration


def weight_params(model) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if "arch" not in n)


__all__ = ["build", "weight_params", "CONFIGS"]
