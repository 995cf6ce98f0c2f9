"""Retraining: the discrete network of a genotype, trained from scratch.

Adam with a per-step cosine schedule; validation on whole (or centre-cropped)
val images with fixed degradations after every ``val_every`` epochs; the best
validation PSNR is kept as ``model.pt``, a self-describing checkpoint (config,
genotype, weights) that ``torch.load(weights_only=True)`` reads. The resumable
state lives in ``train_checkpoint.pt``.

Under ``torchrun`` the network is trained with DistributedDataParallel on
slices of each global batch, with synchronised BatchNorm; validation is split
over the ranks and only rank 0 writes files (see :mod:`hinas_lib.distributed`).
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch
from tqdm.auto import tqdm

from . import distributed, streams
from .checkpoint import CheckpointError, atomic_save, atomic_write_text, load_checkpoint
from .config import Config
from .genotype import Genotype
from .losses import make_loss
from .metrics import psnr, ssim
from .network import HiNASNet
from .runtime import autocast, check_finite, memory_mib, pick_device, prepare_model, seed_everything, to_device

MODEL_NAME, STATE_NAME = "model.pt", "train_checkpoint.pt"
MODEL_FORMAT = 1


@dataclass
class TrainResult:
    net: HiNASNet
    history: List[Dict]
    best_psnr: float
    model_path: Optional[Path]


def centre_crop(img, size: int, multiple: int = 1):
    """Centre crop of at most ``size`` pixels per side, a multiple of ``multiple``."""
    if size <= 0:
        return img
    h, w = img.shape[:2]
    ch = min(h, size) // multiple * multiple
    cw = min(w, size) // multiple * multiple
    y, x = (h - ch) // 2, (w - cw) // 2
    return img[y:y + ch, x:x + cw]


def model_checkpoint(net: HiNASNet, cfg: Config, genotype: Genotype, metrics: Dict) -> Dict:
    return {"kind": "model", "format": MODEL_FORMAT, "config": cfg.to_dict(), "genotype": genotype.to_dict(),
            "filters": cfg.train.filters, "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "metrics": json.dumps(metrics)}


def load_model(path: str | Path, device: Optional[str] = None, *, task: Optional[str] = None,
               scale: Optional[int] = None) -> Tuple[HiNASNet, Config, Dict]:
    """Rebuild a trained network from its self-describing checkpoint (a ``model.pt``,
    a folder holding one, or a zoo name such as ``denoise-s30``)."""
    from .zoo import resolve_model
    path = resolve_model(path)
    ckpt = load_checkpoint(path, kind="model")
    cfg = Config.from_dict(ckpt["config"])
    if task is not None and task != cfg.task.task:
        raise CheckpointError(f"{path} holds a {cfg.task.task!r} model, but task {task!r} was asked for")
    if scale is not None and cfg.task.task == "sr" and scale != cfg.task.scale:
        raise CheckpointError(f"{path} is an x{cfg.task.scale} SR model, but x{scale} was asked for")
    net = HiNASNet(Genotype.from_dict(ckpt["genotype"]), cfg, filters=int(ckpt["filters"]))
    try:
        net.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not match the stored genotype/config ({e})") from None
    net = net.to(pick_device(device)).eval()
    return net, cfg, ckpt


def validate(net, batches, device, cfg: Config, amp: str = "none",
             dist: Optional[distributed.DistInfo] = None) -> Dict[str, float]:
    """PSNR/SSIM of whole val images (Y channel and border shave for SR). With
    ``dist`` the images are split over the ranks; every rank gets the
    single-process means (per-image scores are put back in order)."""
    from .evaluate import metric_kwargs
    dist = dist or distributed.DistInfo()
    kw = metric_kwargs(cfg)
    net.eval()
    scores = []
    with torch.no_grad():
        for x, y, _ in distributed.shard(batches, dist):
            x = to_device(x.unsqueeze(0), device)
            with autocast(device, amp):
                out = net(x)
            out = out.float().clamp(0, 1)[0].cpu()
            scores.append((psnr(out, y, **kw), ssim(out, y, **kw)))
    net.train()
    scores = distributed.unshard(scores, len(batches), dist)
    ps, ss = [p for p, _ in scores], [q for _, q in scores]
    return {"val_psnr": sum(ps) / len(ps), "val_ssim": sum(ss) / len(ss)}


class Trainer:
    def __init__(self, cfg: Config, genotype: Genotype, out_dir: Optional[str | Path] = None, *,
                 device: Optional[str] = None, resume: bool = False, progress: bool = True,
                 val_size: int = 256, on_epoch: Optional[Callable[[Dict], None]] = None):
        self.cfg, self.genotype = cfg, genotype
        self.out = Path(out_dir) if out_dir is not None else None
        # joins the process group when launched by torchrun; else one process, as before
        self.dist, self.device = distributed.init(device)
        self.main = self.dist.is_main  # only rank 0 writes files, logs and shows progress
        self.progress, self.on_epoch = progress, on_epoch
        t = cfg.train
        distributed.check_batch(t.batch_size, self.dist, "train.batch_size")
        seed_everything(t.seed)
        self.net = prepare_model(HiNASNet(genotype, cfg), self.device)
        if self.dist.enabled:
            distributed.sync_batchnorm_(self.net, self.device)  # BN statistics of the global batch
        # the loss of the whole global batch (per-rank outputs gathered)
        self.loss_fn = distributed.GlobalBatchLoss(make_loss(cfg.task), self.dist)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda", enabled=(t.amp == "fp16" and self.device.type == "cuda"))

        train_imgs, val_imgs, _ = streams.image_split(cfg)
        if t.train_on_val:
            # the paper retrains on the whole training set: the search's two halves together
            train_imgs = train_imgs + val_imgs
        self.train_ds = streams.patch_dataset(train_imgs, cfg, t.crop)
        mult = cfg.task.scale if cfg.task.task == "sr" else 1
        val_imgs = [(n, centre_crop(a, val_size, mult)) for n, a in val_imgs]
        self.val_set = list(streams.eval_dataset(val_imgs, cfg))

        self.step, self.history, self.best_psnr = 0, [], -float("inf")
        self.sums = {"loss": 0.0, "n": 0}
        self.best_state: Optional[Dict] = None
        if self.out is not None:
            self._open_run_dir(resume)
        elif resume:
            raise ValueError("resume needs an output directory")
        # built after loading: DDP starts every rank from rank 0's weights
        self.model = distributed.wrap_ddp(self.net, self.device, self.dist)

    def _open_run_dir(self, resume: bool) -> None:
        ckpt = distributed.open_run_dir(self.out, self.dist, resume=resume, state_file=STATE_NAME,
                                        what="training", read=self._read_checkpoint)
        if ckpt is not None:
            self._apply_checkpoint(ckpt)
        if self.main:
            atomic_write_text(self.out / "config.yaml", self.cfg.to_yaml())
            self.genotype.save(self.out / "genotype.json")

    @property
    def total_steps(self) -> int:
        return self.cfg.train.epochs * self.cfg.train.steps_per_epoch

    def lr_at(self, step: int) -> float:
        t = self.cfg.train
        return t.lr_min + 0.5 * (t.lr - t.lr_min) * (1 + math.cos(math.pi * step / self.total_steps))

    def _state(self) -> Dict:
        return {"kind": "train", "config": self.cfg.to_dict(), "genotype": self.genotype.to_dict(),
                "step": self.step, "model": self.net.state_dict(), "opt": self.opt.state_dict(),
                "scaler": self.scaler.state_dict(), "history": json.dumps(self.history),
                "best_psnr": self.best_psnr, "sums": json.dumps(self.sums),
                # informative: any number of processes that divides the global batch may resume
                "world_size": self.dist.world_size}

    def _load(self) -> None:
        self._apply_checkpoint(self._read_checkpoint())

    def _read_checkpoint(self) -> Dict:
        path = self.out / STATE_NAME
        ckpt = load_checkpoint(path, kind="train")
        if ckpt["config"] != self.cfg.to_dict() or ckpt["genotype"] != self.genotype.to_dict():
            raise CheckpointError(f"{path} was written for another config or genotype "
                                  f"(preset {ckpt['config'].get('name')!r}, task {ckpt['config']['task']['task']!r})")
        return ckpt

    def _apply_checkpoint(self, ckpt: Dict) -> None:
        written_by = int(ckpt.get("world_size", 1))
        if written_by != self.dist.world_size and self.main:
            # allowed: batch_size is the global batch, the sample stream is independent of the process count
            print(f"note: resuming a training checkpoint written by {written_by} process(es) with "
                  f"{self.dist.world_size}: same global batch ({self.cfg.train.batch_size}) and samples; "
                  "equal to an uninterrupted run up to floating-point summation order", file=sys.stderr)
        self.net.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(ckpt["opt"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.step, self.best_psnr = int(ckpt["step"]), float(ckpt["best_psnr"])
        self.history, self.sums = json.loads(ckpt["history"]), json.loads(ckpt["sums"])
        if self.main:
            atomic_write_text(self.out / "log.jsonl", "".join(json.dumps(h) + "\n" for h in self.history))

    def save(self) -> None:
        if self.out is not None:
            if self.main:
                atomic_save(self._state(), self.out / STATE_NAME)
            self._saved = self.step

    def _step(self, x, y) -> float:
        t = self.cfg.train
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(self.step)
        with autocast(self.device, t.amp):
            # through the DDP wrapper (when distributed): backward averages the gradients over the ranks
            loss = self.loss_fn(self.model(x), y)
        hint = (f"the last checkpoint ({self.out / STATE_NAME}, step {self._saved}) is intact"
                if self.out is not None else "no output directory")
        check_finite(loss, "training", self.step, hint)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if t.grad_clip > 0:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), t.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        return loss.item()

    def run(self, stop_after: Optional[int] = None) -> TrainResult:
        t = self.cfg.train
        self._saved = self.step
        end = self.total_steps if stop_after is None else min(stop_after, self.total_steps)
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not (self.progress and self.main),
                   desc=f"train {self.cfg.name}/{self.cfg.task.task}", dynamic_ncols=True)
        self.net.train()
        t0 = time.time()
        while self.step < end:
            epoch = self.step // t.steps_per_epoch
            n = min(t.steps_per_epoch - self.step % t.steps_per_epoch, end - self.step)
            # this rank's slice of global batches step .. step+n-1 (the whole batch with one process)
            it = distributed.batch_stream(self.train_ds, t.seed, t.batch_size, self.step, n, self.device,
                                          self.cfg.data.num_workers, self.dist)
            for _ in range(n):
                x, y = (to_device(v, self.device) for v in next(it))
                self.sums["loss"] += self._step(x, y)
                self.sums["n"] += 1
                self.step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{self.sums['loss'] / self.sums['n']:.4f}",
                                lr=f"{self.lr_at(self.step):.2e}", mem=f"{memory_mib(self.device):.0f}MiB")
                if t.checkpoint_every and self.step % t.checkpoint_every == 0 and self.step < end:
                    self.save()
            if self.step % t.steps_per_epoch == 0:
                self._end_epoch(epoch, time.time() - t0)
            self.save()
        bar.close()
        if self.step >= self.total_steps:
            # hand back the best validated weights, as model.pt holds them
            if self.best_state is not None:
                self.net.load_state_dict(self.best_state)
            elif self.out is not None and (self.out / MODEL_NAME).exists():
                self.net.load_state_dict(load_checkpoint(self.out / MODEL_NAME, kind="model")["state_dict"])
        return TrainResult(self.net, self.history, self.best_psnr,
                           self.out / MODEL_NAME if self.out is not None else None)

    def _end_epoch(self, epoch: int, elapsed: float) -> None:
        t = self.cfg.train
        rec = {"epoch": epoch, "step": self.step, "lr": self.lr_at(self.step),
               "train_loss": self.sums["loss"] / max(1, self.sums["n"]), "elapsed_s": elapsed,
               "mem_mib": memory_mib(self.device)}
        self.sums = {"loss": 0.0, "n": 0}
        last = epoch == t.epochs - 1
        if (epoch + 1) % t.val_every == 0 or last:
            rec.update(validate(self.net, self.val_set, self.device, self.cfg, t.amp, self.dist))
            if rec["val_psnr"] > self.best_psnr:
                self.best_psnr = rec["val_psnr"]
                rec["best"] = True
                self.best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
                if self.out is not None and self.main:
                    metrics = {"val_psnr": rec["val_psnr"], "val_ssim": rec["val_ssim"], "epoch": epoch,
                               "step": self.step}
                    atomic_save(model_checkpoint(self.net, self.cfg, self.genotype, metrics),
                                self.out / MODEL_NAME)
        self.history.append(rec)
        if self.out is not None and self.main:
            with open(self.out / "log.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
        if self.on_epoch is not None and self.main:
            self.on_epoch(rec)


def train(cfg: Config, genotype: Genotype, out_dir: Optional[str | Path] = None, **kw) -> TrainResult:
    stop_after = kw.pop("stop_after", None)
    return Trainer(cfg, genotype, out_dir, **kw).run(stop_after=stop_after)
