"""Device, precision and bookkeeping helpers shared by search, train and eval.

Nothing here assumes CUDA exists: CUDA is used when available (or forced with
``device='cuda'``), else the CPU.
"""
from __future__ import annotations

import contextlib
import os
import platform
import random
import resource
import sys
import time
from typing import Optional, Tuple

import numpy as np
import torch

from .checks import MAX_THREADS, expect
from .deploy import keep_freed_memory


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the last checkpoint is intact."""


def pick_device(device: Optional[str | torch.device] = None) -> torch.device:
    """The torch device for ``device``: None/'auto' picks CUDA when available, else the CPU.

    Args:
        device: None, 'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or a ``torch.device``.

    Returns:
        The device, checked to exist on this machine.

    Raises:
        ValueError: naming the device when it is unknown or not on this machine.
    """
    expect(device, (str, torch.device, type(None)), "device")
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:  # torch's message lists every device type it knows; ours says what works
        raise ValueError(f"device {str(device)!r}: unknown device; use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r}: CUDA is not available on this machine (use cpu or auto)")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise ValueError(f"device {str(device)!r}: this machine has {n} CUDA device(s), "
                             f"numbered 0..{n - 1}")
    elif dev.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(f"device {str(device)!r}: Apple MPS is not available on this machine")
    elif dev.type != "cpu":
        raise ValueError(f"device {str(device)!r}: not supported; use cpu, cuda, cuda:N or auto")
    elif dev.index not in (None, 0):  # torch accepts cpu:1 and runs on the one CPU device anyway
        raise ValueError(f"device {str(device)!r}: the CPU is one device (cpu or cpu:0); "
                         "threads are set with --threads")
    return dev


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def autocast(device: torch.device, amp: str):
    """bf16/fp16 autocast on CUDA; a no-op on CPU or with amp='none' (on this project's Xeon, bf16
    autocast made the search step slower, not faster, and torch's bf16 channels_last depthwise
    dilated convolutions fault there: tests/test_amp.py)."""
    if amp == "none" or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    model = model.to(device)
    if device.type == "cpu":
        # every step frees and reallocates its activations: without this, glibc hands the large
        # ones back to the kernel and each is page-faulted in again (system time, every step)
        keep_freed_memory()
    if device.type == "cuda":
        # fixed crop sizes during search/training: let cuDNN pick the fastest kernels
        torch.backends.cudnn.benchmark = True
        model = model.to(memory_format=torch.channels_last)
    return model


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    if device.type == "cuda" and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), for benchmark and zoo records."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def max_rss_mib() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 1024.0 if sys.platform != "darwin" else r / 2**20


def memory_mib(device: torch.device) -> float:
    """Peak memory so far: CUDA allocator peak on GPU, process max RSS on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return max_rss_mib()


def check_finite(loss: torch.Tensor, what: str, step: int, ckpt_hint: str) -> None:
    if not torch.isfinite(loss).item():
        raise TrainingError(f"{what} loss became {loss.item()} at step {step}; try a lower learning rate. "
                            f"Nothing was overwritten: {ckpt_hint}")


THREADS_ENV = "HINAS_THREADS"


def cpu_cores() -> int:
    """The cores this process may run on (its affinity mask, as cgroups and taskset set it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_ticks() -> Optional[dict]:
    """/proc/stat per CPU: {cpu number: (busy ticks, total ticks)}; None off Linux."""
    try:
        with open("/proc/stat") as f:
            lines = [line.split() for line in f if line.startswith("cpu") and line[3:4].isdigit()]
    except OSError:
        return None
    ticks = {}
    for parts in lines:
        vals = [int(v) for v in parts[1:9]]  # user nice system idle iowait irq softirq steal
        ticks[int(parts[0][3:])] = (sum(vals) - vals[3] - vals[4], sum(vals))
    return ticks


def busy_cores(window: float = 0.3) -> float:
    """How many of this process's cores other processes keep busy now.

    Sampled from /proc/stat over ``window`` seconds (while this process sleeps), so
    a job that started a moment ago counts at once; elsewhere the 1-minute load
    average, which lags. 0.0 when neither is available.
    """
    try:
        mine = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        mine = None
    first = _cpu_ticks()
    if first:
        time.sleep(window)
        second = _cpu_ticks() or {}
        busy = 0.0
        for cpu, (b1, t1) in first.items():
            if (mine is None or cpu in mine) and cpu in second and second[cpu][1] > t1:
                busy += (second[cpu][0] - b1) / (second[cpu][1] - t1)
        return busy
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0.0


def env_threads() -> Optional[int]:
    """``HINAS_THREADS`` as an integer, or None when unset or empty.

    Raises:
        ValueError: naming the variable when it is not an integer in 1..MAX_THREADS.
    """
    text = os.environ.get(THREADS_ENV, "").strip()
    if not text:
        return None
    try:
        n = int(text)
    except ValueError:
        n = None
    if n is None or not 1 <= n <= MAX_THREADS:
        raise ValueError(f"{THREADS_ENV}={text!r}: expected an integer in 1..{MAX_THREADS}")
    return n


def auto_threads() -> Tuple[int, str]:
    """The default torch thread count: the cores not busy with other processes now, at least 1.

    More threads than free cores collapse: torch's OpenMP threads wait on each
    other at every operation, and one of them is always behind a busy core (steps
    were measured 10-100x slower, benchmarks/RESULTS.md "A busy machine").
    """
    cores = cpu_cores()
    busy = busy_cores()
    n = max(1, min(MAX_THREADS, cores - int(busy + 0.5)))
    return n, f"{n} torch thread(s): {cores} core(s), {busy:.1f} busy with other processes"


def resolve_threads(threads: Optional[int]) -> Tuple[int, str]:
    """Torch threads for one process, and why: ``threads`` (``--threads``), else
    ``HINAS_THREADS``, else :func:`auto_threads`."""
    if threads:
        return int(threads), f"{threads} torch thread(s) (--threads)"
    env = env_threads()
    if env is not None:
        return env, f"{env} torch thread(s) ({THREADS_ENV}={env})"
    return auto_threads()


def set_threads(n: Optional[int]) -> None:
    """Use ``n`` CPU threads for torch (None or 0: leave torch's default).

    Raises:
        ValueError: when ``n`` is not an integer in 1..MAX_THREADS.
    """
    if n is None or n == 0:
        return
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_THREADS:
        raise ValueError(f"threads: expected an integer in 1..{MAX_THREADS}, got {n!r}")
    torch.set_num_threads(n)
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
