"""Several processes (GPUs or machines) for ``search`` and ``train``, under ``torchrun``.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``; :func:`init` sees them and joins the process group, so the same
code runs as one process or as N. With ``WORLD_SIZE`` unset (or 1) nothing here
does anything and a run is exactly the single-process one.

Design:

* **Global batch.** ``batch_size`` in the config is the *global* batch ``B``;
  each of the ``W`` ranks takes the contiguous slice ``r`` (``B / W`` samples)
  of every global batch of the index-seeded streams (sample ``i`` is a pure
  function of ``(seed, i)``). The ranks' slices put together are exactly the
  single-process batch, so resume stays exact and a checkpoint may be resumed
  with another number of processes (``B`` must divide by it).
* **Loss on the whole global batch.** The outputs and targets are all-gathered
  and every rank evaluates the loss on the full batch: the log-SSIM term is not
  a mean over samples, so averaging per-rank losses would not be the
  single-process loss. The gather's backward hands each rank the sum over ranks
  of the gradient of its slice (``W`` x its share, since every rank holds the
  same loss); DDP's average over ranks (weights) and ``all_reduce / W`` (alpha,
  beta) then give exactly the gradient of the single-process loss.
* **BatchNorm**, two modes (``HINAS_BN_SYNC``, see :func:`bn_mode`):
  ``global`` synchronises the statistics over the global batch (torch's
  ``SyncBatchNorm`` on CUDA; on CPU, where torch's refuses to run,
  :class:`SyncBatchNormCPU` does the same with gloo collectives), so W
  processes compute what one process computes on batch B; ``local`` lets each
  rank normalise with its own slice's statistics, as the authors'
  ``DataParallel`` does, and keeps rank 0's running statistics on every rank
  (DDP broadcasts them). ``auto`` (the default) is global with NCCL and local
  with gloo: on a CPU the hundreds of small BatchNorm collectives per step
  cost more than the second process gains.
* **Threads.** On a CPU each rank uses ``cores / local processes`` torch threads
  (never more, whatever ``OMP_NUM_THREADS`` says), unless ``--threads`` is given.
* **Failures.** ``init_process_group(timeout=HINAS_DIST_TIMEOUT)`` bounds every
  collective (default 600 s): a rank that dies or raises ends the run, at once
  under torchrun (it stops the other workers when one exits non-zero) or when
  gloo sees the peer's connection close, and at the latest after the timeout.

Environment: ``HINAS_DIST_BACKEND`` (``nccl`` | ``gloo``; default nccl on CUDA,
gloo on CPU), ``HINAS_BN_SYNC`` (``auto`` | ``global`` | ``local``),
``HINAS_DIST_TIMEOUT`` (seconds, default 600).
"""
from __future__ import annotations

import datetime
import inspect
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from torch import nn

from .runtime import cpu_cores, pick_device, set_threads

DEFAULT_TIMEOUT_S = 600.0


BN_MODES = ("auto", "global", "local")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: Optional[str] = None
    bn: str = "global"          # global | local (bn_mode); irrelevant with one process

    @property
    def sync_bn(self) -> bool:
        return self.enabled and self.bn == "global"

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


def timeout_s() -> float:
    return float(os.environ.get("HINAS_DIST_TIMEOUT", "") or DEFAULT_TIMEOUT_S)


def bn_mode(backend: Optional[str]) -> str:
    """``HINAS_BN_SYNC``: ``global`` or ``local``; ``auto`` (default) is global with NCCL, local with gloo."""
    mode = os.environ.get("HINAS_BN_SYNC", "").strip().lower() or "auto"
    if mode not in BN_MODES:
        raise ValueError(f"HINAS_BN_SYNC={mode!r}: choose one of {', '.join(BN_MODES)}")
    if mode == "auto":
        return "global" if backend == "nccl" else "local"
    return mode


