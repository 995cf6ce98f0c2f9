"""Search steps per second on a CPU: one process against ``torchrun`` with two.

    python -m benchmarks.distributed_cpu [--steps 60] [--repeats 2] [--json OUT.json]

Runs the README's CPU example (the ``tiny`` denoising search, shortened to
``--steps`` steps with ``--set``) as

* ``1 process, 1 thread`` and ``1 process, 2 threads``;
* ``torchrun, 2 processes`` with the defaults (BatchNorm statistics per rank,
  threads shared out) and with ``HINAS_BN_SYNC=global`` (the synchronised mode);

taking turns, ``--repeats`` times each, so that load from elsewhere hits every
variant alike. Steps per second come from the search's own log (the time of
its loop, without start-up). Ratios are against the faster single process.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from benchmarks.common import load_average, machine_info

ROOT = Path(__file__).resolve().parents[1]
RUN = [sys.executable, "-m", "hinas_lib", "search", "--preset", "tiny", "--task", "denoise", "--no-progress"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
            "-m", "hinas_lib", "search", "--preset", "tiny", "--task", "denoise", "--no-progress"]

VARIANTS = {
    "1 process, 1 thread": (RUN + ["--threads", "1"], {}),
    "1 process, 2 threads": (RUN + ["--threads", "2"], {}),
    "torchrun 2 processes (default: local BN)": (TORCHRUN, {}),
    "torchrun 2 processes, HINAS_BN_SYNC=global": (TORCHRUN, {"HINAS_BN_SYNC": "global"}),
}


def one_run(cmd: List[str], env_extra: Dict[str, str], steps: int, out: Path) -> float:
    """Steps per second of one shortened tiny search (its loop only)."""
    epochs = max(2, steps // 20)
    args = ["--out", str(out), "--set", f"search.epochs={epochs}", "--set", "search.warmup_epochs=1",
            "--set", "search.steps_per_epoch=20"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), **env_extra)
    env.setdefault("OMP_NUM_THREADS", "2")  # as many users have it: the defaults must cope
    p = subprocess.run(cmd + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    if p.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return log[-1]["step"] / log[-1]["elapsed_s"]


def main(argv=None) -> Dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    machine = machine_info(2)
    print(f"machine: {machine['cpu_model']}, {machine['cpu_count']} cores, load {load_average()}", flush=True)
    rates: Dict[str, List[float]] = {name: [] for name in VARIANTS}
    tmp = Path(tempfile.mkdtemp(prefix="hinas-dist-bench-"))
    try:
        for r in range(args.repeats):
            for name, (cmd, env) in VARIANTS.items():
                out = tmp / f"{len(rates[name])}-{abs(hash(name))}"
                t0 = time.time()
                rate = one_run(cmd, env, args.steps, out)
                rates[name].append(rate)
                print(f"  round {r}: {name:44s} {rate:6.2f} steps/s  ({time.time() - t0:.0f} s wall)", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    best_single = max(med["1 process, 1 thread"], med["1 process, 2 threads"])
    lines = ["| run | steps/s (median) | all | vs the faster single process |", "|---|---|---|---|"]
    for k, v in med.items():
        lines.append(f"| {k} | {v:.2f} | {', '.join(f'{x:.2f}' for x in rates[k])} | {v / best_single:.2f}x |")
    table = "\n".join(lines)
    print("\n" + table)
    report = {"steps": args.steps, "repeats": args.repeats, "rates": rates, "median": med,
              "ratio_vs_best_single": {k: v / best_single for k, v in med.items()}, "table": table,
              "machine": dict(machine, load_average_end=load_average())}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
        print(f"\nwrote {args.json}")
    return report


if __name__ == "__main__":
    main()
