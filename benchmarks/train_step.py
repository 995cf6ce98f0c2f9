"""One retraining step of a zoo network, this checkout against another, side by side.

    python -m benchmarks.train_step --model denoise-s30 --threads 1 2 --previous /tmp/previous \
        --json benchmarks/results/train_step_s30.json

What the zoo's CPU-hours buy: :class:`hinas_lib.train.Trainer`'s own step (forward, loss,
backward, optimiser) on the entry's network and recipe (batch, crop, loss), on fixed random
patches (the step's cost does not depend on the pixels). Each (variant, threads) point runs in
its own fresh process, the variants taking turns:

* ``default``: this checkout;
* ``previous`` (``--previous DIR``, another checkout of this project, e.g.
  ``git worktree add /tmp/previous REV``): the same worker on that checkout's library.

The median seconds per step after two warm-up steps, and the process's user and system time.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, resource, sys, time
threads, model, steps = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
import torch
torch.set_num_threads(threads)
from hinas_lib.model_files import load_model
from hinas_lib.train import Trainer
net, cfg, _ = load_model(model, "cpu")
if cfg.task.task != "denoise":
    raise SystemExit(f"train_step times denoising entries (input and target the same size); {model} is {cfg.task.task}")
tr = Trainer(cfg, net.genotype, None, progress=False, val_size=0)
tr._started()
g = torch.Generator().manual_seed(0)
b, c, s = cfg.train.batch_size, cfg.task.channels, cfg.train.crop
y = torch.rand(b, c, s, s, generator=g)
x = (y + 0.1 * torch.randn(b, c, s, s, generator=g)).contiguous(memory_format=torch.channels_last)
y = y.contiguous(memory_format=torch.channels_last)
for _ in range(2):
    tr._step(x, y)
r0 = resource.getrusage(resource.RUSAGE_SELF)
times = []
for _ in range(steps):
    t = time.perf_counter()
    tr._step(x, y)
    times.append(time.perf_counter() - t)
r1 = resource.getrusage(resource.RUSAGE_SELF)
times.sort()
print(json.dumps({"threads": threads, "s_per_step": times[len(times) // 2], "steps": steps,
                  "user_s": r1.ru_utime - r0.ru_utime, "sys_s": r1.ru_stime - r0.ru_stime,
                  "batch": b, "crop": s, "params": sum(p.numel() for p in net.parameters())}))
"""


def run_point(variant: str, threads: int, model: str, steps: int, previous=None) -> Dict:
    from benchmarks.common import run_worker
    root = Path(previous) if variant == "previous" else ROOT
    return {**run_worker(WORKER, [threads, model, steps], threads, root, variant), "variant": variant}


def table(points: List[Dict]) -> str:
    lines = ["| threads | variant | s/step (median) | user s | system s | steps |", "|---|---|---|---|---|---|"]
    for p in points:
        lines.append(f"| {p['threads']} | {p['variant']} | {p['s_per_step']:.3f} | {p['user_s']:.1f} | "
                     f"{p['sys_s']:.1f} | {p['steps']} |")
    return "\n".join(lines)


def ratios(points: List[Dict], variants: List[str]) -> Dict[str, Dict[str, float]]:
    """Per thread count, each other variant's median step time over ``default``'s (medians over repeats)."""
    out = {}
    for t in sorted({p["threads"] for p in points}):
        med = {v: statistics.median(p["s_per_step"] for p in points if p["threads"] == t and p["variant"] == v)
               for v in variants}
        out[str(t)] = {f"{v} / default": med[v] / med["default"] for v in variants if v != "default"}
    return out


def main(argv=None) -> Dict:
    from benchmarks.common import machine_info, report_and_save, revision
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="denoise-s30", help="a zoo denoising entry or a model.pt")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=10, help="timed steps per point")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--previous", default=None, metavar="DIR",
                    help="another checkout of this project: adds the previous variant")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    if a.previous and not (Path(a.previous) / "hinas_lib").is_dir():
        ap.error(f"--previous: {a.previous} is not a checkout of this project (no hinas_lib/ in it)")
    if a.steps < 1:
        ap.error(f"--steps: at least 1, got {a.steps}")
    from hinas_lib.zoo import resolve_model
    model = str(resolve_model(a.model))
    variants = ["default"] + (["previous"] if a.previous else [])
    machine = machine_info(max(a.threads))
    points = []
    for _ in range(a.repeats):
        for t in a.threads:
            for v in variants:
                p = run_point(v, t, model, a.steps, a.previous)
                print(json.dumps(p), flush=True)
                points.append(p)
    res = {"machine": machine, "model": a.model, "points": points, "table": table(points),
           "ratios": ratios(points, variants), "repeats": a.repeats,
           **({"previous": revision(a.previous)} if a.previous else {})}
    return report_and_save(res, a.json)


if __name__ == "__main__":
    main()
