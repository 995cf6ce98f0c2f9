"""One short GPU session: correctness on CUDA, search-iteration speed and memory,
and a few hundred retraining steps. Prints a markdown report (and writes it to
``$OUT/gpu_check.md`` when ``OUT`` is set).

    PYTHONPATH=. python -m benchmarks.gpu_check [--iters 10] [--train-steps 300]

Meant to run from a bare machine with only torch installed (see
scripts/gpu_check.sh): nothing is pip-installed; PyYAML, which only config
files need, is stubbed when missing. Without CUDA the CUDA sections are
skipped with a message and a small CPU smoke run stands in, so the script
itself can be checked anywhere.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import types
from typing import Dict, List


def _stub_missing_yaml() -> None:
    # hinas_lib.config imports yaml at module level but only YAML files need it
    try:
        import yaml  # noqa: F401
    except ImportError:
        stub = types.ModuleType("yaml")

        def _missing(*a, **k):
            raise RuntimeError("PyYAML is not installed on this machine")

        stub.safe_dump = stub.safe_load = _missing
        stub.YAMLError = RuntimeError
        sys.modules["yaml"] = stub
        print("note: PyYAML missing, stubbed (config files unavailable; presets work)")


_stub_missing_yaml()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks.search_step import batches, build, search_iteration  # noqa: E402
from hinas_lib.fused import PerfOptions  # noqa: E402
from hinas_lib.config import get_preset  # noqa: E402
from hinas_lib.genotype import default_genotype  # noqa: E402
from hinas_lib.network import build_network  # noqa: E402
from hinas_lib.supernet import build_supernet  # noqa: E402
from hinas_lib.train import make_train_optimizer  # noqa: E402
from hinas_lib.supernet import SuperNet  # noqa: E402

PLAIN = PerfOptions.plain()
LINES: List[str] = []


def say(line: str = "") -> None:
    print(line, flush=True)
    LINES.append(line)


def _max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (b the reference)."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def _fwd_bwd(net, x, target) -> Dict[str, torch.Tensor]:
    net.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    y = net(x)
    F.mse_loss(y, target).backward()
    out = {"output": y.detach(), "grad input": x.grad}
    out.update({f"grad {n}": p.grad for n, p in net.named_parameters() if p.grad is not None})
    return out


def correctness(device: torch.device, tol: float) -> bool:
    """Supernet (optimised path, both cell-sharing modes) and discrete net on
    ``device`` vs the plain path on the CPU, float32, TF32 off."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    ok = True
    rows = []
    torch.manual_seed(0)
    x = torch.rand(2, 1, 32, 32)
    t = torch.rand(2, 1, 32, 32)

    def compare(name, build_ref, build_dev):
        """The reference net on the CPU against the same weights on ``device``."""
        torch.manual_seed(0)
        ref_net, dev_net = build_ref().train(), build_dev().train()
        dev_net.load_state_dict(ref_net.state_dict())
        ref = _fwd_bwd(ref_net, x, t)
        dev = _fwd_bwd(dev_net.to(device), x.to(device), t.to(device))
        rows.append((name, len(ref), max(((k, _max_rel(dev[k], ref[k])) for k in ref), key=lambda kv: kv[1])))

    for sharing in (True, False):
        cfg = get_preset("tiny").replace(space={"cell_sharing": sharing})
        compare(f"supernet, cell_sharing={sharing}", lambda: SuperNet(cfg, PLAIN), lambda: SuperNet(cfg))
    cfg = get_preset("paper-denoise")  # the authors' design
    compare("supernet, authors' design (paper-denoise)", lambda: build_supernet(cfg, PLAIN),
            lambda: build_supernet(cfg))
    g = default_genotype(cfg.space.layers, cfg.space.blocks, cfg.space.width_factors)
    compare("retraining network, authors' design (default genotype)", lambda: build_network(g, cfg),
            lambda: build_network(g, cfg))
    say(f"### Correctness: {device} vs CPU reference (float32, TF32 off, tolerance {tol:g} relative to max)")
    say("")
    say("| model | tensors compared | worst tensor | max rel. diff | ok |")
    say("|---|---|---|---|---|")
    for name, n, (k, v) in rows:
        good = v <= tol
        ok &= good
        say(f"| {name} | {n} | {k} | {v:.2e} | {'yes' if good else 'NO'} |")
    say("")
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = True
    return ok


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def search_speed(device: torch.device, preset: str, iters: int, warmup: int) -> None:
    say(f"### Search iteration, preset {preset} (arch step + weight step, as Searcher)")
    say("")
    say("| variant | amp | s/iter (median) | peak memory MiB |")
    say("|---|---|---|---|")
    for variant in ("default", "checkpoint", "no-sharing", "unoptimised"):
        for amp in ("none", "bf16"):
            if device.type != "cuda" and amp != "none":
                continue
            cfg, net, loss_fn, w_opt, a_opt = build(preset, variant, None, None, device=str(device))
            gen = torch.Generator().manual_seed(1)
            vb, tb = (tuple(t.to(device) for t in b) for b in batches(cfg, gen))
            if device.type == "cuda":
                vb = tuple(t.contiguous(memory_format=torch.channels_last) for t in vb)
                tb = tuple(t.contiguous(memory_format=torch.channels_last) for t in tb)

            def step():
                search_iteration(cfg, net, loss_fn, w_opt, a_opt, vb, tb, amp=amp)

            for _ in range(warmup):
                step()
            _sync(device)
            peak = float("nan")
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
                base = torch.cuda.memory_allocated(device)
            ts = []
            for _ in range(iters):
                t0 = time.perf_counter()
                step()
                _sync(device)
                ts.append(time.perf_counter() - t0)
            if device.type == "cuda":
                peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
            say(f"| {variant} | {amp} | {statistics.median(ts):.3f} | {peak:.0f} |")
            del net, w_opt, a_opt
            if device.type == "cuda":
                torch.cuda.empty_cache()
    say("")
    say("peak memory: torch.cuda.max_memory_allocated during the timed iterations, above what was "
        "allocated before them (activations, gradients, temporaries).")
    say("")


