"""Time and memory of one HiNAS search iteration (one architecture step + one
weight step, each a forward and a backward), as ``hinas_lib.search.Searcher``
runs it, next to the authors' code at the same settings.

    python -m benchmarks.search_step --preset paper-denoise --threads 1 \\
        [--authors-src ~/HiNAS] [--iters N] [--warmup W] [--json OUT.json] [--variants default,...]
    python -m benchmarks.search_step --preset paper-denoise --style compact --sweep layers|batch

``--before DIR`` (another checkout of this project, e.g. ``git worktree add /tmp/before REV``)
adds the ``before`` variant: the default step as that checkout's code runs it, interleaved
with ours, for "performance must not move" checks of a refactoring.

``--authors-src`` (a checkout of hkzhang91/HiNAS, see ``benchmarks/authors_code.py``)
adds the ``authors-code`` variant: their supernet and their training-loop step
in a worker of its own, interleaved with ours, so the ratios are like for like
(the same function class: the paper presets build the authors' design).

Each variant runs in its own subprocess (so its max RSS is its own); the
parent drives them in turn, one iteration each, round-robin, so that a burst
of load from other processes on the machine hits every variant alike. Per
variant it reports the median iteration time after the warm-up, the peak
memory of one more iteration (``benchmarks.common.profiler_peak_mib``: the
profiler's allocation events; on CUDA ``torch.cuda.max_memory_allocated``)
and the process's max RSS, measured before that profiled iteration.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

# The authors' code at the same settings on this machine type, 2 threads, torch 2.13 CPU, as
# quoted in issue 13 (used only when --authors-src is not given: then nothing is measured side by side).
ANCHOR = {
    "paper-denoise": {"iter_s": 28.2, "peak_mem_mib": 4263, "max_rss_mib": 6.2 * 1024, "eval_forward_256_s": 9.0,
                      "measured": "quoted (issue 13), not in this run"},
    "paper-sr": {"iter_s": 31.5, "peak_mem_mib": None, "max_rss_mib": 9.6 * 1024,
                 "measured": "quoted (issue 13), not in this run"},
}

# name -> (cell_sharing, checkpoint_cells, hinas_lib.fused.PerfOptions fields the variant changes)
VARIANTS = {
    "default": (True, False, {}),
    "no-sharing": (False, False, {}),
    "checkpoint": (True, True, {}),
    "no-sharing-checkpoint": (False, True, {}),
    # the straightforward path: one mixed op per edge, NCHW, nothing recomputed
    "unoptimised": (True, False, {"fuse_edges": False, "channels_last": False, "recompute": False}),
    "unoptimised-no-sharing": (False, False, {"fuse_edges": False, "channels_last": False, "recompute": False}),
    # one optimisation at a time
    "no-fuse": (True, False, {"fuse_edges": False}),
    "nchw": (True, False, {"channels_last": False}),
    "no-recompute": (True, False, {"recompute": False}),
    # the default path under torch.compile (Inductor, CPU): measured, not kept (RESULTS.md)
    "compiled": (True, False, {}),
    # ours, but the architecture step back-propagates into the weights too, as the authors'
    # (and throws those gradients away): isolates what the alpha/beta-only gradient saves
    "full-backward": (True, False, {}),
    # the authors' own code (--authors-src)
    "authors-code": None,
    # our default step as another checkout of this project runs it (--before)
    "before": None,
}
DEFAULT_VARIANTS = "default,no-sharing,checkpoint,no-sharing-checkpoint,unoptimised"
# the authors' design shares one cell per node: no-sharing variants are compact-only
AUTHORS_VARIANTS = "default,checkpoint,unoptimised,full-backward"
SWEEPS = {"layers": [2, 3, 4, 5], "batch": [2, 6, 12]}


# ---------------------------------------------------------------------------
# worker: one variant in one process
# ---------------------------------------------------------------------------

def build(preset: str, variant: str, layers: Optional[int], batch: Optional[int], seed: int = 0,
          device: str = "cpu", style: Optional[str] = None):
    import torch

    from hinas_lib.config import get_preset
    from hinas_lib.designs import get_design
    from hinas_lib.fused import PerfOptions
    from hinas_lib.ops import PRIMITIVES
    from hinas_lib.runtime import prepare_model
    from hinas_lib.search import make_optimizers
    from hinas_lib.supernet import build_supernet
    from hinas_lib.tasks import get_task

    sharing, ckpt, perf = VARIANTS[variant]
    cfg = get_preset(preset)
    space = {"cell_sharing": sharing, "checkpoint_cells": ckpt}
    if style:  # the design's own candidates (None: every registered op) and initialisation
        design = get_design(style)
        primitives = PRIMITIVES if design.primitives is None else design.primitives
        space.update(style=style, primitives=list(primitives), arch_init=design.arch_init)
    if layers:
        space["layers"] = layers
    cfg = cfg.replace(space=space, search={"batch_size": batch} if batch else {})
    torch.manual_seed(seed)
    net = prepare_model(build_supernet(cfg, PerfOptions(**perf)), torch.device(device)).train()  # as Searcher does
    w_opt, a_opt = make_optimizers(net, cfg)  # exactly as Searcher builds them
    if variant == "compiled":  # the first (warm-up) iteration compiles; attributes pass through to net
        net = torch.compile(net)
    return cfg, net, get_task(cfg).loss(), w_opt, a_opt


def search_iteration(cfg, net, loss_fn, w_opt, a_opt, val_batch, train_batch, amp: str = "none",
                     full_backward: bool = False):
    """One architecture step then one weight step, with the functions Searcher runs
    (batches already on the net's device, as ``to_device`` leaves them).
    ``full_backward``: the architecture step back-propagates into every parameter,
    as the authors' code does, and the weight gradients are then dropped."""
    from hinas_lib.runtime import check_finite
    from hinas_lib.search import arch_step, weight_step

    device = net.alpha.device
    if full_backward:
        loss = loss_fn(net(val_batch[0]), val_batch[1])
        a_opt.zero_grad(set_to_none=True)
        loss.backward()
        a_opt.step()
        for p in net.weight_parameters():
            p.grad = None
        a_loss = loss.item()
    else:
        a_loss = arch_step(net, a_opt, loss_fn, *val_batch, device=device, amp=amp,
                           on_loss=lambda loss: check_finite(loss, "architecture", 0, ""))
    w_loss = weight_step(net, w_opt, loss_fn, *train_batch, grad_clip=cfg.search.grad_clip, device=device,
                         amp=amp, on_loss=lambda loss: check_finite(loss, "training", 0, ""))
    return a_loss, w_loss


# useful multiply-adds of one iteration, in forwards: the architecture step's forward and its
# backward to the inputs of every layer (2), the weight step's forward and its backward to the
# inputs and to the weights (3)
FORWARDS_PER_ITERATION = 5


def roofline(args, cfg, batch) -> Dict:
    """The default variant's distance to this machine's limit, measured in its own worker: the
    supernet's forward multiply-adds on one batch (counted on the plain path, the same function,
    whose convolutions are modules: every candidate op of every edge, as both codes compute),
    and a 2048 x 2048 float32 matmul's rate at the same thread count."""
    from benchmarks.common import matmul_gmac_s
    from benchmarks.derived import count_macs

    _, plain, _, _, _ = build(args.preset, "unoptimised", args.layers, args.batch, style=args.style)
    macs = count_macs(plain, batch[0])
    return {"forward_macs": macs, "useful_macs_per_iter": FORWARDS_PER_ITERATION * macs,
            "matmul_gmac_s": matmul_gmac_s()}


def batches(cfg, gen):
    """A validation and a training batch of the preset's batch size and crop (CPU)."""
    from hinas_lib.profiling import random_batch

    s = cfg.search
    return (random_batch(cfg, s.batch_size, s.crop, "cpu", gen), random_batch(cfg, s.batch_size, s.crop, "cpu", gen))


def worker(args) -> None:
    """Line protocol on stdin/stdout: 'iter' -> {"t": s}; 'mem' -> {"peak_mib", "max_rss_mib"}."""
    import time

    import torch

    from benchmarks.common import profiler_peak_mib, set_threads
    from hinas_lib.runtime import max_rss_mib

    from hinas_lib.config import get_preset

    set_threads(args.threads)
    if args.worker == "authors-code":
        from benchmarks import authors_code
        cfg = get_preset(args.preset).replace(search={"batch_size": args.batch} if args.batch else {})
        model, step = authors_code.build(args.authors_src, args.preset)
        n_weights = authors_code.weight_params(model)
        iteration = lambda: step(val_b, train_b)  # noqa: E731
    else:
        cfg, net, loss_fn, w_opt, a_opt = build(args.preset, args.worker, args.layers, args.batch, style=args.style)
        n_weights = net.num_weight_params()
        full = args.worker == "full-backward"
        iteration = lambda: search_iteration(cfg, net, loss_fn, w_opt, a_opt, val_b, train_b,  # noqa: E731
                                             full_backward=full)
    gen = torch.Generator().manual_seed(1)
    val_b, train_b = batches(cfg, gen)
    out = sys.stdout
    out.write(json.dumps({"ready": True, "weight_params": n_weights}) + "\n")
    out.flush()
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "iter":
            t0 = time.perf_counter()
            losses = iteration()
            msg = {"t": time.perf_counter() - t0, "losses": losses}
        elif cmd == "mem":
            rss = max_rss_mib()  # before the profiler adds its own bookkeeping
            peak = profiler_peak_mib(iteration)
            msg = {"peak_mib": peak, "max_rss_mib": rss}
        elif cmd == "roofline":  # asked after "mem": building the plain net must not count in max RSS
            msg = roofline(args, cfg, val_b)
        else:
            break
        out.write(json.dumps(msg) + "\n")
        out.flush()


# ---------------------------------------------------------------------------
# parent: round-robin over worker processes
# ---------------------------------------------------------------------------

class Worker:
    def __init__(self, label: str, variant: str, args, layers=None, batch=None):
        cmd = [sys.executable, "-m", "benchmarks.search_step", "--worker", variant, "--preset", args.preset,
               "--threads", str(args.threads)]
        if layers:
            cmd += ["--layers", str(layers)]
        if batch:
            cmd += ["--batch", str(batch)]
        if args.style:
            cmd += ["--style", args.style]
        if args.authors_src:
            cmd += ["--authors-src", args.authors_src]
        env = dict(__import__("os").environ, OMP_NUM_THREADS=str(args.threads))
        cwd = None
        if variant == "before":  # that checkout's own benchmark worker, on its own code
            cmd[cmd.index("--worker") + 1] = "default"
            cwd = args.before
        self.label, self.variant = label, variant
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=cwd)
        self.info = self._read()
        self.times: List[float] = []
        self.mem: Dict = {}

    def _read(self) -> Dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.label} died (exit code {self.proc.wait()})")
        return json.loads(line)

    def ask(self, cmd: str) -> Dict:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        self.proc.wait()


