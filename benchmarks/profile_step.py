"""Where one search iteration's CPU time goes, by kind of kernel (torch profiler, self time).

    python -m benchmarks.profile_step --preset paper-denoise --threads 1 --json benchmarks/results/profile_step_denoise.json

The search-step benchmark says how far ours is from the authors' code; this says what is
left in ours: the convolutions themselves (the same arithmetic theirs does), BatchNorm,
the 1x1 convolutions (run as matrix products), copies and the rest.
"""
from __future__ import annotations

import argparse
import json
from typing import Dict

from benchmarks.common import machine_info, set_threads
from benchmarks.search_step import batches, build, search_iteration

# kernel name -> group (the first matching substring wins)
GROUPS = [("batch_norm", "BatchNorm (forward + backward)"),
          ("aten::mm", "1x1 convolutions as matrix products"), ("bmm", "1x1 convolutions as matrix products"),
          ("addmm", "1x1 convolutions as matrix products"),
          ("conv", "convolutions (forward + backward)"), ("mkldnn", "convolutions (forward + backward)"),
          ("copy_", "copies and concatenation"), ("cat", "copies and concatenation"),
          ("clone", "copies and concatenation"), ("contiguous", "copies and concatenation")]
OTHER = "everything else (activations, sums, the loss, optimisers)"


def group_of(key: str) -> str:
    for part, name in GROUPS:
        if part in key:
            return name
    return OTHER


def profile(preset: str, variant: str = "default", seed: int = 1) -> Dict:
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    cfg, net, loss_fn, w_opt, a_opt = build(preset, variant, None, None)
    gen = torch.Generator().manual_seed(seed)
    vb, tb = batches(cfg, gen)
    search_iteration(cfg, net, loss_fn, w_opt, a_opt, vb, tb)  # warm-up
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        search_iteration(cfg, net, loss_fn, w_opt, a_opt, vb, tb)
    groups: Dict[str, float] = {}
    total = 0.0
    for k in prof.key_averages():
        total += k.self_cpu_time_total
        g = group_of(k.key)
        groups[g] = groups.get(g, 0.0) + k.self_cpu_time_total
    return {"preset": preset, "variant": variant, "total_s": total / 1e6,
            "groups": {g: {"s": v / 1e6, "share": v / total} for g, v in sorted(groups.items(), key=lambda kv: -kv[1])}}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="paper-denoise")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    res = {**profile(args.preset), "machine": machine_info(args.threads)}
    print(f"{args.preset}, default variant, one profiled iteration: {res['total_s']:.2f} s of kernel self time")
    for g, v in res["groups"].items():
        print(f"  {g:60s} {v['s']:6.2f} s  {100 * v['share']:5.1f}%")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
