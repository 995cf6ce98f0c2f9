"""The run lifecycle shared by the search and the retraining.

:class:`RunEngine` holds what both engines do the same way, so that a rule is
written once:

* **Opening.** The run folder (:class:`~hinas_lib.runs.RunDir`) is locked before
  minutes of building and loading; ``resume`` is ``True``, ``False`` or ``"auto"``
  (resume when the folder holds the state file, else start); a failure while
  building leaves the folder to others.
* **The loop.** Steps in stretches that end at an epoch's end or at ``stop_after``;
  a progress bar; a checkpoint every ``checkpoint_every`` steps but **never at an
  epoch's last step** (that checkpoint is written after the epoch's record, so a
  crash there cannot record an epoch twice), and one after every stretch.
* **State.** The entries every checkpoint carries (config, step, weights, history,
  running sums, world size) and their restoring, with the log rewritten as the
  checkpoint knows it; CPU time counted over all resumes.

An engine says what is its own: :meth:`_build` (the network, optimisers, data),
:meth:`_steps` (one stretch of steps), :meth:`_end_epoch`, :meth:`_finish` and the
extra checkpoint entries (:meth:`_extra_state`, :meth:`_load_extra`).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional

from tqdm.auto import tqdm

from . import distributed
from .checks import PATH_OR_NONE, expect
from .config import Config
from .runs import RunDir
from .runtime import seed_everything
from .tasks import get_task


class RunEngine:
    """One search or retraining in a run folder (or without files, ``out_dir=None``).

    Subclasses set ``kind`` (the state's ``kind`` entry and the progress label),
    ``state_file`` and ``section`` (the config section that drives the loop).
    """

    kind: str = ""
    state_file: str = ""
    section: str = ""
    noun: str = ""  # the run named in messages ("search", "training")

    def __init__(self, cfg: Config, out_dir, *, device: Optional[str], resume, threads: Optional[int],
                 progress: bool, on_epoch: Optional[Callable[[Dict], None]]):
        expect(out_dir, PATH_OR_NONE, "out_dir")
        self.cfg, self.progress, self.on_epoch = cfg, progress, on_epoch
        self.out = Path(out_dir) if out_dir is not None else None
        # joins the process group when launched by torchrun; else one process, as before
        self.dist, self.device = distributed.init(device, threads)
        self.main = self.dist.is_main  # only rank 0 writes files, logs and shows progress
        # the run folder first: a folder in use is refused before minutes of building and loading
        self.run_dir = RunDir(self.out, self.dist, state_file=self.state_file, kind=self.kind)
        state = self.run_dir.open(cfg, resume=resume, check=self._check_state)
        try:
            self.step, self.history = 0, []
            self.cpu_s = 0.0  # CPU time of this run over all its resumes (process time: every thread counted)
            self._cpu0: Optional[float] = None
            sec = self._section
            distributed.check_batch(sec.batch_size, self.dist, f"{self.section}.batch_size")
            self.task = get_task(cfg)
            seed_everything(sec.seed)
            self._build()
            if state is not None:
                self._apply_checkpoint(state)
            self._started()
        except BaseException:  # nothing was started: leave the folder to others
            self.run_dir.close()
            raise

    # ---- what an engine supplies ---------------------------------------------
    def _build(self) -> None:
        """Build the network, optimisers and data, and set ``self.sums`` (folder locked, seeded)."""
        raise NotImplementedError

    def _started(self) -> None:
        """After the state is loaded (e.g. wrap in DDP: every rank starts from rank 0's weights)."""

    def _check_state(self, state: Dict) -> None:
        """Raise CheckpointError for a state this run cannot continue."""

    def _steps(self, epoch: int, n: int) -> Iterator[None]:
        """Run ``n`` steps of ``epoch``, yielding after each (before ``self.step`` moves)."""
        raise NotImplementedError

    def _postfix(self) -> Dict[str, str]:
        """The progress bar's figures after a step."""
        return {}

    def _end_epoch(self, epoch: int, elapsed: float) -> None:
        raise NotImplementedError

    def _finish(self):
        raise NotImplementedError

    def _extra_state(self) -> Dict:
        return {}

    def _load_extra(self, ckpt: Dict) -> None:
        pass

    # ---- the loop ----------------------------------------------------------------
    @property
    def _section(self):
        return getattr(self.cfg, self.section)

    @property
    def total_steps(self) -> int:
        return self._section.epochs * self._section.steps_per_epoch

    def _checkpoint_due(self, end: int) -> bool:
        """Whether to checkpoint after the step just taken, inside a stretch ending at ``end``.
        Never at an epoch's last step: that checkpoint is written after the epoch's record."""
        every, spe = self._section.checkpoint_every, self._section.steps_per_epoch
        return bool(every and self.step % every == 0 and self.step < end and self.step % spe)

    def run(self, stop_after: Optional[int] = None):
        """Run to the end (or only until global step ``stop_after``, to simulate an
        interruption: the checkpoint is then written as usual)."""
        self.run_dir.reopen()
        self._cpu0, self._cpu_base = time.process_time(), self.cpu_s
        try:
            return self._run(stop_after)
        finally:
            self.cpu_s = self._cpu_now()  # a later run() continues the count
            self._cpu0 = None
            self.run_dir.close()

    def _run(self, stop_after: Optional[int]):
        spe = self._section.steps_per_epoch
        end = self.total_steps if stop_after is None else min(stop_after, self.total_steps)
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not (self.progress and self.main),
                   desc=f"{self.kind} {self.cfg.name}/{self.cfg.task.task}", dynamic_ncols=True)
        self.net.train()
        t0 = time.time()
        while self.step < end:
            epoch = self.step // spe
            n = min(spe - self.step % spe, end - self.step)
            for _ in self._steps(epoch, n):
                self.step += 1
                bar.update(1)
                bar.set_postfix(**self._postfix())
                if self._checkpoint_due(end):
                    self.save()
            if self.step % spe == 0:
                self._end_epoch(epoch, time.time() - t0)
            self.save()
        bar.close()
        return self._finish()

    def _cpu_now(self) -> float:
        """CPU seconds spent so far (earlier resumes included)."""
        if self._cpu0 is None:
            return self.cpu_s
        return self._cpu_base + time.process_time() - self._cpu0

    def _record(self, rec: Dict) -> None:
        """An epoch's record: into the history, the log and ``on_epoch`` (rank 0)."""
        self.history.append(rec)
        self.run_dir.append_log(rec)
        if self.on_epoch is not None and self.main:
            self.on_epoch(rec)

    # ---- state -------------------------------------------------------------------
    def _state(self) -> Dict:
        return {"kind": self.kind, "config": self.cfg.to_dict(), "step": self.step,
                "model": self.net.state_dict(), "history": json.dumps(self.history),
                "sums": json.dumps(self.sums), **self._extra_state(),
                # informative: any number of processes that divides the global batch may resume
                "world_size": self.dist.world_size}

    def save(self) -> None:
        self.run_dir.save_state(self._state())

    def _apply_checkpoint(self, ckpt: Dict) -> None:
        written_by = int(ckpt.get("world_size", 1))
        if written_by != self.dist.world_size and self.main:
            # allowed: the config's batch_size is the global batch and the sample
            # stream does not depend on the number of processes
            print(f"note: resuming a {self.noun} checkpoint written by {written_by} process(es) with "
                  f"{self.dist.world_size}: same global batch ({self._section.batch_size}) and samples; "
                  "equal to an uninterrupted run up to floating-point summation order", file=sys.stderr)
        self.net.load_state_dict(ckpt["model"])
        self.step = int(ckpt["step"])
        self.history, self.sums = json.loads(ckpt["history"]), json.loads(ckpt["sums"])
        self._load_extra(ckpt)
        self.run_dir.rewrite_log(self.history)


__all__ = ["RunEngine"]