def run_group(specs, args, iters: int, warmup: int, log=print) -> Dict[str, Dict]:
    """specs: [(label, variant, layers, batch)]. Workers alive together (unless
    --sequential), iterations interleaved; memory measured at the end."""
    import statistics

    results: Dict[str, Dict] = {}

    def finish(w: Worker) -> None:
        w.mem = w.ask("mem")
        roof = w.ask("roofline") if w.variant == "default" else None
        w.close()
        results[w.label] = {
            "variant": w.variant,
            "iter_s_median": statistics.median(w.times),
            "iter_s_min": min(w.times),
            "iter_s_all": [round(t, 3) for t in w.times],
            "peak_mem_mib": round(w.mem["peak_mib"], 1),
            "max_rss_mib": round(w.mem["max_rss_mib"], 1),
            "weight_params": w.info["weight_params"],
            **({"roofline": {**roof, "useful_gmac_s": roof["useful_macs_per_iter"] / statistics.median(w.times) / 1e9}}
               if roof else {}),
        }
        log(f"  {w.label:28s} median {results[w.label]['iter_s_median']:7.2f} s/iter  "
            f"peak {results[w.label]['peak_mem_mib']:8.0f} MiB  max RSS {results[w.label]['max_rss_mib']:8.0f} MiB")

    groups = [[s] for s in specs] if args.sequential else [specs]
    for group in groups:
        workers = [Worker(label, variant, args, layers, batch) for label, variant, layers, batch in group]
        try:
            for i in range(warmup + iters):
                for w in workers:
                    t = w.ask("iter")["t"]
                    if i >= warmup:
                        w.times.append(t)
                    log(f"    {'warm-up' if i < warmup else 'iter'} {i:2d} {w.label:28s} {t:7.2f} s")
            for w in workers:
                finish(w)
        finally:
            for w in workers:
                if w.proc.poll() is None:
                    w.proc.kill()
    return results


