"""Retraining: the discrete network of a genotype, trained from scratch.

Two recipes, chosen by the config: ours (Adam, a per-step cosine schedule) and
the authors' (SGD 0.05 with momentum, biases at twice the learning rate and
without weight decay, a per-step polynomial decay, gradients clipped at +-5).
Validation on whole (or centre-cropped) held-out or val images with fixed
degradations every ``val_every`` epochs from ``val_from`` (the same metric as
the search reports, :mod:`hinas_lib.validation`); the best epoch by
``select_by`` is kept as ``model.pt``, a self-describing checkpoint (config,
genotype, weights; :mod:`hinas_lib.model_files`). The resumable state lives in
``train_checkpoint.pt`` of the run folder (:mod:`hinas_lib.runs`).

Under ``torchrun`` the network is trained with DistributedDataParallel on
slices of each global batch, the loss taken over the whole global batch;
BatchNorm statistics are the global batch's with NCCL and each rank's own with
gloo (``HINAS_BN_SYNC`` chooses); validation is split over the ranks and only
rank 0 writes files (see :mod:`hinas_lib.distributed`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

from . import data, distributed, splits, streams
from .checkpoint import CheckpointError, load_checkpoint
from .checks import CONFIG_HINT, GENOTYPE_HINT, PATH_OR_NONE, expect
from .config import Config
from .datasets import centre_crop_pair, real_inputs
from .engine import RunEngine
from .genotype import Genotype
from .model_files import save_model
from .network import build_network
from .runfiles import GENOTYPE_FILE, MODEL_FILE, TRAIN_STATE
from .runtime import autocast, check_finite, memory_mib, prepare_model, to_device
from .schedules import TRAIN_LR, selection_score
from .validation import validate

STATE_NAME = TRAIN_STATE  # (the name scripts import)


@dataclass
class TrainResult:
    net: torch.nn.Module
    history: List[Dict]
    best_psnr: float
    model_path: Optional[Path]


class Trainer(RunEngine):
    """Trains (and resumes) the network of ``genotype``. ``run()`` returns a :class:`TrainResult`.

    Args:
        cfg: the whole configuration (``cfg.train`` drives the loop).
        genotype: the architecture to train.
        out_dir: the run folder, or None for no files.
        device, resume, progress, on_epoch: as for :class:`~hinas_lib.search.Searcher`.
        val_size: centre crop of the validation images (0 = whole images).
        init_weights: a state_dict to start from instead of the random initialisation
            (fine-tuning, e.g. a per-sigma model branched from a blind one); ignored on resume.
        threads: torch threads per process when launched as several CPU processes.
    """

    kind, state_file, section, noun = "train", TRAIN_STATE, "train", "training"

    def __init__(self, cfg: Config, genotype: Genotype, out_dir: Optional[str | Path] = None, *,
                 device: Optional[str] = None, resume: bool | str = False, progress: bool = True,
                 val_size: int = 256, on_epoch: Optional[Callable[[Dict], None]] = None,
                 init_weights: Optional[Dict] = None, threads: Optional[int] = None):
        expect(cfg, Config, "cfg", CONFIG_HINT).validate()  # also catches fields changed after construction
        expect(genotype, Genotype, "genotype", GENOTYPE_HINT)
        expect(out_dir, PATH_OR_NONE, "out_dir")
        expect(val_size, int, "val_size")
        if val_size < 0:
            raise ValueError(f"val_size: the centre crop of validation images, >= 0 (0 = whole), got {val_size}")
        self.genotype, self.val_size, self.init_weights = genotype, val_size, init_weights
        super().__init__(cfg, out_dir, device=device, resume=resume, threads=threads, progress=progress,
                         on_epoch=on_epoch)

    def _build(self) -> None:
        cfg, t = self.cfg, self.cfg.train
        net = build_network(self.genotype, cfg)
        if self.init_weights is not None:
            net.load_state_dict(self.init_weights)
        # NHWC on the CPU too: oneDNN's depthwise and dilated kernels are much faster
        # in it (8-24% per retraining step measured on the searched zoo networks)
        self.net = prepare_model(net, self.device).to(memory_format=torch.channels_last)
        if self.dist.sync_bn:
            distributed.sync_batchnorm_(self.net, self.device)  # BN statistics of the global batch
        # the loss of the whole global batch (per-rank outputs gathered)
        self.loss_fn = distributed.GlobalBatchLoss(
            self.task.loss(None if t.ssim_weight < 0 else t.ssim_weight), self.dist)
        self.opt = make_train_optimizer(self.net, cfg)
        self.scaler = torch.amp.GradScaler("cuda", enabled=(t.amp == "fp16" and self.device.type == "cuda"))

        images = splits.split_images(cfg)
        train_imgs, val_imgs = images["train"], images["val"]
        if t.train_on_val:
            # the paper retrains on the whole training set: the search's two halves together
            train_imgs = train_imgs + val_imgs
        if images["holdout"]:  # the images neither half saw validate the retraining
            val_imgs = images["holdout"]
        lq_dir = cfg.data.train_lq_dir  # paired data: real degraded inputs instead of synthesised ones
        self.train_ds = self.task.patch_dataset(train_imgs, t.crop, rescale=cfg.data.rescale,
                                                inputs=real_inputs(train_imgs, lq_dir, self.task))
        val_lq = real_inputs(val_imgs, lq_dir, self.task)
        if val_lq is None:
            val_imgs = [(n, data.centre_crop(a, self.val_size, self.task.scale)) for n, a in val_imgs]
        else:
            crops = [centre_crop_pair(lq, a, self.val_size, self.task.scale) for lq, (_, a) in zip(val_lq, val_imgs)]
            val_lq, val_imgs = [c[0] for c in crops], [(n, c[1]) for (n, _), c in zip(val_imgs, crops)]
        self.val_set = list(self.task.eval_dataset(val_imgs, inputs=val_lq))

        self.best_psnr, self.best_score = -float("inf"), -float("inf")
        self.sums = {"loss": 0.0, "n": 0}
        self.best_state: Optional[Dict] = None

    def _started(self) -> None:
        if self.main and self.out is not None:
            self.genotype.save(self.out / GENOTYPE_FILE)
        # built after loading: DDP starts every rank from rank 0's weights
        self.model = distributed.wrap_ddp(self.net, self.device, self.dist)

    def lr_at(self, step: int) -> float:
        """The learning rate of (0-based) ``step``."""
        t = self.cfg.train
        return TRAIN_LR[t.schedule](t, step, self.total_steps)

    def _extra_state(self) -> Dict:
        return {"genotype": self.genotype.to_dict(), "opt": self.opt.state_dict(),
                "scaler": self.scaler.state_dict(), "best_psnr": self.best_psnr, "best_score": self.best_score,
                "cpu_s": self._cpu_now()}

    def _check_state(self, state: Dict) -> None:
        if state["genotype"] != self.genotype.to_dict():
            raise CheckpointError(f"{self.run_dir.state_path} was written for another genotype; "
                                  "resume it with the genotype it was started with")

    def _load_extra(self, ckpt: Dict) -> None:
        self.opt.load_state_dict(ckpt["opt"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.best_psnr = float(ckpt["best_psnr"])
        self.best_score = float(ckpt.get("best_score", self.best_psnr))  # (checkpoints before select_by)
        self.cpu_s = float(ckpt.get("cpu_s", 0.0))

    def _step(self, x, y) -> float:
        t = self.cfg.train
        lr = self.lr_at(self.step)
        for g in self.opt.param_groups:
            g["lr"] = lr * g.get("lr_factor", 1.0)
        with autocast(self.device, t.amp):
            # through the DDP wrapper (when distributed): backward averages the gradients over the ranks
            loss = self.loss_fn(self.model(x), y)
        check_finite(loss, "training", self.step, self.run_dir.hint())
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if t.grad_clip > 0 or t.grad_clip_value > 0:
            self.scaler.unscale_(self.opt)
            if t.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), t.grad_clip)
            if t.grad_clip_value > 0:
                torch.nn.utils.clip_grad_value_(self.net.parameters(), t.grad_clip_value)
        self.scaler.step(self.opt)
        self.scaler.update()
        return loss.item()

    def _steps(self, epoch: int, n: int):
        t = self.cfg.train
        # this rank's slice of global batches step .. step+n-1 (the whole batch with one process)
        it = streams.batch_stream(self.train_ds, t.seed, t.batch_size, self.step, n, self.device,
                                  self.cfg.data.num_workers, rank=self.dist.rank, world_size=self.dist.world_size)
        for _ in range(n):
            x, y = (to_device(v, self.device).contiguous(memory_format=torch.channels_last) for v in next(it))
            self.sums["loss"] += self._step(x, y)
            self.sums["n"] += 1
            yield

    def _postfix(self) -> Dict[str, str]:
        return {"loss": f"{self.sums['loss'] / self.sums['n']:.4f}", "lr": f"{self.lr_at(self.step):.2e}",
                "mem": f"{memory_mib(self.device):.0f}MiB"}

    def _finish(self) -> TrainResult:
        model_path = self.out / MODEL_FILE if self.out is not None else None
        if self.step >= self.total_steps:
            # hand back the best validated weights, as model.pt holds them
            if self.best_state is not None:
                self.net.load_state_dict(self.best_state)
            elif model_path is not None and model_path.exists():
                self.net.load_state_dict(load_checkpoint(model_path, kind="model")["state_dict"])
        return TrainResult(self.net, self.history, self.best_psnr, model_path)

    def _end_epoch(self, epoch: int, elapsed: float) -> None:
        t = self.cfg.train
        rec = {"epoch": epoch, "step": self.step, "lr": self.lr_at(self.step),
               "train_loss": self.sums["loss"] / max(1, self.sums["n"]), "elapsed_s": elapsed,
               "cpu_s": self._cpu_now(),
               "mem_mib": memory_mib(self.device)}
        self.sums = {"loss": 0.0, "n": 0}
        last = epoch == t.epochs - 1
        if ((epoch + 1) % t.val_every == 0 and epoch >= t.val_from) or last:
            rec.update(validate(self.net, self.val_set, self.task, self.device, amp=t.amp, dist=self.dist))
            score = selection_score(rec["val_psnr"], rec["val_ssim"], t.select_by)
            if score > self.best_score:
                self.best_psnr, self.best_score = rec["val_psnr"], score
                rec["best"] = True
                self.best_state = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
                if self.out is not None and self.main:
                    metrics = {"val_psnr": rec["val_psnr"], "val_ssim": rec["val_ssim"], "epoch": epoch,
                               "step": self.step}
                    save_model(self.out / MODEL_FILE, self.net, self.cfg, self.genotype, metrics)
        self._record(rec)


def make_train_optimizer(net: torch.nn.Module, cfg: Config) -> torch.optim.Optimizer:
    """Adam over every weight (ours), or the authors' SGD: biases (of convs and BNs)
    in their own group, at ``bias_lr_factor`` times the rate and ``bias_weight_decay``."""
    t = cfg.train
    if t.optimizer == "adam":
        return torch.optim.Adam(net.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    bias = [p for n, p in net.named_parameters() if n.endswith("bias")]
    rest = [p for n, p in net.named_parameters() if not n.endswith("bias")]
    bias_wd = t.weight_decay if t.bias_weight_decay < 0 else t.bias_weight_decay
    groups = [{"params": rest, "weight_decay": t.weight_decay, "lr_factor": 1.0},
              {"params": bias, "weight_decay": bias_wd, "lr_factor": t.bias_lr_factor}]
    return torch.optim.SGD([g for g in groups if g["params"]], lr=t.lr, momentum=t.momentum)


def train(cfg: Config, genotype: Genotype, out_dir: Optional[str | Path] = None, **kw) -> TrainResult:
    """Convenience: ``Trainer(cfg, genotype, out_dir, **kw).run()``."""
    stop_after = kw.pop("stop_after", None)
    return Trainer(cfg, genotype, out_dir, **kw).run(stop_after=stop_after)