def threads_per_rank(threads: Optional[int]) -> Tuple[int, str]:
    """Torch threads for one of several CPU processes on this machine, and why.

    ``threads`` (the user's ``--threads``) wins; otherwise the cores shared out
    over the local processes, at least 1: more would oversubscribe the cores,
    and OpenMP threads spin-waiting on each other made runs 5-8x slower.
    """
    local = max(1, _env_int("LOCAL_WORLD_SIZE", 1))
    if threads:
        return int(threads), f"{threads} torch thread(s) per process (--threads)"
    n = max(1, cpu_cores() // local)
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    note = f" (OMP_NUM_THREADS={omp} ignored: it would oversubscribe)" if omp.isdigit() and int(omp) > n else ""
    return n, f"{n} torch thread(s) per process: {cpu_cores()} core(s) / {local} local process(es){note}"


def init(device: Optional[str] = None, threads: Optional[int] = None) -> Tuple[DistInfo, torch.device]:
    """Join the process group torchrun describes (idempotent) and pick this rank's device.

    On a CPU it also sets this rank's torch threads (:func:`threads_per_rank`;
    ``threads`` is the user's explicit choice) and rank 0 says what it chose.
    Returns ``(DistInfo(), pick_device(device))`` when not launched as several processes.
    """
    if dist.is_available() and dist.is_initialized():
        # already joined (an earlier Searcher/Trainer, or the caller's own setup)
        backend = dist.get_backend()
        info = DistInfo(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0), backend,
                        bn_mode(backend))
        return info, _rank_device(device, info.local_rank)
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        set_threads(threads)  # one process: the caller's choice, if any (validated)
        return DistInfo(), pick_device(device)
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    local_rank = _env_int("LOCAL_RANK", 0)
    dev = _rank_device(device, local_rank)
    backend = os.environ.get("HINAS_DIST_BACKEND", "").strip().lower() or ("nccl" if dev.type == "cuda" else "gloo")
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"HINAS_DIST_BACKEND={backend!r}: choose nccl or gloo")
    if backend == "nccl" and dev.type != "cuda":
        raise ValueError("HINAS_DIST_BACKEND=nccl needs CUDA devices; this rank runs on the CPU (use gloo)")
    # NCCL: bind the group to this rank's GPU (otherwise torch guesses it, with a warning)
    bind = {"device_id": dev} if backend == "nccl" else {}
    bn = bn_mode(backend)
    if threads is not None:
        set_threads(threads)  # validates it
    if dev.type == "cpu":
        n, why = threads_per_rank(threads)
        torch.set_num_threads(n)
        os.environ["OMP_NUM_THREADS"] = str(n)
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s()), **bind)
    info = DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, backend, bn)
    if info.is_main:
        print(f"{info.world_size} processes ({backend}), BatchNorm statistics {bn} (HINAS_BN_SYNC)"
              + (f"; {why}" if dev.type == "cpu" else ""), file=sys.stderr, flush=True)
    return info, dev


def _rank_device(device: Optional[str], local_rank: int) -> torch.device:
    dev = pick_device(device)
    if dev.type == "cuda":
        if dev.index is None:  # "cuda"/auto: one GPU per local rank; an explicit cuda:K is kept
            if local_rank >= torch.cuda.device_count():
                raise ValueError(f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible); "
                                 "use --nproc_per_node <= the number of GPUs")
            dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    return dev