def _ratio(a, b) -> Optional[float]:
    return round(a / b, 2) if a and b else None


def main_table(res: Dict[str, Dict], anchor: Dict) -> str:
    lines = ["| variant | s/iter (median) | peak MiB | max RSS MiB | time vs anchor | peak vs anchor | RSS vs anchor |",
             "|---|---|---|---|---|---|---|"]
    for name, r in res.items():
        lines.append(f"| {name} | {r['iter_s_median']:.2f} | {r['peak_mem_mib']:.0f} | {r['max_rss_mib']:.0f} | "
                     f"{_fmt_x(anchor.get('iter_s'), r['iter_s_median'])} | "
                     f"{_fmt_x(anchor.get('peak_mem_mib'), r['peak_mem_mib'])} | "
                     f"{_fmt_x(anchor.get('max_rss_mib'), r['max_rss_mib'])} |")
    return "\n".join(lines)


def _fmt_x(anchor_val, val) -> str:
    """'3.1x less' style: anchor / value."""
    if not anchor_val or not val:
        return "-"
    return f"{anchor_val / val:.2f}x less"


def pair_ratios(res: Dict[str, Dict]) -> Dict[str, Dict]:
    """no-sharing / sharing and checkpoint / plain ratios where both were run."""
    pairs = {"no-sharing / default": ("no-sharing", "default"),
             "checkpoint / default": ("checkpoint", "default"),
             "no-sharing-checkpoint / no-sharing": ("no-sharing-checkpoint", "no-sharing"),
             "unoptimised / default": ("unoptimised", "default"),
             "unoptimised-no-sharing / unoptimised": ("unoptimised-no-sharing", "unoptimised"),
             "no-fuse / default": ("no-fuse", "default"),
             "nchw / default": ("nchw", "default"),
             "no-recompute / default": ("no-recompute", "default"),
             "compiled / default": ("compiled", "default"),
             "full-backward / default": ("full-backward", "default"),
             "authors-code / default": ("authors-code", "default"),
             "before / default": ("before", "default"),
             "authors-code / unoptimised": ("authors-code", "unoptimised")}
    out = {}
    for name, (a, b) in pairs.items():
        if a in res and b in res:
            out[name] = {k: _ratio(res[a][k], res[b][k]) for k in ("iter_s_median", "peak_mem_mib", "max_rss_mib")}
    return out


