"""Helpers shared by the benchmarks: machine description, timing, peak memory."""
from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import torch

from hinas_lib.runtime import cpu_model


def load_average() -> List[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def machine_info(threads: int) -> Dict:
    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "load_average_1_5_15": load_average(),
    }


def set_threads(n: int) -> None:
    torch.set_num_threads(n)
    os.environ["OMP_NUM_THREADS"] = str(n)


def matmul_gmac_s(seconds: float = 2.0) -> float:
    """G multiply-adds per second of a 2048 x 2048 float32 matmul at the current thread count (one
    warm-up, then as many as fit in ``seconds``): the machine's limit the roofline lines compare to."""
    a, b = torch.rand(2048, 2048), torch.rand(2048, 2048)
    a @ b
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return n * 2048 ** 3 / (time.perf_counter() - t0) / 1e9


def median_time(fn: Callable[[], object], iters: int, warmup: int) -> Dict[str, float]:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return {"median": statistics.median(ts), "min": min(ts), "max": max(ts), "all": ts}


def profiler_peak_mib(fn: Callable[[], object]) -> float:
    """Peak CPU memory allocated while ``fn`` runs, above what was live before it.

    Runs ``fn`` under ``torch.profiler`` with ``profile_memory=True`` and takes
    the maximum of the running sum of every allocation (+bytes) and free
    (-bytes) event, in time order. Tensors alive before the call (parameters,
    optimizer state, input batches) are not counted; the activations saved for
    backward, gradients and temporaries are. On CUDA use
    ``torch.cuda.max_memory_allocated`` instead.
    """
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    from torch._C._autograd import DeviceType

    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type() == DeviceType.CPU]
    events.sort(key=lambda e: e.start_ns())
    cur = peak = 0
    for e in events:
        cur += e.nbytes()  # > 0 allocation, < 0 free
        peak = max(peak, cur)
    return peak / 2**20


def run_worker(code: str, args: Sequence[str], threads: int, root: Path, label: str) -> Dict:
    """Run ``code`` (a worker script printing one JSON line last) in a fresh process at
    ``threads`` torch threads, importing this project from ``root`` (this checkout or another,
    for a side-by-side ``previous`` variant)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(root))
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env,
                         cwd=root)
    if out.returncode:
        raise SystemExit(f"error: the {label} worker failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def revision(path) -> str:
    """The commit a checkout is at (the record of what a ``previous`` variant ran)."""
    out = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or str(path)


def report_and_save(res: Dict, json_path: Optional[str]) -> Dict:
    """Print a result's table and write it as JSON (when a path is given)."""
    print(res["table"])
    if json_path:
        Path(json_path).write_text(json.dumps(res, indent=1))
    return res
