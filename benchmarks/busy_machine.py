"""Search steps per second of the tiny demo on an idle and on a busy CPU.

    python -m benchmarks.busy_machine [--seconds 20] [--json OUT.json]

For each load (``idle``: nothing of ours beside it; ``busy``: one extra process
spinning ``while True: pass``, i.e. another job holding a core) it times the
``tiny`` denoising search step (architecture + weight step, the demo's shapes)
in a fresh process per variant:

* ``old default``: one torch thread per core, OpenMP's default (active) waiting,
  what ``python -m hinas_lib demo`` did before;
* ``N threads, passive`` / ``1 thread``: the two settings separately;
* ``free cores, passive waiting``: the default of an earlier commit, ``OMP_WAIT_POLICY=PASSIVE``
  and the cores not busy (``hinas_lib.runtime.auto_threads``);
* ``new default``: the CLI's default now, the cores not busy and a short OpenMP spin
  (``GOMP_SPINCOUNT=10000`` instead of GNU OpenMP's 300,000); ``threads = cores, short spin``
  shows what the short spin alone does when load arrives after the threads were chosen.

Each variant runs one warm-up step, then steps until ``--seconds`` have passed
(at least 2 steps: a collapsed variant can take a minute). Other jobs on the
machine add load too: each result records the busy cores sampled just before.
``--json`` writes one session; ``benchmarks/results/busy_machine.json`` holds the two
sessions the README quotes (``{"sessions": [...]}``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict

ROOT = Path(__file__).resolve().parents[1]


def worker(threads: str, policy: str, seconds: float) -> Dict:
    # before torch is imported: OpenMP reads its environment once, when torch loads it
    os.environ.pop("GOMP_SPINCOUNT", None)
    if policy == "default":
        os.environ.pop("OMP_WAIT_POLICY", None)
    elif policy == "short-spin":  # what python -m hinas_lib sets (hinas_lib/__main__.py)
        os.environ.pop("OMP_WAIT_POLICY", None)
        os.environ["GOMP_SPINCOUNT"] = "10000"
    else:
        os.environ["OMP_WAIT_POLICY"] = policy
    import torch  # noqa: PLC0415
    from hinas_lib.config import get_preset  # noqa: PLC0415
    from hinas_lib.profiling import random_batch  # noqa: PLC0415
    from hinas_lib.runtime import auto_threads, cpu_cores  # noqa: PLC0415
    from hinas_lib.search import arch_step, make_optimizers, weight_step  # noqa: PLC0415
    from hinas_lib.supernet import build_supernet  # noqa: PLC0415

    n = {"auto": lambda: auto_threads()[0], "cores": cpu_cores}.get(threads, lambda: int(threads))()
    torch.set_num_threads(n)
    torch.manual_seed(0)
    cfg = get_preset("tiny", task="denoise")
    net = build_supernet(cfg).train()
    loss_fn = __import__("hinas_lib.tasks", fromlist=["get_task"]).get_task(cfg).loss()
    w_opt, a_opt = make_optimizers(net, cfg)
    g = torch.Generator().manual_seed(0)
    xt, yt = random_batch(cfg, cfg.search.batch_size, cfg.search.crop, "cpu", g)
    xv, yv = random_batch(cfg, cfg.search.batch_size, cfg.search.crop, "cpu", g)
    dev = torch.device("cpu")

    def step():
        arch_step(net, a_opt, loss_fn, xv, yv, device=dev, amp="none")
        weight_step(net, w_opt, loss_fn, xt, yt, grad_clip=cfg.search.grad_clip, device=dev, amp="none")

    step()  # warm-up
    steps, t0 = 0, time.perf_counter()
    while steps < 2 or time.perf_counter() - t0 < seconds:
        step()
        steps += 1
    secs = time.perf_counter() - t0
    return {"threads": n, "steps": steps, "seconds": round(secs, 2), "steps_per_s": round(steps / secs, 3)}


VARIANTS = {  # name: (threads, OMP_WAIT_POLICY)
    "old default (threads = cores, active waiting)": ("cores", "default"),
    "threads = cores, passive waiting": ("cores", "PASSIVE"),
    "1 thread, active waiting": ("1", "default"),
    "free cores, passive waiting": ("auto", "PASSIVE"),
    "new default (threads = free cores, short spin)": ("auto", "short-spin"),
    "threads = cores, short spin": ("cores", "short-spin"),
}


def main(argv=None) -> Dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="timing per variant (after a warm-up step)")
    ap.add_argument("--loads", default="idle,busy")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--worker", nargs=3, metavar=("THREADS", "POLICY", "SECONDS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], float(args.worker[2]))))
        return {}
    from hinas_lib.runtime import busy_cores, cpu_cores, cpu_model  # noqa: PLC0415 (no torch needed)

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("OMP_NUM_THREADS", None)  # torch's own default, one thread per core
    results = {"cpu_model": cpu_model(), "cores": cpu_cores(), "date": time.strftime("%Y-%m-%d %H:%M"),
               "seconds": args.seconds, "runs": []}
    for load in args.loads.split(","):
        spinner = None
        if load == "busy":
            spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(1.0)
        try:
            for name, (threads, policy) in VARIANTS.items():
                before = round(busy_cores(0.5), 2)
                p = subprocess.run([sys.executable, "-m", "benchmarks.busy_machine", "--worker", threads, policy,
                                    str(args.seconds)], cwd=ROOT, env=env, capture_output=True, text=True,
                                   timeout=3600)
                if p.returncode:
                    raise SystemExit(f"{name}: failed\n{p.stderr[-2000:]}")
                r = {"load": load, "variant": name, "busy_cores_before": before, **json.loads(p.stdout)}
                results["runs"].append(r)
                print(f"{load:5s} {name:55s} {r['threads']} thr  {r['steps_per_s']:7.3f} steps/s "
                      f"({r['steps']} in {r['seconds']} s; {before} cores busy before)", flush=True)
        finally:
            if spinner is not None:
                spinner.kill()
                spinner.wait()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return results


if __name__ == "__main__":
    main()
