"""Size and speed of the derived (discrete) network, next to classic baselines.

    python -m benchmarks.derived --threads 2 [--genotype GENOTYPE.json] [--json OUT.json]

For denoising (paper-denoise, F = train.filters) and SR x2/x3/x4 (paper-sr):
parameters, multiply-adds per megapixel of output (forward hooks on every
conv: output elements * in_channels / groups * kh * kw; a transposed conv
counts input elements * out_channels / groups * kh * kw) and CPU ms per
megapixel of output (eval mode, no grad, median of --iters runs on a
--size x --size output). Baselines, built here: DnCNN-17 (64 channels, 17
conv layers, BN, residual) for denoising, FSRCNN (d=56, s=12, m=4) for SR.
The default genotype is ``hinas_lib.genotype.default_genotype`` (a plain
conv_3x3 chain); pass a searched one with --genotype.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Dict, Optional

import torch
from torch import nn

from benchmarks.common import machine_info, set_threads
from hinas_lib.config import get_preset
from hinas_lib.genotype import Genotype, default_genotype
from hinas_lib.network import build_network


class DnCNN(nn.Module):
    """Zhang et al. 2017: conv+ReLU, (depth-2) x conv+BN+ReLU, conv; predicts the noise."""

    def __init__(self, channels: int = 1, features: int = 64, depth: int = 17):
        super().__init__()
        layers = [nn.Conv2d(channels, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1, bias=False), nn.BatchNorm2d(features),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x - self.body(x)


class FSRCNN(nn.Module):
    """Dong et al. 2016: feature extraction 5x5 (d), shrink 1x1 (s), m x 3x3 (s),
    expand 1x1 (d), 9x9 deconvolution with stride = scale; PReLU throughout."""

    def __init__(self, scale: int, channels: int = 3, d: int = 56, s: int = 12, m: int = 4):
        super().__init__()
        layers = [nn.Conv2d(channels, d, 5, padding=2), nn.PReLU(d), nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        layers += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        self.deconv = nn.ConvTranspose2d(d, channels, 9, stride=scale, padding=4, output_padding=scale - 1)

    def forward(self, x):
        return self.deconv(self.body(x))


def count_macs(net: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of one forward, from hooks on Conv2d / ConvTranspose2d."""
    total = 0

    def conv_hook(m, inp, out):
        nonlocal total
        kh, kw = m.kernel_size
        if isinstance(m, nn.ConvTranspose2d):
            total += inp[0].numel() * (m.out_channels // m.groups) * kh * kw
        else:
            total += out.numel() * (m.in_channels // m.groups) * kh * kw

    hooks = [m.register_forward_hook(conv_hook) for m in net.modules()
             if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in hooks:
            h.remove()
    return total


def count_executed_macs(net: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds one forward actually runs: :func:`count_macs`'s module hooks plus the fused
    oneDNN convolutions of a planned network (:mod:`hinas_lib.inference_plan`), which run outside
    any module. The plan composes some convs (fewer multiply-adds than the network's count)."""
    from hinas_lib import inference_plan as plan
    total = 0
    originals = {name: getattr(plan, name) for name in ("_conv_unary", "_conv_add", "_conv_add_")}

    def counted(name):
        f = originals[name]

        def run(*args):
            nonlocal total
            w = args[1] if name == "_conv_unary" else args[2]  # (x, w, ...); (x, other, w, ...); (other, x, w, ...)
            y = f(*args)
            total += y.numel() * w.shape[1] * w.shape[2] * w.shape[3]
            return y
        return run

    try:
        for name in originals:
            setattr(plan, name, counted(name))
        return count_macs(net, x) + total
    finally:
        for name, f in originals.items():
            setattr(plan, name, f)


def measure(net: nn.Module, channels: int, scale: int, size: int, iters: int) -> Dict:
    net.eval()
    lr = max(1, size // scale)
    out_px = (lr * scale) ** 2
    x = torch.rand(1, channels, lr, lr)
    macs = count_macs(net, x)
    ts = []
    with torch.no_grad():
        net(x)  # warm-up (oneDNN primitive creation)
        for _ in range(iters):
            t0 = time.perf_counter()
            net(x)
            ts.append(time.perf_counter() - t0)
    return {"params": sum(p.numel() for p in net.parameters()),
            "gmacs_per_mpx": macs / out_px * 1e6 / 1e9,
            "ms_per_mpx": statistics.median(ts) * 1e3 / out_px * 1e6}


def _designs(cfg):
    """The paper preset's network (the authors' design) and the compact one at the same F."""
    compact = cfg.replace(space={"style": "compact", "primitives": list(get_preset("tiny").space.primitives),
                                 "arch_init": "random"})
    return (("HiNAS, authors' design", cfg), ("HiNAS, compact design", compact))


def rows(genotype: Optional[Genotype], size: int, iters: int):
    out = []
    cfg = get_preset("paper-denoise")
    g = genotype or default_genotype(cfg.space.layers, cfg.space.blocks, cfg.space.width_factors)
    for name, c in _designs(cfg):
        out.append(("denoise", name, measure(build_network(g, c), 1, 1, size, iters)))
    out.append(("denoise", "DnCNN-17", measure(DnCNN(1), 1, 1, size, iters)))
    for scale in (2, 3, 4):
        cfg = get_preset("paper-sr", scale=scale)
        g = genotype or default_genotype(cfg.space.layers, cfg.space.blocks, cfg.space.width_factors)
        for name, c in _designs(cfg):
            out.append((f"SR x{scale}", name, measure(build_network(g, c), 3, scale, size, iters)))
        out.append((f"SR x{scale}", "FSRCNN(56,12,4)", measure(FSRCNN(scale), 3, scale, size, iters)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--genotype", default=None, help="genotype JSON (default: default_genotype)")
    ap.add_argument("--size", type=int, default=512, help="output side in pixels for the timing")
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    torch.manual_seed(0)
    geno = Genotype.load(args.genotype) if args.genotype else None
    table = rows(geno, args.size, args.iters)
    lines = ["| task | network | params | GMACs / MP | CPU ms / MP |", "|---|---|---|---|---|"]
    for task, name, r in table:
        lines.append(f"| {task} | {name} | {r['params'] / 1e3:.1f} K | {r['gmacs_per_mpx']:.2f} | "
                     f"{r['ms_per_mpx']:.0f} |")
    text = "\n".join(lines)
    print(f"derived networks ({'genotype ' + args.genotype if args.genotype else 'default_genotype'}), "
          f"{args.threads} threads, {args.size}x{args.size} output")
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"genotype": args.genotype or "default_genotype", "rows": [
                {"task": t, "network": n, **r} for t, n, r in table], "table": text,
                "machine": machine_info(args.threads)}, f, indent=1)
    return table


if __name__ == "__main__":
    main()
