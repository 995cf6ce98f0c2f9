"""The HiNAS search: first-order bilevel optimisation of a supernet.

Per step (after the warm-up epochs), as in DARTS' first-order variant and the
authors' code:

1. architecture step: loss on a batch of the *val* half, gradient w.r.t.
   alpha and beta only, Adam (lr 1e-3, wd 1e-3; betas from the config);
2. weight step: loss on a batch of the *train* half, gradient w.r.t. the
   weights, SGD with momentum 0.9, wd 3e-4, lr per epoch from 0.025 to 0.001
   (``search.w_lr_schedule``: our cosine or the authors' poly-cosine).

The authors' architecture step back-propagates into the weights too and then
discards those gradients; ours asks autograd for the alpha/beta gradients only:
the same update, less work (benchmarks/RESULTS.md measures the saving).

After every epoch the supernet is validated (the held-out images, or the val
half's fixed patches) and the derived genotype logged. ``search.select`` says
which genotype ``genotype.json`` holds: the final epoch's, or the best epoch's
from ``search.select_from`` on by ``search.select_by`` (the authors: SSIM +
PSNR/100 from epoch 60); ``genotype_best.json`` always holds the best one.

A run directory holds ``config.yaml``, ``log.jsonl`` (one line per epoch:
losses, val PSNR/SSIM, alpha, beta, genotype), ``checkpoint.pt`` (atomic,
resumable exactly), ``genotype.json``, ``genotype_best.json``, and ``figures/``
when a front end passes its figure writer (``write_figures``).

Under ``torchrun`` (several processes) the weights are trained with
DistributedDataParallel, the alpha/beta gradients are averaged over the ranks,
each rank takes its slice of every global batch and only rank 0 writes files;
see :mod:`hinas_lib.distributed`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from . import distributed, splits, streams
from .checks import CONFIG_HINT, expect
from .config import Config
from .datasets import real_inputs
from .derive import derive_genotype
from .engine import RunEngine
from .fused import PerfOptions
from .genotype import Genotype
from .runfiles import BEST_GENOTYPE_FILE, GENOTYPE_FILE, SEARCH_STATE
from .runtime import autocast, check_finite, memory_mib, prepare_model, to_device
from .schedules import SEARCH_LR, selection_score
from .supernet import build_supernet
from .supernet_base import SuperNetBase
from .validation import validate

CKPT_NAME = SEARCH_STATE  # (the name scripts import)


@dataclass
class SearchResult:
    genotype: Genotype
    best_genotype: Genotype
    history: List[Dict]
    out_dir: Optional[Path]
    net: SuperNetBase


def arch_step(net, a_opt, loss_fn, xv, yv, *, device, amp="none", on_loss=None, reduce_grads=None) -> float:
    """One architecture step: val loss, gradients for alpha/beta only, Adam.

    ``reduce_grads(grads)`` (several processes) averages them over the ranks in
    place before the step. ``net`` is the bare supernet, never the DDP wrapper:
    no weight gradient is computed here, and DDP's reducer would wait for them."""
    with autocast(device, amp):
        loss = loss_fn(net(xv), yv)
    if on_loss is not None:
        on_loss(loss)
    arch = net.arch_parameters()
    # grads for alpha/beta only: autograd skips the (unneeded) weight gradients
    grads = torch.autograd.grad(loss, arch)
    if reduce_grads is not None:
        reduce_grads(grads)
    for p, g in zip(arch, grads):
        p.grad = g
    a_opt.step()
    a_opt.zero_grad(set_to_none=True)
    return loss.item()


def weight_step(net, w_opt, loss_fn, x, y, *, grad_clip=5.0, device, amp="none", on_loss=None,
                model=None) -> float:
    """One weight step: train loss, backward, clipped SGD; alpha/beta do not move.

    ``model`` runs the forward when given: the DDP wrapper of ``net``, whose
    backward averages the weight gradients over the ranks (alpha/beta are
    excluded from DDP and their gradients dropped here)."""
    with autocast(device, amp):
        loss = loss_fn((model or net)(x), y)
    if on_loss is not None:
        on_loss(loss)
    w_opt.zero_grad(set_to_none=True)
    loss.backward()
    for p in net.arch_parameters():
        p.grad = None
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(net.weight_parameters(), grad_clip)
    w_opt.step()
    return loss.item()


def make_optimizers(net, cfg: Config):
    """SGD for the weights and Adam for alpha/beta, with the paper's settings."""
    s = cfg.search
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=s.w_lr, momentum=s.w_momentum,
                            weight_decay=s.w_weight_decay)
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=s.a_lr, betas=s.a_betas, weight_decay=s.a_weight_decay)
    return w_opt, a_opt