def retrain(device: torch.device, steps: int, batch: int, crop: int, amp: str) -> None:
    from hinas_lib.runtime import autocast

    cfg = get_preset("paper-denoise")
    g = default_genotype(cfg.space.layers, cfg.space.blocks, cfg.space.width_factors)
    torch.manual_seed(0)
    net = build_network(g, cfg).to(device).train()
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    opt = make_train_optimizer(net, cfg)  # the authors' SGD recipe
    gen = torch.Generator().manual_seed(2)
    clean = torch.rand(batch, 1, crop, crop, generator=gen).to(device)
    noisy = clean + 30 / 255 * torch.randn(clean.shape, generator=gen).to(device)
    losses = []
    _sync(device)
    t0 = time.perf_counter()
    for i in range(steps):
        with autocast(device, amp):
            loss = F.mse_loss(net(noisy).float(), clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i == 0 or i == steps - 1:
            losses.append(loss.item())
    _sync(device)
    dt = time.perf_counter() - t0
    say(f"| authors' network F={cfg.train.filters} | {amp} | {steps} | {batch}x1x{crop}x{crop} | {dt:.1f} | "
        f"{steps / dt:.1f} | {losses[0]:.4f} -> {losses[-1]:.4f} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="paper-denoise")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--tol", type=float, default=1e-3)
    args = ap.parse_args(argv)
    t_start = time.time()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    say("## GPU check")
    say("")
    say(f"torch {torch.__version__}, device: "
        f"{torch.cuda.get_device_name(0) if cuda else 'none (CPU only)'}, "
        f"date {time.strftime('%Y-%m-%d %H:%M')}")
    say("")
    ok = True
    if not cuda:
        say("**CUDA is not available: the CUDA checks are skipped.** A small CPU smoke run of the "
            "same code paths follows (tiny preset, few steps); its numbers are not GPU figures.")
        say("")
        search_speed(device, "tiny", iters=2, warmup=1)
        say("### Retraining (smoke)")
        say("")
        say("| net | amp | steps | batch | s | steps/s | loss first -> last |")
        say("|---|---|---|---|---|---|---|")
        retrain(device, steps=5, batch=4, crop=32, amp="none")
    else:
        torch.backends.cudnn.benchmark = True
        ok = correctness(device, args.tol)
        search_speed(device, args.preset, args.iters, args.warmup)
        say("### Retraining (Adam, random data)")
        say("")
        say("| net | amp | steps | batch | s | steps/s | loss first -> last |")
        say("|---|---|---|---|---|---|---|")
        for amp in ("none", "bf16"):
            retrain(device, steps=args.train_steps, batch=16, crop=64, amp=amp)
    say("")
    say(f"total wall time {time.time() - t_start:.0f} s; correctness {'passed' if ok else 'FAILED'}")
    out = os.environ.get("OUT")
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "gpu_check.md"), "w") as f:
            f.write("\n".join(LINES) + "\n")
        print(f"wrote {os.path.join(out, 'gpu_check.md')}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
