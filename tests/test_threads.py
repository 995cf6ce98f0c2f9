"""Torch threads on a busy machine (issue 26): one setting (--threads, HINAS_THREADS)
for every command, a default that leaves out the cores other processes keep busy,
passive OpenMP waiting for the CLI, and the demo's interrupt and resume messages."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hinas_lib import cli, demo, runtime
from hinas_lib.checks import MAX_THREADS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.delenv(runtime.THREADS_ENV, raising=False)
    monkeypatch.setattr(runtime, "cpu_cores", lambda: 2)


@pytest.mark.parametrize("busy,expected", [(0.0, 2), (0.4, 2), (0.6, 1), (1.0, 1), (2.0, 1), (7.5, 1)])
def test_auto_threads_leaves_out_busy_cores(two_cores, monkeypatch, busy, expected):
    monkeypatch.setattr(runtime, "busy_cores", lambda window=0.3: busy)
    n, why = runtime.auto_threads()
    assert n == expected and f"{busy:.1f} busy" in why


def test_busy_cores_is_a_share_of_this_process_cores():
    busy = runtime.busy_cores(0.05)
    assert 0.0 <= busy <= (os.cpu_count() or 1) + 0.01


def test_threads_order_cli_then_environment_then_auto(two_cores, monkeypatch):
    monkeypatch.setattr(runtime, "busy_cores", lambda window=0.3: 1.0)
    monkeypatch.setattr(cli, "auto_threads", runtime.auto_threads)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ns = argparse.Namespace
    assert cli._threads(ns(threads=None))[0] == 1           # auto: one core is busy
    monkeypatch.setenv("HINAS_THREADS", "3")
    assert cli._threads(ns(threads=None)) == (3, "3 torch thread(s) (HINAS_THREADS=3)")
    assert cli._threads(ns(threads=2))[0] == 2              # --threads wins
    assert cli._threads(ns())[0] == 3                       # a command without the option: the variable
    monkeypatch.delenv("HINAS_THREADS")
    monkeypatch.setenv("WORLD_SIZE", "2")                    # torchrun: each rank takes its share
    assert cli._threads(ns(threads=None))[0] is None
    assert runtime.resolve_threads(None)[0] == 1 and runtime.resolve_threads(4)[0] == 4


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "100000"])
def test_bad_hinas_threads_is_a_one_line_usage_error(monkeypatch, capsys, value):
    monkeypatch.setenv("HINAS_THREADS", value)
    assert cli.main(["describe", "--preset", "tiny"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: HINAS_THREADS=") and f"1..{MAX_THREADS}" in err[0]


def test_every_command_takes_threads():
    parser = cli.make_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        assert any("--threads" in a.option_strings for a in p._actions), name


def test_describe_honours_threads(monkeypatch, capsys):
    import torch
    monkeypatch.delenv("HINAS_THREADS", raising=False)
    assert cli.main(["describe", "--preset", "tiny", "--threads", "2"]) == 0
    assert torch.get_num_threads() == 2
    monkeypatch.setenv("HINAS_THREADS", "1")
    assert cli.main(["describe", "--preset", "tiny"]) == 0
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("preset,expected", [(None, "None 10000"), ("ACTIVE", "ACTIVE None"),
                                             ("PASSIVE", "PASSIVE None")])
def test_cli_spins_briefly_unless_told_otherwise(preset, expected):
    """``python -m hinas_lib`` sets a short OpenMP spin (GOMP_SPINCOUNT) before torch is
    imported (OpenMP reads it once, when torch loads it); a wait policy the user set is kept
    and then no spin count is forced on it."""
    code = ("import os, runpy, sys\n"
            "sys.argv = ['hinas_lib', '--help']\n"
            "seen = []\n"
            "class Watch:\n"
            "    def find_spec(self, name, *a):\n"
            "        if name == 'torch' and not seen: seen.append("
            "f\"{os.environ.get('OMP_WAIT_POLICY')} {os.environ.get('GOMP_SPINCOUNT')}\")\n"
            "sys.meta_path.insert(0, Watch())\n"
            "try:\n"
            "    runpy.run_module('hinas_lib', run_name='__main__')\n"
            "except SystemExit:\n"
            "    pass\n"
            "print(seen[0])\n")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env["PYTHONPATH"] = str(ROOT)
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert " ".join(p.stdout.split()[-2:]) == expected  # the values torch's first import saw


# ----------------------------------------------------------------------------- the demo: Ctrl-C and resume

def test_demo_interrupt_says_how_to_resume(tmp_path):
    args = argparse.Namespace(cmd="demo", out=str(tmp_path / "demo"))
    assert "before the first checkpoint" in cli._interrupted_message(args)
    search = tmp_path / "demo" / "search" / "checkpoint.pt"
    search.parent.mkdir(parents=True)
    search.write_bytes(b"x")
    msg = cli._interrupted_message(args)
    assert msg.startswith("interrupted; rerun the same command to resume from ") and str(search) in msg
    train = tmp_path / "demo" / "train" / "train_checkpoint.pt"
    train.parent.mkdir(parents=True)
    train.write_bytes(b"x")
    assert str(train) in cli._interrupted_message(args)  # the newer stage is where it goes on
    assert cli.classify(KeyboardInterrupt(), args)[0] == cli.EXIT_INTERRUPTED


def test_demo_says_when_it_resumed(tmp_path, capsys):
    class Run:
        out, total_steps = tmp_path / "search", 200
    run = Run()
    run.step = 0
    demo._say_resumed(run, "search", 20, tmp_path)
    assert capsys.readouterr().out == ""  # a fresh run says nothing
    run.step = 160
    demo._say_resumed(run, "search", 20, tmp_path)
    out = capsys.readouterr().out
    assert "resumed the search at step 160/200 (epoch 9 of 10)" in out and str(tmp_path / "search") in out
    run.step = 200
    demo._say_resumed(run, "search", 20, tmp_path)
    assert "(epoch 10 of 10)" in capsys.readouterr().out