class Searcher(RunEngine):
    """Runs (and resumes) one search. ``run()`` returns a :class:`SearchResult`.

    Args:
        cfg: the whole configuration (``cfg.search`` drives the loop).
        out_dir: the run folder (see :mod:`hinas_lib.runs`), or None for no files.
        device: ``cuda``, ``cpu``, ... (default: CUDA when available).
        resume: continue the search in ``out_dir`` (``"auto"``: when it holds a checkpoint).
        progress: show a progress bar.
        on_epoch: called with each epoch's log record (rank 0).
        write_figures: the front end's figure writer, called (rank 0) with the
            :class:`SearchResult` of a search that finished into ``out_dir``, e.g.
            :func:`hinas_lib.viz.write_search_figures` (cells, width path, curves into
            ``out_dir/figures``); None or False: no figures. The engine draws nothing itself.
        perf: how the supernet computes (default: the fast path; unfused with synchronised BN).
        threads: torch threads per process when launched as several CPU processes
            (default: the cores shared out; see :func:`hinas_lib.distributed.threads_per_rank`).
    """

    kind, state_file, section, noun = "search", SEARCH_STATE, "search", "search"

    def __init__(self, cfg: Config, out_dir: Optional[str | Path] = None, *, device: Optional[str] = None,
                 resume: bool | str = False, progress: bool = True,
                 on_epoch: Optional[Callable[[Dict], None]] = None,
                 write_figures: Optional[Callable[[SearchResult], None]] | bool = None,
                 perf: Optional[PerfOptions] = None, threads: Optional[int] = None):
        expect(cfg, Config, "cfg", CONFIG_HINT).check_searchable()  # also catches fields changed since
        if write_figures not in (None, False) and not callable(write_figures):  # True too: no figures of its own
            raise TypeError(f"write_figures: a function writing the figures of a SearchResult (e.g. "
                            f"hinas_lib.viz.write_search_figures) or None, got {write_figures!r}")
        self.write_figures, self.perf = write_figures or None, perf
        super().__init__(cfg, out_dir, device=device, resume=resume, threads=threads, progress=progress,
                         on_epoch=on_epoch)

    def _build(self) -> None:
        cfg, s = self.cfg, self.cfg.search
        perf = self.perf
        if perf is None:  # synchronised BN must see every forward: no fused edges
            perf = PerfOptions(fuse_edges=not self.dist.sync_bn)
        self.net = prepare_model(build_supernet(cfg, perf), self.device)
        if self.dist.sync_bn:
            distributed.sync_batchnorm_(self.net, self.device)  # BN uses batch statistics: global batch
        self.loss_fn = self.task.loss()
        # training losses see the whole global batch (per-rank outputs gathered)
        self.batch_loss = distributed.GlobalBatchLoss(self.loss_fn, self.dist)
        self.w_opt, self.a_opt = make_optimizers(self.net, cfg)

        images = splits.split_images(cfg)
        rescale = cfg.data.rescale

        def patches(imgs, **kw):  # synthesised degradations, or the real inputs of data.train_lq_dir
            return self.task.patch_dataset(imgs, s.crop, inputs=real_inputs(imgs, cfg.data.train_lq_dir, self.task),
                                           **kw)

        self.train_ds = patches(images["train"], rescale=rescale)
        self.val_ds = patches(images["val"], rescale=rescale)
        # fixed validation patches (separate seed), the same every epoch: from the held-out
        # images when there are some, else from the architecture half
        select_ds = patches(images["holdout"]) if images["holdout"] else self.val_ds
        self.val_batches = streams.fixed_batches(select_ds, s.seed + 7919, s.batch_size, s.val_batches)

        self.sums = {"train_loss": 0.0, "arch_loss": 0.0, "n": 0}  # running sums of the current epoch
        self.best = {"score": -float("inf"), "epoch": -1, "genotype": None}

    def _started(self) -> None:
        # DDP over the weights only (alpha/beta have their own step); built after
        # loading, it starts every rank from rank 0's weights, and alpha/beta too
        self.model = distributed.wrap_ddp(self.net, self.device, self.dist, ignore=self.net.arch_parameters())
        distributed.broadcast_(self.net.arch_parameters(), self.dist)

    # ------------------------------------------------------------------
    def lr_at(self, epoch: int) -> float:
        """The weight learning rate of (0-based) ``epoch``."""
        s = self.cfg.search
        return SEARCH_LR[s.w_lr_schedule](s, epoch)

    @property
    def select_from(self) -> int:
        s = self.cfg.search
        return s.warmup_epochs if s.select_from < 0 else s.select_from

    def _extra_state(self) -> Dict:
        return {"w_opt": self.w_opt.state_dict(), "a_opt": self.a_opt.state_dict(), "best": json.dumps(self.best)}

    def _load_extra(self, ckpt: Dict) -> None:
        self.w_opt.load_state_dict(ckpt["w_opt"])
        self.a_opt.load_state_dict(ckpt["a_opt"])
        self.best = json.loads(ckpt["best"])

    # ------------------------------------------------------------------
    def _arch_step(self, xv, yv) -> float:
        # every rank sees the same global loss, so a NaN stops all ranks alike
        reduce = (lambda g: distributed.average_(g, self.dist)) if self.dist.enabled else None
        return arch_step(self.net, self.a_opt, self.batch_loss, xv, yv, device=self.device,
                         amp=self.cfg.search.amp, reduce_grads=reduce,
                         on_loss=lambda l: check_finite(l, "architecture", self.step, self.run_dir.hint()))

    def _weight_step(self, x, y) -> float:
        return weight_step(self.net, self.w_opt, self.batch_loss, x, y, grad_clip=self.cfg.search.grad_clip,
                           device=self.device, amp=self.cfg.search.amp, model=self.model,
                           on_loss=lambda l: check_finite(l, "training", self.step, self.run_dir.hint()))

    def _stream(self, ds, seed: int, n: int):
        # this rank's slice of global batches step .. step+n-1 (the whole batch with one process)
        s = self.cfg.search
        return streams.batch_stream(ds, seed, s.batch_size, self.step, n, self.device, self.cfg.data.num_workers,
                                    rank=self.dist.rank, world_size=self.dist.world_size)

    # ------------------------------------------------------------------
    def _steps(self, epoch: int, n: int):
        s = self.cfg.search
        self.lr = lr = self.lr_at(epoch)  # per epoch
        for g in self.w_opt.param_groups:
            g["lr"] = lr
        self.arch_on = arch_on = epoch >= s.warmup_epochs
        self.net.aux_skip = s.aux_skip * (1 - epoch / s.epochs)  # DARTS-: decays to 0 (a function of the epoch)
        train_it = self._stream(self.train_ds, s.seed, n)
        val_it = self._stream(self.val_ds, s.seed + 1, n) if arch_on else None
        sums = self.sums
        for _ in range(n):
            x, y = (to_device(t, self.device) for t in next(train_it))
            if arch_on:
                xv, yv = (to_device(t, self.device) for t in next(val_it))
                sums["arch_loss"] += self._arch_step(xv, yv)
            sums["train_loss"] += self._weight_step(x, y)
            sums["n"] += 1
            yield

    def _postfix(self) -> Dict[str, str]:
        return {"loss": f"{self.sums['train_loss'] / self.sums['n']:.4f}", "lr": f"{self.lr:.4f}",
                "mem": f"{memory_mib(self.device):.0f}MiB", "arch": "on" if self.arch_on else "warmup"}

    def _end_epoch(self, epoch: int, elapsed: float) -> None:
        sums, n = self.sums, max(1, self.sums["n"])
        val = validate(self.net, self.val_batches, self.task, self.device, amp=self.cfg.search.amp,
                       loss_fn=self.loss_fn, dist=self.dist)
        geno = derive_genotype(self.net)
        rec = {
            "epoch": epoch, "step": self.step, "lr": self.lr,
            "train_loss": sums["train_loss"] / n,
            "arch_loss": sums["arch_loss"] / n if self.arch_on else None,
            "val_loss": val["val_loss"], "val_psnr": val["val_psnr"], "val_ssim": val["val_ssim"],
            "alpha": self.net.alpha.detach().cpu().tolist(),
            "beta": self.net.beta.detach().cpu().tolist(),
            "genotype": geno.to_dict(),
            # collapse watch: DARTS-style searches drift to parameter-free ops
            "skip_edges": sum(op == "skip_connect" for op in geno.ops()),
            "mem_mib": memory_mib(self.device),
            "elapsed_s": elapsed,
        }
        score = selection_score(val["val_psnr"], val["val_ssim"], self.cfg.search.select_by)
        # (a checkpoint from before select_by ranked by PSNR under the key val_psnr)
        if epoch >= self.select_from and score > self.best.get("score", self.best.get("val_psnr", -float("inf"))):
            self.best = {"score": score, "epoch": epoch, "genotype": geno.to_dict()}
        self._record(rec)
        self.sums = {"train_loss": 0.0, "arch_loss": 0.0, "n": 0}

    def _finish(self) -> SearchResult:
        final = derive_genotype(self.net)
        best = Genotype.from_dict(self.best["genotype"]) if self.best["genotype"] else final
        geno = best if self.cfg.search.select == "best" else final
        done = self.step >= self.total_steps
        res = SearchResult(genotype=geno, best_genotype=best, history=self.history, out_dir=self.out,
                           net=self.net)
        if self.out is not None and done and self.main:
            geno.save(self.out / GENOTYPE_FILE)
            best.save(self.out / BEST_GENOTYPE_FILE)
            if self.write_figures is not None:
                self.write_figures(res)
        return res


def search(cfg: Config, out_dir: Optional[str | Path] = None, **kw) -> SearchResult:
    """Convenience: ``Searcher(cfg, out_dir, **kw).run()``."""
    stop_after = kw.pop("stop_after", None)
    return Searcher(cfg, out_dir, **kw).run(stop_after=stop_after)
