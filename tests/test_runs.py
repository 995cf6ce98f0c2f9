"""The run folder shared by search and retraining: lock, resume at an epoch
boundary after a crash, stale temporary files, honest messages."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hinas_lib import data, runs
from hinas_lib.checkpoint import CheckpointError
from hinas_lib.cli import main
from hinas_lib.config import Config, DataConfig, SearchConfig, SpaceConfig, TaskConfig, TrainConfig
from hinas_lib.genotype import Genotype
from hinas_lib.runs import LOCK_NAME, RunLockedError
from hinas_lib.search import Searcher
from hinas_lib.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
CELL = ((("conv_3x3", 1), ("skip_connect", 0)), (("sep_conv_3x3", 1), ("conv_3x3", 2)))
GENO = Genotype(cells=(CELL, CELL), path=(0, 1))


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("val", 2)):
        (root / split).mkdir()
        for i in range(n):
            data.save_image(root / split / f"img{i}.png", rng.uniform(0, 1, (30, 34)).astype(np.float32))
    return root


def cfg_for(root, **search) -> Config:
    s = dict(epochs=3, warmup_epochs=1, steps_per_epoch=2, batch_size=2, crop=16, val_batches=1, checkpoint_every=1)
    s.update(search)
    return Config(name="runs-test", task=TaskConfig(task="denoise", channels=1),
                  space=SpaceConfig(layers=2, blocks=2, filters=4), search=SearchConfig(**s),
                  train=TrainConfig(filters=4, epochs=3, steps_per_epoch=2, batch_size=2, crop=16, checkpoint_every=1),
                  data=DataConfig(train_dir=str(root / "train"), val_dir=str(root / "val")))


def _records(run: Path):
    """The log without the fields that measure time or memory."""
    recs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("elapsed_s", "cpu_s", "mem_mib")} for r in recs]


class Crash(Exception):
    """Stands for the process dying (nothing after it runs)."""


@pytest.mark.parametrize("where", ["before the record", "after the record, before the checkpoint"])
@pytest.mark.parametrize("engine", ["search", "train"])
def test_a_crash_at_an_epoch_boundary_resumes_exactly(image_dir, tmp_path, engine, where, monkeypatch):
    """Killed between an epoch's last step and its end-of-epoch checkpoint: the resumed
    run writes every epoch's record once, with the same losses, and ends with the same
    weights as a run that was never interrupted."""
    cfg = cfg_for(image_dir)

    def make(out, resume=False):
        if engine == "search":
            return Searcher(cfg, out, progress=False, write_figures=False, resume=resume)
        return Trainer(cfg, GENO, out, progress=False, val_size=0, resume=resume)

    full = make(tmp_path / "full")
    full.run()
    cls = type(full)
    if where == "before the record":
        real = cls._end_epoch

        def end_epoch(self, epoch, *a):
            if epoch == 1:
                raise Crash
            return real(self, epoch, *a)
        monkeypatch.setattr(cls, "_end_epoch", end_epoch)
    else:
        real = runs.RunDir.save_state

        def save_state(self, state):
            if state["step"] == 4 and len(json.loads(state["history"])) == 2:
                raise Crash  # epoch 1's record is in log.jsonl, its checkpoint is not
            return real(self, state)
        monkeypatch.setattr(runs.RunDir, "save_state", save_state)
    with pytest.raises(Crash):
        make(tmp_path / "cut").run()
    monkeypatch.undo()
    resumed = make(tmp_path / "cut", resume=True)
    resumed.run()
    assert _records(tmp_path / "cut") == _records(tmp_path / "full")
    for (k, a), (_, b) in zip(full.net.state_dict().items(), resumed.net.state_dict().items()):
        assert torch.equal(a, b), k


def test_resume_removes_stale_temporary_files(image_dir, tmp_path):
    cfg = cfg_for(image_dir)
    Searcher(cfg, tmp_path / "r", progress=False, write_figures=False).run(stop_after=3)
    stale = tmp_path / "r" / ".checkpoint.pt.k9x2.tmp"  # what a write killed half-way leaves
    stale.write_bytes(b"")
    Searcher(cfg, tmp_path / "r", progress=False, write_figures=False, resume=True)
    assert not stale.exists()


def test_the_lock_names_the_other_run_and_a_dead_ones_lock_is_taken_over(image_dir, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    # a lock held by a live process (this test's parent, say) on this host
    other = {"pid": os.getppid(), "host": os.uname().nodename, "started": "2026-12-01 10:00:00",
             "command": "python -m hinas_lib search --out r"}
    (out / LOCK_NAME).write_text(json.dumps(other))
    with pytest.raises(RunLockedError, match=rf"in use by another run \(pid {other['pid']} .*2026-12-01 10:00:00"):
        Searcher(cfg_for(image_dir), out, progress=False)
    # a lock left by a process that is gone is taken over
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    other["pid"] = int(dead.stdout)
    (out / LOCK_NAME).write_text(json.dumps(other))
    s = Searcher(cfg_for(image_dir), out, progress=False, write_figures=False)
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
    s.run()
    assert not (out / LOCK_NAME).exists()  # released at the end


@pytest.mark.slow
def test_two_searches_into_one_folder(image_dir, tmp_path):
    """The second of two concurrent CLI searches into one --out stops at once (exit 2)
    with a message naming the first; the first finishes and its files are intact."""
    cfg = cfg_for(image_dir, epochs=30, warmup_epochs=1, steps_per_epoch=5)
    cfg_path = tmp_path / "cfg.yaml"
    cfg.to_yaml(cfg_path)
    out = tmp_path / "RUN"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    first = subprocess.Popen([sys.executable, "-m", "hinas_lib", "search", "--config", str(cfg_path), "--out",
                              str(out), "--no-progress", "--threads", "1"], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 600  # waits only as long as the first checkpoint takes
        while not (out / "checkpoint.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (out / LOCK_NAME).exists()
        # no duration asserted (a busy machine slows both runs): a second run that waited for
        # the lock would then have resumed and ended with 0; the timeout only detects a hang
        second = subprocess.run([sys.executable, "-m", "hinas_lib", "search", "--config", str(cfg_path), "--out",
                                 str(out), "--no-progress", "--resume"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=600)
        assert second.returncode == 2
        assert f"in use by another run (pid {first.pid}" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
    finally:
        stdout, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr
    assert Genotype.load(out / "genotype.json").layers == 2
    assert len(_records(out)) == 30


def test_messages_claim_a_checkpoint_only_when_there_is_one(tmp_path):
    rd = runs.RunDir(tmp_path / "x", runs.distributed.DistInfo(), state_file="checkpoint.pt", kind="search")
    assert "no checkpoint was written yet" in rd.hint()
    assert "intact" not in rd.hint()
    assert "nothing was written" in runs.RunDir(None, runs.distributed.DistInfo(), state_file="c",
                                                kind="search").hint()


def test_resume_without_a_checkpoint_says_so(image_dir, tmp_path):
    with pytest.raises(CheckpointError, match="nothing to resume"):
        Searcher(cfg_for(image_dir), tmp_path / "empty", progress=False, resume=True)
    assert main(["search", "--config", str(_yaml(image_dir, tmp_path)), "--out", str(tmp_path / "e2"),
                 "--resume"]) == 2


def _yaml(image_dir, tmp_path) -> Path:
    p = tmp_path / "c.yaml"
    cfg_for(image_dir).to_yaml(p)
    return p


@pytest.mark.parametrize("engine", ["search", "train"])
def test_resume_auto_starts_an_empty_folder_and_continues_a_checkpoint(image_dir, tmp_path, engine):
    cfg = cfg_for(image_dir)

    def make(out, resume):
        if engine == "search":
            return Searcher(cfg, out, progress=False, write_figures=False, resume=resume)
        return Trainer(cfg, GENO, out, progress=False, val_size=0, resume=resume)

    first = make(tmp_path / "r", "auto")  # nothing there: a fresh run
    assert first.step == 0
    first.run(stop_after=3)
    again = make(tmp_path / "r", "auto")  # a checkpoint there: resumed
    assert again.step == 3
    again.run()
    assert [r["epoch"] for r in _records(tmp_path / "r")] == [0, 1, 2]
    assert make(None, "auto").step == 0  # no folder: nothing to resume
    with pytest.raises(ValueError, match="resume: True, False or 'auto'"):
        make(tmp_path / "x", "yes")