def ratio_table(ratios: Dict[str, Dict]) -> str:
    lines = ["| ratio | time | peak memory | max RSS |", "|---|---|---|---|"]
    for name, r in ratios.items():
        lines.append(f"| {name} | {r['iter_s_median']} | {r['peak_mem_mib']} | {r['max_rss_mib']} |")
    return "\n".join(lines)


def sweep(args, machine) -> Dict:
    values = SWEEPS[args.sweep]
    rows = []
    for v in values:
        print(f"{args.sweep} = {v}", flush=True)
        layers = v if args.sweep == "layers" else None
        batch = v if args.sweep == "batch" else None
        specs = [("sharing", "default", layers, batch), ("no-sharing", "no-sharing", layers, batch)]
        res = run_group(specs, args, args.iters, args.warmup)
        a, b = res["sharing"], res["no-sharing"]
        rows.append({args.sweep: v, "sharing": a, "no_sharing": b,
                     "time_ratio": _ratio(b["iter_s_median"], a["iter_s_median"]),
                     "peak_ratio": _ratio(b["peak_mem_mib"], a["peak_mem_mib"]),
                     "rss_ratio": _ratio(b["max_rss_mib"], a["max_rss_mib"])})
    lines = [f"| {args.sweep} | s/iter sharing | s/iter no-sharing | time ratio | peak MiB sharing | "
             "peak MiB no-sharing | peak ratio |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r[args.sweep]} | {r['sharing']['iter_s_median']:.2f} | "
                     f"{r['no_sharing']['iter_s_median']:.2f} | {r['time_ratio']} | "
                     f"{r['sharing']['peak_mem_mib']:.0f} | {r['no_sharing']['peak_mem_mib']:.0f} | "
                     f"{r['peak_ratio']} |")
    table = "\n".join(lines)
    print(f"\nCell sharing vs none (no-sharing / sharing), preset {args.preset}, sweep over {args.sweep}:")
    print(table)
    return {"preset": args.preset, "sweep": args.sweep, "rows": rows, "table": table, "machine": machine,
            "iters": args.iters, "warmup": args.warmup}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="paper-denoise", choices=["paper-denoise", "paper-sr", "tiny"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=None, help="timed iterations per variant (default 5; sweep 2)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed iterations first (default 2; sweep 1)")
    ap.add_argument("--variants", default=None,
                    help=f"comma-separated, from {', '.join(VARIANTS)} (default: {DEFAULT_VARIANTS} for the compact "
                         f"design, {AUTHORS_VARIANTS} for the authors', plus authors-code with --authors-src)")
    ap.add_argument("--style", choices=["authors", "compact"], default=None,
                    help="build this design instead of the preset's (the sharing sweeps need compact)")
    ap.add_argument("--authors-src", default=None,
                    help="a checkout of github.com/hkzhang91/HiNAS: time their code side by side (authors-code)")
    ap.add_argument("--before", default=None, metavar="DIR",
                    help="another checkout of this project: time its default step side by side (before)")
    ap.add_argument("--sweep", choices=sorted(SWEEPS), default=None,
                    help="report the sharing ratio over layers (2..5) or batch size (2, 6, 12)")
    ap.add_argument("--sequential", action="store_true",
                    help="one worker process at a time (less memory at once; no interleaving)")
    ap.add_argument("--json", default=None, help="write the results here")
    # worker mode (internal)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--layers", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.iters is None:
        args.iters = 2 if args.sweep else 5
    if args.warmup is None:
        args.warmup = 1 if args.sweep else 2
    return args


