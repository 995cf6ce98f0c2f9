"""Time of one eval-mode forward of the search supernet on a 256x256 grey image
(anchor: the authors' code, ~9 s on 2 threads at paper-denoise).

    python -m benchmarks.eval_forward --preset paper-denoise --threads 2 [--iters 5] [--json OUT.json]

The optimised path and the straightforward per-edge NCHW path
(``unoptimised``) are timed in one process, alternately, call by call.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from benchmarks.common import machine_info, set_threads
from benchmarks.search_step import ANCHOR
from hinas_lib.fused import PerfOptions
from hinas_lib.config import get_preset
from hinas_lib.supernet import build_supernet

PATHS = {"default": PerfOptions(), "unoptimised": PerfOptions(fuse_edges=False, channels_last=False)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="paper-denoise")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    cfg = get_preset(args.preset)
    torch.manual_seed(0)
    nets = {name: build_supernet(cfg, perf).eval() for name, perf in PATHS.items()}
    state = nets["default"].state_dict()
    for net in nets.values():
        net.load_state_dict(state)  # the same weights: the paths must agree
    x = torch.rand(1, cfg.task.channels, args.size, args.size)
    times = {k: [] for k in PATHS}
    outs = {}
    with torch.no_grad():
        for i in range(args.warmup + args.iters):
            for name, net in nets.items():
                t0 = time.perf_counter()
                outs[name] = net(x)
                t = time.perf_counter() - t0
                if i >= args.warmup:
                    times[name].append(t)
    diff = float((outs["default"] - outs["unoptimised"]).abs().max())
    anchor = ANCHOR.get(args.preset, {}).get("eval_forward_256_s")
    res = {k: {"s_median": statistics.median(v), "s_min": min(v), "all": [round(t, 4) for t in v]}
           for k, v in times.items()}
    print(f"eval forward, {args.preset} supernet, 1x{cfg.task.channels}x{args.size}x{args.size}, "
          f"{args.threads} threads (max |default - unoptimised| = {diff:.2e})")
    print("| path | s (median) | s (min) | vs anchor |\n|---|---|---|---|")
    for k, r in res.items():
        vs = f"{anchor / r['s_median']:.1f}x faster" if anchor and args.size == 256 else "-"
        print(f"| {k} | {r['s_median']:.3f} | {r['s_min']:.3f} | {vs} |")
    report = {"preset": args.preset, "size": args.size, "s_median": res["default"]["s_median"], "paths": res,
              "max_abs_diff": diff, "anchor_s": anchor, "machine": machine_info(args.threads)}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    main()