def shutdown(ok: bool = True) -> None:
    """Leave the process group. On success wait for every rank first (rank 0 may
    still be writing files); on failure leave at once, aborting NCCL work."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    try:
        if ok:
            nccl = dist.get_backend() == "nccl"
            dist.barrier(device_ids=[torch.cuda.current_device()] if nccl else None)
            dist.destroy_process_group()
        elif dist.get_backend() == "nccl" and hasattr(dist.distributed_c10d, "_abort_process_group"):
            # destroy could wait on a collective a dead peer never joins; abort does not
            dist.distributed_c10d._abort_process_group()
        else:
            dist.destroy_process_group()
    except Exception:
        if ok:
            raise


def check_batch(batch_size: int, info: DistInfo, name: str) -> None:
    if batch_size % info.world_size:
        raise ValueError(f"{name}={batch_size} is the global batch, split evenly over the {info.world_size} "
                         f"processes: make it a multiple of {info.world_size} (--set {name}=...)")


# ---------------------------------------------------------------------------
# Evaluation work split over the ranks (training batches: hinas_lib.streams)
# ---------------------------------------------------------------------------

def shard(items: Sequence, info: DistInfo) -> List:
    """Items ``r, r+W, r+2W, ...`` (evaluation work split over the ranks)."""
    return list(items[info.rank::info.world_size]) if info.enabled else list(items)


def unshard(local: List, n: int, info: DistInfo) -> List:
    """Inverse of :func:`shard` on every rank: the per-item results in the original order,
    so sums over them are the single-process sums, bit for bit."""
    if not info.enabled:
        return local
    parts: List[Any] = [None] * info.world_size
    dist.all_gather_object(parts, local)
    out: List[Any] = [None] * n
    for r, part in enumerate(parts):
        out[r::info.world_size] = part
    return out


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank (checkpoints: only rank 0 reads the run folder,
    which need not be shared between machines)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _flat_collective(tensors: Sequence[torch.Tensor], fn) -> None:
    # one collective for all tensors instead of one each (alpha and beta are tiny)
    flat = torch.cat([t.detach().reshape(-1) for t in tensors])
    fn(flat)
    i = 0
    for t in tensors:
        t.data.copy_(flat[i:i + t.numel()].view_as(t))
        i += t.numel()


def broadcast_(tensors: Sequence[torch.Tensor], info: DistInfo) -> None:
    """Rank 0's values into ``tensors`` on every rank."""
    if info.enabled:
        _flat_collective(tensors, lambda f: dist.broadcast(f, src=0))


def average_(tensors: Sequence[torch.Tensor], info: DistInfo) -> None:
    """In place: the mean over ranks (``all_reduce(SUM) / W``); identical on every rank afterwards."""
    if info.enabled:
        _flat_collective(tensors, lambda f: (dist.all_reduce(f), f.div_(info.world_size)))


# ---------------------------------------------------------------------------
# Autograd-aware gather (global-batch loss, BN statistics)
# ---------------------------------------------------------------------------

class _Gather(torch.autograd.Function):
    """``all_gather`` along a new leading dim of size W. Backward: this rank's
    slice of the gradient summed over the ranks (each rank's copy of the
    gathered tensor feeds its own loss)."""

    @staticmethod
    def forward(ctx, x):
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.stack(parts)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()  # all_reduce is in place; the incoming buffer is not ours
        dist.all_reduce(grad)
        return grad[dist.get_rank()]


def gather(x: torch.Tensor) -> torch.Tensor:
    """All ranks' ``x`` stacked along dim 0 (rank order), differentiable."""
    return _Gather.apply(x)


class GlobalBatchLoss:
    """``loss_fn`` evaluated on the global batch: ``(out, y)`` of each rank are gathered
    and concatenated in rank order, i.e. in the single-process batch order."""

    def __init__(self, loss_fn, info: DistInfo):
        self.loss_fn, self.info = loss_fn, info

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if not self.info.enabled:
            return self.loss_fn(out, y)
        out = gather(out).flatten(0, 1)
        with torch.no_grad():
            y = gather(y).flatten(0, 1)
        return self.loss_fn(out, y)


# ---------------------------------------------------------------------------
# Synchronised BatchNorm
# ---------------------------------------------------------------------------

