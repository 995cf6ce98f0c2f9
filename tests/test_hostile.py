"""Cases a second, independent round of hostile use found (issue 11's re-try): each
gave a traceback, a wrong result, lost data, hung or accepted an absurd value."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hinas_lib import data, runs
from hinas_lib.checkpoint import CheckpointError, atomic_save, load_checkpoint
from hinas_lib.cli import EXIT_MEMORY, classify, main
from hinas_lib.config import ConfigError, get_preset
from hinas_lib.evaluate import evaluate
from hinas_lib.genotype import Genotype, GenotypeError
from hinas_lib.inference import tiled_forward
from hinas_lib.model_files import load_model
from hinas_lib.runs import LOCK_NAME
from hinas_lib.search import Searcher
from hinas_lib.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
CELL = ((("conv_3x3", 1), ("skip_connect", 0)), (("conv_3x3", 2), ("skip_connect", 1)))
GENO = Genotype(cells=(CELL, CELL), path=(0, 1))
SMALL = dict(task={"sigmas": [30.0]}, space={"layers": 2, "blocks": 2, "filters": 4},
             search={"epochs": 2, "warmup_epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "crop": 16,
                     "val_batches": 1},
             train={"filters": 4, "epochs": 2, "steps_per_epoch": 2, "batch_size": 2, "crop": 16})


def small():
    return get_preset("tiny").replace(**SMALL)


def test_a_search_never_writes_into_a_training_run_and_back(tmp_path):
    Trainer(small(), GENO, tmp_path / "t", progress=False, val_size=0).run()
    before = {p.name: p.read_bytes() for p in (tmp_path / "t").iterdir() if p.is_file()}
    with pytest.raises(CheckpointError, match="already holds a run's checkpoint"):
        Searcher(small(), tmp_path / "t", progress=False)
    Searcher(small(), tmp_path / "s", progress=False, write_figures=False).run()
    with pytest.raises(CheckpointError, match="already holds"):
        Trainer(small(), GENO, tmp_path / "s", progress=False)
    after = {p.name: p.read_bytes() for p in (tmp_path / "t").iterdir() if p.is_file()}
    assert after == before  # nothing of the training run was touched
    with pytest.raises(CheckpointError, match="it holds a training run"):
        Searcher(small(), tmp_path / "t", progress=False, resume=True)


def test_a_run_killed_before_its_first_checkpoint_starts_over_cleanly(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "log.jsonl").write_text(json.dumps({"epoch": 0, "step": 2}) + "\n")  # what the killed run left
    with pytest.raises(CheckpointError, match="no checkpoint in .*run without --resume to start over"):
        Searcher(small(), out, progress=False, resume=True)
    Searcher(small(), out, progress=False, write_figures=False).run()
    epochs = [json.loads(l)["epoch"] for l in (out / "log.jsonl").read_text().splitlines()]
    assert epochs == [0, 1]  # the stale record is gone, none twice


def test_locks_a_full_disk_left_empty_are_taken_over(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    lock = out / LOCK_NAME
    lock.write_text("")
    os.utime(lock, (0, 0))  # old: nobody is writing it
    Searcher(small(), out, progress=False, write_figures=False).run()
    assert not lock.exists()


def test_a_failed_lock_write_leaves_no_lock(tmp_path, monkeypatch):
    out = tmp_path / "r"
    out.mkdir()

    def full(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(runs.json, "dump", full)
    with pytest.raises(OSError):
        runs.RunLock(out).acquire()
    assert not (out / LOCK_NAME).exists()


def test_checkpoints_are_serialised_before_they_touch_the_disk(tmp_path, monkeypatch):
    """torch.save straight into a file reports a full disk as RuntimeError; atomic_save
    serialises in memory, so the write itself fails with OSError (ENOSPC, named file)."""
    from hinas_lib import checkpoint

    def full(path, data):
        raise OSError(28, "No space left on device", str(path))
    monkeypatch.setattr(checkpoint, "atomic_write_bytes", full)
    with pytest.raises(OSError) as e:
        atomic_save({"kind": "x", "t": torch.zeros(3)}, tmp_path / "c.pt")
    assert e.value.errno == 28 and not (tmp_path / "c.pt").exists()


def test_damaged_and_absurd_checkpoints(tmp_path):
    model = ROOT / "zoo" / "sr-x2" / "model.pt"
    blob = model.read_bytes()
    (tmp_path / "half.pt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="damaged or truncated"):
        load_checkpoint(tmp_path / "half.pt", kind="model")
    ck = load_checkpoint(model, kind="model")
    ck["filters"] = 10 ** 6
    atomic_save(ck, tmp_path / "huge.pt")
    with pytest.raises(CheckpointError, match="filters=1000000"):
        load_model(tmp_path / "huge.pt", "cpu")


@pytest.mark.parametrize("change,field", [
    ({"search": {"grad_clip": -1}}, "search.grad_clip"),
    ({"search": {"w_momentum": -1}}, "search.w_momentum"),
    ({"search": {"w_weight_decay": -1}}, "search.w_weight_decay"),
    ({"search": {"a_weight_decay": -5}}, "search.a_weight_decay"),
    ({"search": {"w_lr": float("inf")}}, "search.w_lr"),
    ({"search": {"a_lr": float("inf")}}, "search.a_lr"),
    ({"task": {"ssim_weight": float("inf")}}, "task.ssim_weight"),
    ({"train": {"lr": float("inf")}}, "train.lr"),
    ({"train": {"momentum": 5}}, "train.momentum"),
    ({"search": {"crop": 1}}, "search.crop"),
    ({"space": {"layers": 64, "filters": 4096}}, "space"),
])
def test_absurd_values_are_refused_naming_the_field(change, field):
    with pytest.raises(ConfigError, match=rf"^{field}[:.]"):
        get_preset("tiny").replace(**change)


def test_yaml_floats_without_a_dot_are_numbers(capsys):
    assert main(["describe", "--preset", "tiny", "--set", "train.lr=1e-3"]) == 0
    assert get_preset("tiny").replace(train={"lr": "1e-3"}).train.lr == 1e-3


def test_python_api_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="threads"):
        Searcher(small(), None, threads=-1, progress=False)
    with pytest.raises(ValueError, match="threads"):
        Searcher(small(), None, threads="2", progress=False)
    with pytest.raises(ValueError, match="val_size"):
        Trainer(small(), GENO, None, val_size=-1, progress=False)
    threads = torch.get_num_threads()
    try:
        Searcher(small(), None, threads=2, progress=False)
        assert torch.get_num_threads() == 2  # one process: the argument is used, not ignored
    finally:
        torch.set_num_threads(threads)
    with pytest.raises(ValueError, match="empty image"):
        evaluate(torch.nn.Conv2d(1, 1, 1), small(), [("a", np.zeros((0, 0), np.float32))])
    with pytest.raises(ValueError, match="give the run folder a name"):
        Searcher(small(), "", progress=False)


def test_cli_refusals_are_one_line(tmp_path, capsys):
    img = tmp_path / "in.png"
    data.save_image(img, np.random.default_rng(0).uniform(0, 1, (40, 40)).astype(np.float32))
    assert main(["restore", "--model", "denoise-s30", "--tile", "1", str(img), str(tmp_path / "o.png")]) == 2
    assert "at least 32" in capsys.readouterr().err
    assert main(["search", "--preset", "tiny", "--out", ""]) == 2
    assert "give the run folder a name" in capsys.readouterr().err
    binary = tmp_path / "b.yaml"
    binary.write_bytes(bytes(range(256)))
    assert main(["describe", "--config", str(binary)]) == 2
    assert "not a YAML text file" in capsys.readouterr().err
    assert main(["train", "--preset", "tiny", "--genotype", str(ROOT / "zoo" / "sr-x2" / "model.pt"),
                 "--out", str(tmp_path / "t")]) == 2
    assert "not a genotype JSON file" in capsys.readouterr().err
    assert main(["eval", "--model", "sr-x2", "--data", str(tmp_path), "--sigma", "30"]) == 2
    assert "--sigma: model sr-x2 is for sr (x2); its level is set with --scale" in capsys.readouterr().err
    with pytest.raises(ValueError, match="at least 32"):
        tiled_forward(torch.nn.Identity(), torch.rand(1, 1, 40, 40), tile=8)


def test_cpu_allocation_failures_are_out_of_memory():
    e = RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                     "you tried to allocate 1099511627776 bytes")
    assert classify(e)[0] == EXIT_MEMORY


def test_the_package_imports_without_torch():
    """`python -m hinas_lib` imports the package first: it must not import torch there,
    so that Ctrl-C during start-up reaches __main__'s one-line handler."""
    code = "import sys, hinas_lib; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert GenotypeError  # (the names still import eagerly from their modules)
