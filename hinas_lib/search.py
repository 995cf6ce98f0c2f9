"""The HiNAS search: first-order bilevel optimisation of a supernet.

Per step (after the warm-up epochs), as in DARTS' first-order variant:

1. architecture step: loss on a batch of the *val* half, gradient w.r.t.
   alpha and beta only, Adam (lr 1e-3, wd 1e-3);
2. weight step: loss on a batch of the *train* half, gradient w.r.t. the
   weights, SGD with momentum 0.9, wd 3e-4, lr cosine 0.025 -> 0.001.

A run directory holds ``config.yaml``, ``log.jsonl`` (one line per epoch:
losses, val PSNR/SSIM, alpha, beta, genotype), ``checkpoint.pt`` (atomic,
resumable exactly), ``genotype.json`` (final), ``genotype_best.json`` (best
val PSNR epoch) and ``figures/``.

Under ``torchrun`` (several processes) the weights are trained with
DistributedDataParallel, the alpha/beta gradients are averaged over the ranks,
each rank takes its slice of every global batch and only rank 0 writes files;
see :mod:`hinas_lib.distributed`.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
from tqdm.auto import tqdm

from . import distributed, streams
from .checkpoint import CheckpointError, atomic_save, atomic_write_text, load_checkpoint
from .config import Config
from .derive import derive_genotype
from .genotype import Genotype
from .losses import make_loss
from .metrics import psnr, ssim
from .runtime import (autocast, check_finite, memory_mib, prepare_model, seed_everything,
                      to_device)
from .supernet import SuperNet

CKPT_NAME = "checkpoint.pt"


def cosine_lr(epoch: int, epochs: int, lr_max: float, lr_min: float) -> float:
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * epoch / epochs))


@dataclass
class SearchResult:
    genotype: Genotype
    best_genotype: Genotype
    history: List[Dict]
    out_dir: Optional[Path]
    net: SuperNet


def evaluate_patches(net, batches, loss_fn, device, amp="none",
                     dist: Optional[distributed.DistInfo] = None) -> Dict[str, float]:
    """Mean loss, PSNR and SSIM of ``net`` over fixed (input, target) batches.
    With ``dist`` the batches are split over the ranks and the per-batch scores
    put back in order, so every rank gets the single-process numbers."""
    dist = dist or distributed.DistInfo()
    was_training = net.training
    net.eval()
    scores = []  # per batch: (loss, [psnr per image], [ssim per image])
    with torch.no_grad():
        for x, y in distributed.shard(batches, dist):
            x, y = to_device(x, device), to_device(y, device)
            with autocast(device, amp):
                out = net(x)
            out = out.float()
            pairs = list(zip(out.clamp(0, 1), y))
            scores.append((float(loss_fn(out, y)), [psnr(o, t) for o, t in pairs], [ssim(o, t) for o, t in pairs]))
    net.train(was_training)
    scores = distributed.unshard(scores, len(batches), dist)
    losses = [l for l, _, _ in scores]
    ps = [p for _, b, _ in scores for p in b]
    ss = [q for _, _, b in scores for q in b]
    return {"val_loss": sum(losses) / len(losses), "val_psnr": sum(ps) / len(ps), "val_ssim": sum(ss) / len(ss)}


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


class Searcher:
    """Runs (and resumes) one search. ``run()`` returns a :class:`SearchResult`."""

    def __init__(self, cfg: Config, out_dir: Optional[str | Path] = None, *, device: Optional[str] = None,
                 resume: bool = False, progress: bool = True, amp: str = "none",
                 on_epoch: Optional[Callable[[Dict], None]] = None, write_figures: bool = True):
        self.cfg = cfg
        self.out = Path(out_dir) if out_dir is not None else None
        # joins the process group when launched by torchrun; else one process, as before
        self.dist, self.device = distributed.init(device)
        self.main = self.dist.is_main  # only rank 0 writes files, logs and shows progress
        self.progress, self.amp, self.on_epoch = progress, amp, on_epoch
        self.write_figures = write_figures
        s = cfg.search
        distributed.check_batch(s.batch_size, self.dist, "search.batch_size")

        seed_everything(s.seed)
        self.net = prepare_model(SuperNet(cfg), self.device)
        if self.dist.enabled:
            distributed.sync_batchnorm_(self.net, self.device)  # BN uses batch statistics: global batch
        self.loss_fn = make_loss(cfg.task)
        # training losses see the whole global batch (per-rank outputs gathered)
        self.batch_loss = distributed.GlobalBatchLoss(self.loss_fn, self.dist)
        self.w_opt, self.a_opt = make_optimizers(self.net, cfg)

        train_imgs, val_imgs, _ = streams.image_split(cfg)
        self.train_ds = streams.patch_dataset(train_imgs, cfg, s.crop)
        self.val_ds = streams.patch_dataset(val_imgs, cfg, s.crop)
        # fixed validation patches (separate seed), the same every epoch
        self.val_batches = streams.fixed_batches(self.val_ds, s.seed + 7919, s.batch_size, s.val_batches)

        self.step, self.history = 0, []
        self.sums = {"train_loss": 0.0, "arch_loss": 0.0, "n": 0}  # running sums of the current epoch
        self.best = {"val_psnr": -float("inf"), "epoch": -1, "genotype": None}
        if self.out is not None:
            self._open_run_dir(resume)
        elif resume:
            raise ValueError("resume needs an output directory")
        # DDP over the weights only (alpha/beta have their own step); built after
        # loading, it starts every rank from rank 0's weights, and alpha/beta too
        self.model = distributed.wrap_ddp(self.net, self.device, self.dist, ignore=self.net.arch_parameters())
        distributed.broadcast_(self.net.arch_parameters(), self.dist)

    def _open_run_dir(self, resume: bool) -> None:
        ckpt = distributed.open_run_dir(self.out, self.dist, resume=resume, state_file=CKPT_NAME, what="search",
                                        read=lambda: self._read_checkpoint(self.out / CKPT_NAME))
        if ckpt is not None:
            self._apply_checkpoint(ckpt)
        if self.main:
            atomic_write_text(self.out / "config.yaml", self.cfg.to_yaml())

    # ------------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        return self.cfg.search.epochs * self.cfg.search.steps_per_epoch

    def _state(self) -> Dict:
        return {
            "kind": "search",
            "config": self.cfg.to_dict(),
            "step": self.step,
            "model": self.net.state_dict(),
            "w_opt": self.w_opt.state_dict(),
            "a_opt": self.a_opt.state_dict(),
            "history": json.dumps(self.history),
            "sums": json.dumps(self.sums),
            "best": json.dumps(self.best),
            # informative: any number of processes that divides the global batch may resume
            "world_size": self.dist.world_size,
        }

    def save(self) -> None:
        if self.out is not None and self.main:
            atomic_save(self._state(), self.out / CKPT_NAME)

    def _load(self, path: Path) -> None:
        self._apply_checkpoint(self._read_checkpoint(path))

    def _read_checkpoint(self, path: Path) -> Dict:
        ckpt = load_checkpoint(path, kind="search")
        if ckpt["config"] != self.cfg.to_dict():
            raise CheckpointError(f"{path} was written by a search with another configuration "
                                  f"(preset {ckpt['config'].get('name')!r}, task "
                                  f"{ckpt['config']['task']['task']!r}); resume it with that config")
        return ckpt

    def _apply_checkpoint(self, ckpt: Dict) -> None:
        written_by = int(ckpt.get("world_size", 1))
        if written_by != self.dist.world_size and self.main:
            # allowed: the config's batch_size is the global batch and the sample
            # stream does not depend on the number of processes
            print(f"note: resuming a search checkpoint written by {written_by} process(es) with "
                  f"{self.dist.world_size}: same global batch ({self.cfg.search.batch_size}) and samples; "
                  "equal to an uninterrupted run up to floating-point summation order", file=sys.stderr)
        self.net.load_state_dict(ckpt["model"])
        self.w_opt.load_state_dict(ckpt["w_opt"])
        self.a_opt.load_state_dict(ckpt["a_opt"])
        self.step = int(ckpt["step"])
        self.history = json.loads(ckpt["history"])
        self.sums = json.loads(ckpt["sums"])
        self.best = json.loads(ckpt["best"])
        self._rewrite_log()

    def _rewrite_log(self) -> None:
        if self.out is not None and self.main:
            atomic_write_text(self.out / "log.jsonl", "".join(json.dumps(h) + "\n" for h in self.history))

    # ------------------------------------------------------------------
    def _arch_step(self, xv, yv) -> float:
        # every rank sees the same global loss, so a NaN stops all ranks alike
        reduce = (lambda g: distributed.average_(g, self.dist)) if self.dist.enabled else None
        return arch_step(self.net, self.a_opt, self.batch_loss, xv, yv, device=self.device, amp=self.amp,
                         on_loss=lambda l: check_finite(l, "architecture", self.step, self._ckpt_hint()),
                         reduce_grads=reduce)

    def _weight_step(self, x, y) -> float:
        return weight_step(self.net, self.w_opt, self.batch_loss, x, y, grad_clip=self.cfg.search.grad_clip,
                           device=self.device, amp=self.amp, model=self.model,
                           on_loss=lambda l: check_finite(l, "training", self.step, self._ckpt_hint()))

    def _ckpt_hint(self) -> str:
        if self.out is None:
            return "no checkpoint (no output directory)"
        return f"the last checkpoint ({self.out / CKPT_NAME}, step {self._saved_step}) is intact"

    # ------------------------------------------------------------------
    def run(self, stop_after: Optional[int] = None) -> SearchResult:
        """Search to the end (or only until global step ``stop_after``, to
        simulate an interruption: the checkpoint is then written as usual)."""
        s = self.cfg.search
        self._saved_step = self.step
        end = self.total_steps if stop_after is None else min(stop_after, self.total_steps)
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not (self.progress and self.main),
                   desc=f"search {self.cfg.name}/{self.cfg.task.task}", dynamic_ncols=True)
        self.net.train()
        t0 = time.time()
        while self.step < end:
            epoch = self.step // s.steps_per_epoch
            in_epoch = self.step % s.steps_per_epoch
            n = min(s.steps_per_epoch - in_epoch, end - self.step)
            lr = cosine_lr(epoch, s.epochs, s.w_lr, s.w_lr_min)
            for g in self.w_opt.param_groups:
                g["lr"] = lr
            arch_on = epoch >= s.warmup_epochs
            # this rank's slice of global batches step .. step+n-1 (the whole batch with one process)
            train_it = distributed.batch_stream(self.train_ds, s.seed, s.batch_size, self.step, n, self.device,
                                                self.cfg.data.num_workers, self.dist)
            val_it = (distributed.batch_stream(self.val_ds, s.seed + 1, s.batch_size, self.step, n, self.device,
                                               self.cfg.data.num_workers, self.dist) if arch_on else None)
            sums = self.sums
            for _ in range(n):
                x, y = (to_device(t, self.device) for t in next(train_it))
                if arch_on:
                    xv, yv = (to_device(t, self.device) for t in next(val_it))
                    sums["arch_loss"] += self._arch_step(xv, yv)
                sums["train_loss"] += self._weight_step(x, y)
                sums["n"] += 1
                self.step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{sums['train_loss'] / sums['n']:.4f}", lr=f"{lr:.4f}",
                                mem=f"{memory_mib(self.device):.0f}MiB", arch="on" if arch_on else "warmup")
                if s.checkpoint_every and self.step % s.checkpoint_every == 0 and self.step < end:
                    self.save()
                    self._saved_step = self.step
            if self.step % s.steps_per_epoch == 0:
                self._end_epoch(epoch, lr, arch_on, time.time() - t0)
                self.sums = {"train_loss": 0.0, "arch_loss": 0.0, "n": 0}
            self.save()
            self._saved_step = self.step
        bar.close()
        return self._finish()

    def _end_epoch(self, epoch: int, lr: float, arch_on: bool, elapsed: float) -> None:
        sums, n = self.sums, max(1, self.sums["n"])
        val = evaluate_patches(self.net, self.val_batches, self.loss_fn, self.device, self.amp, self.dist)
        geno = derive_genotype(self.net)
        rec = {
            "epoch": epoch, "step": self.step, "lr": lr,
            "train_loss": sums["train_loss"] / n,
            "arch_loss": sums["arch_loss"] / n if arch_on else None,
            **val,
            "alpha": self.net.alpha.detach().cpu().tolist(),
            "beta": self.net.beta.detach().cpu().tolist(),
            "genotype": geno.to_dict(),
            "mem_mib": memory_mib(self.device),
            "elapsed_s": elapsed,
        }
        self.history.append(rec)
        # the best epoch is chosen among those that searched the architecture
        if arch_on and val["val_psnr"] > self.best["val_psnr"]:
            self.best = {"val_psnr": val["val_psnr"], "epoch": epoch, "genotype": geno.to_dict()}
        if self.out is not None and self.main:
            with open(self.out / "log.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
        if self.on_epoch is not None and self.main:
            self.on_epoch(rec)

    def _finish(self) -> SearchResult:
        geno = derive_genotype(self.net)
        best = Genotype.from_dict(self.best["genotype"]) if self.best["genotype"] else geno
        done = self.step >= self.total_steps
        if self.out is not None and done and self.main:
            geno.save(self.out / "genotype.json")
            best.save(self.out / "genotype_best.json")
            if self.write_figures:
                self._figures(geno)
        return SearchResult(genotype=geno, best_genotype=best, history=self.history, out_dir=self.out,
                            net=self.net)

    def _figures(self, geno: Genotype) -> None:
        import matplotlib.pyplot as plt
        from . import viz
        fig_dir = self.out / "figures"
        fig_dir.mkdir(exist_ok=True)
        for l in range(geno.layers):
            viz.render(viz.cell_graph(geno, l), fig_dir / f"cell_layer{l}", fmt="svg")
        viz.render(viz.width_path_graph(geno), fig_dir / "width_path", fmt="svg")
        figs = {"alpha": viz.plot_alphas(self.net.alpha.detach().cpu(), self.cfg.space.primitives,
                                         self.cfg.space.blocks),
                "beta": viz.plot_beta(self.net.beta.detach().cpu(), self.net.mask.cpu())}
        if self.history:
            figs["losses"] = viz.plot_losses(self.history)
        for name, fig in figs.items():
            fig.savefig(fig_dir / f"{name}.png", dpi=100)
            plt.close(fig)  # only the figures made here, never the caller's


def search(cfg: Config, out_dir: Optional[str | Path] = None, **kw) -> SearchResult:
    """Convenience: ``Searcher(cfg, out_dir, **kw).run()``."""
    stop_after = kw.pop("stop_after", None)
    return Searcher(cfg, out_dir, **kw).run(stop_after=stop_after)