def main(argv=None) -> Dict:
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return {}
    from benchmarks.common import machine_info

    machine = machine_info(args.threads)
    print(f"machine: {machine['cpu_model']}, {args.threads} threads, torch {machine['torch']}, "
          f"load {machine['load_average_1_5_15']}", flush=True)
    if args.sweep:
        report = sweep(args, machine)
    else:
        from hinas_lib.config import get_preset
        authors = (args.style or get_preset(args.preset).space.style) == "authors"
        if args.variants is None:
            args.variants = (AUTHORS_VARIANTS if authors else DEFAULT_VARIANTS) + (
                ",authors-code" if args.authors_src else "") + (",before" if args.before else "")
        names = [v.strip() for v in args.variants.split(",") if v.strip()]
        bad = [n for n in names if n not in VARIANTS]
        if bad:
            raise SystemExit(f"unknown variant(s) {bad}; choose from {list(VARIANTS)}")
        if "authors-code" in names and not args.authors_src:
            raise SystemExit("the authors-code variant needs --authors-src (a checkout of hkzhang91/HiNAS)")
        if "before" in names and not (args.before and (Path(args.before) / "benchmarks" / "search_step.py").exists()):
            raise SystemExit("the before variant needs --before DIR, a checkout of this project")
        print(f"preset {args.preset}: {args.warmup} warm-up + {args.iters} timed iterations per variant, "
              f"interleaved", flush=True)
        res = run_group([(n, n, None, None) for n in names], args, args.iters, args.warmup)
        anchor = ANCHOR.get(args.preset, {})
        if "authors-code" in res:  # measured here, in this run: the anchor is that
            a = res["authors-code"]
            anchor = {"iter_s": a["iter_s_median"], "peak_mem_mib": a["peak_mem_mib"], "max_rss_mib": a["max_rss_mib"],
                      "measured": "in this run (authors-code)"}
        ratios = pair_ratios(res)
        print("\n" + main_table(res, anchor))
        print("\n" + ratio_table(ratios))
        if "roofline" in res.get("default", {}):
            r = res["default"]["roofline"]
            print(f"\nroofline: {r['useful_gmac_s']:.1f} useful G MAC/s against {r['matmul_gmac_s']:.1f} for a "
                  f"matmul ({r['useful_gmac_s'] / r['matmul_gmac_s']:.2f})")
        main_name = "default" if "default" in res else names[0]
        report = {
            "preset": args.preset,
            "variant": main_name,
            "iter_s_median": res[main_name]["iter_s_median"],
            "peak_mem_mib": res[main_name]["peak_mem_mib"],
            "max_rss_mib": res[main_name]["max_rss_mib"],
            "variants": {k: v for k, v in res.items() if k != main_name},
            **({"roofline": res[main_name]["roofline"]} if "roofline" in res[main_name] else {}),
            "ratios": ratios,
            "iters": args.iters,
            "warmup": args.warmup,
            "peak_mem_method": "torch.profiler(profile_memory=True): max of the running sum of CPU "
                               "allocation/free events over one search iteration, above what was live before it",
            "machine": dict(machine, load_average_end=__import__("benchmarks.common").common.load_average()),
            "anchor": anchor,
        }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
        print(f"\nwrote {args.json}")
    return report


if __name__ == "__main__":
    main()