class SyncBatchNormCPU(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch, for CPU (gloo), where torch's SyncBatchNorm
    refuses to run. Same parameters, buffers and state-dict keys as BatchNorm; it
    only differs in training mode with more than one process, where it uses the
    statistics of the union of all ranks' batches (per-rank mean/variance
    gathered and combined, Chan et al.) and updates the running statistics with
    them, so every rank keeps identical buffers."""

    def _check_input_dim(self, x):
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0] + list(range(2, x.dim()))
        n = x.numel() // x.shape[1]
        var, mean = torch.var_mean(x, dim=dims, correction=0)
        stats = gather(torch.stack([mean, var, torch.full_like(mean, float(n))]))  # (W, 3, C)
        m, v, cnt = stats[:, 0], stats[:, 1], stats[:, 2].detach()
        total = cnt.sum(0)
        g_mean = (cnt * m).sum(0) / total
        g_var = (cnt * (v + (m - g_mean) ** 2)).sum(0) / total
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                f = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else self.momentum
                unbiased = g_var * (total / (total - 1).clamp_min(1))  # as BatchNorm: unbiased running var
                self.running_mean.mul_(1 - f).add_(g_mean, alpha=f)
                self.running_var.mul_(1 - f).add_(unbiased, alpha=f)
        shape = [1, -1] + [1] * (x.dim() - 2)
        y = (x - g_mean.view(shape)) * torch.rsqrt(g_var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def sync_batchnorm_(module: nn.Module, device: torch.device) -> nn.Module:
    """Make every BatchNorm of ``module`` synchronised, in place.

    In place (the class of each BN object is switched) rather than
    ``nn.SyncBatchNorm.convert_sync_batchnorm``, which builds new modules: the
    supernet's mixed ops keep unregistered references to their op bodies
    (cells.MixedOp._bodies), which would go on calling the old, unsynchronised
    BN. Torch's SyncBatchNorm on CUDA, :class:`SyncBatchNormCPU` elsewhere.

    A supernet must be built with ``PerfOptions(fuse_edges=False)`` first: the
    fused cells call ``F.batch_norm`` on concatenated buffers, past the BN
    modules and so past their synchronisation.
    """
    for m in module.modules():
        if not isinstance(m, nn.modules.batchnorm._BatchNorm) or isinstance(m, (nn.SyncBatchNorm, SyncBatchNormCPU)):
            continue
        if device.type == "cuda":
            m.process_group = None  # nn.SyncBatchNorm's one extra attribute: None = WORLD
            m.__class__ = nn.SyncBatchNorm
        else:
            m.__class__ = SyncBatchNormCPU
    return module


def wrap_ddp(module: nn.Module, device: torch.device, info: DistInfo,
             ignore: Sequence[nn.Parameter] = ()) -> nn.Module:
    """DistributedDataParallel over ``module``'s parameters except ``ignore``
    (alpha/beta: their gradients come from the separate architecture step and
    are averaged by :func:`average_`; DDP's reducer must not wait for them).
    Returns ``module`` itself when not distributed."""
    if not info.enabled:
        return module
    # the depthwise convs' (C, 1, k, k) weight gradients come with an arbitrary stride on
    # the size-1 dim (channels-last activations); DDP then copies instead of viewing,
    # which costs nothing at these sizes, and warns about it on every rank
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    skip = {id(p) for p in ignore}
    names = [n for n, p in module.named_parameters() if id(p) in skip]
    nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, names)
    # Synchronised BN: the running statistics come from the global batch on every rank,
    # hence stay equal, no buffer broadcast. Local BN: rank 0's are broadcast before
    # each forward (what DataParallel keeps too). Newer torch spells it
    # forward_sync_buffers (broadcast_buffers is deprecated there).
    params = inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters
    key = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
    return nn.parallel.DistributedDataParallel(
        module, device_ids=[device.index] if device.type == "cuda" else None, **{key: not info.sync_bn})


__all__ = ["DistInfo", "BN_MODES", "bn_mode", "threads_per_rank", "cpu_cores", "init", "shutdown", "check_batch", "shard", "unshard",
           "broadcast_object", "broadcast_", "average_", "gather", "GlobalBatchLoss", "SyncBatchNormCPU",
           "sync_batchnorm_", "wrap_ddp", "timeout_s"]
