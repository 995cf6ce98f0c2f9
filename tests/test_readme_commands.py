"""Every command README.md shows runs as written, on tiny fake data.

The commands are read from the README's fenced ``bash`` blocks (backslash
continuations joined, comments dropped). Each ``python -m hinas_lib ...`` and
``python data_scripts/...`` command runs in a subprocess from the repository
root, with its paths moved into a temporary folder (``~`` -> a fake home whose
``Downloads`` holds a small fake BSD500 tgz, DIV2K zip and BSD68 folder in the
real archives' layouts; ``data/``, ``runs/`` and the placeholders ``RUN``,
``IN.png``, ... -> the temporary folder) and its training shortened with
``--set``. A command the test does not know how to run fails it unless it is
listed in ``SKIPPED`` with the reason, so the docs cannot drift from the code.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

# Commands not run here, each with its reason (the exact command as normalised by readme_commands).
SKIPPED: Dict[str, str] = {
    "make demo": "the main job itself (minutes on a CPU); its pieces run below",
    "make test": "runs this very test suite",
    "torchrun --standalone --nproc_per_node=N -m hinas_lib search --preset paper-denoise "
    "--set data.train_dir=data/BSD500/train --out runs/dn-search":
        "needs torchrun with N GPUs; tests/test_distributed.py covers several processes",
    "torchrun --standalone --nproc_per_node=N -m hinas_lib train --preset paper-denoise "
    "--set data.train_dir=data/BSD500/train --genotype runs/dn-search/genotype.json --out runs/dn-train":
        "needs torchrun with N GPUs; tests/test_distributed.py covers several processes",
    "torchrun --nnodes=2 --node_rank=0 --nproc_per_node=N --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 "
    "--rdzv_id=dn-search -m hinas_lib search --preset paper-denoise --set data.train_dir=data/BSD500/train "
    "--out runs/dn-search": "needs two machines",
    "torchrun --nproc_per_node=2 -m hinas_lib search --preset tiny --task denoise --out RUN":
        "several processes on one CPU (slow here); tests/test_distributed.py runs gloo searches",
}

# Where a data script writes by default (its --out), relative to the project root.
DATA_SCRIPT_OUT = {"prepare_bsd500.py": "data/BSD500", "prepare_div2k.py": "data/DIV2K",
                   "prepare_testsets.py": "data"}

# Tiny runs: every search/train/demo command gets these (the config's own checks still apply).
SHRINK = ["search.epochs=1", "search.warmup_epochs=0", "search.steps_per_epoch=1", "search.batch_size=2",
          "search.crop=16", "search.val_batches=1", "train.epochs=1", "train.steps_per_epoch=1",
          "train.batch_size=2", "train.crop=16", "train.filters=4", "train.val_every=1", "space.layers=2",
          "space.blocks=2", "space.filters=4"]
TRAINING_COMMANDS = ("search", "train", "demo")
OTHER_COMMANDS = ("describe", "eval", "restore")


# ----------------------------------------------------------------------------- reading the README

def readme_commands(text: str) -> List[Tuple[str, str]]:
    """``(command, comment)`` for every command line of the README's ``bash`` blocks, in order.

    The command is normalised (continuations joined, whitespace collapsed, comment dropped);
    the comment is what follows ``#`` on its line (e.g. ``-> data/BSD500/{train,test}``).
    """
    out = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M):
        pending = ""
        for line in block.splitlines():
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            full, pending = pending + line, ""
            tokens = shlex.split(full, comments=True)
            if tokens:
                comment = full.split(" #", 1)[1].strip() if " #" in full else ""
                out.append((" ".join(tokens), comment))
    return out


def test_readme_parser_joins_continuations_and_drops_comments():
    text = "x\n```bash\n# only a comment\npython -m hinas_lib a \\\n   --b c   # -> out/{x,y}\n```\n"
    assert readme_commands(text) == [("python -m hinas_lib a --b c", "-> out/{x,y}")]


# ----------------------------------------------------------------------------- fake data

def _image(path: Path, seed: int, h: int = 72, w: int = 80, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    planes = [np.sin(xx / (3 + rng.uniform(0, 5)) + rng.uniform(0, 6)) * np.cos(yy / (4 + rng.uniform(0, 5)))
              for _ in range(3 if mode == "RGB" else 1)]
    a = ((np.stack(planes, -1) + 1) * 127.5).clip(0, 255).astype(np.uint8)
    Image.fromarray(a if mode == "RGB" else a[..., 0], mode).save(path)


def make_fake_downloads(home: Path) -> None:
    """~/Downloads with BSR_bsds500.tgz, DIV2K_train_HR.zip and testsets/BSD68, as the real ones are laid out."""
    dl = home / "Downloads"
    stage = home / "stage"
    base = stage / "BSR" / "BSDS500" / "data" / "images"
    for split, n in (("train", 2), ("val", 1), ("test", 2)):
        for i in range(n):
            _image(base / split / f"{split}{i}.jpg", seed=10 * len(split) + i)
    dl.mkdir(parents=True)
    with tarfile.open(dl / "BSR_bsds500.tgz", "w:gz") as t:
        t.add(stage / "BSR", arcname="BSR")
    with zipfile.ZipFile(dl / "DIV2K_train_HR.zip", "w") as z:
        for i in range(1, 4):
            p = stage / "DIV2K_train_HR" / f"{i:04d}.png"
            _image(p, seed=100 + i)
            z.write(p, f"DIV2K_train_HR/{p.name}")
    for i in range(2):
        _image(dl / "testsets" / "BSD68" / f"test{i:03d}.png", seed=200 + i, h=40, w=48, mode="L")


def make_placeholders(root: Path) -> Dict[str, Path]:
    """The README's placeholder names (RUN, IN.png, DIR, ...) -> real paths under ``root``."""
    tests = root / "testimgs"
    for i in range(2):
        _image(tests / f"t{i}.png", seed=300 + i, h=40, w=48, mode="L")
    _image(root / "in.png", seed=400, h=40, w=48, mode="L")
    _image(root / "noisy.png", seed=401, h=40, w=48, mode="L")
    _image(root / "small.png", seed=402, h=24, w=20, mode="L")  # grey into the RGB SR model: --convert
    return {"RUN2": root / "RUN2", "RUN": root / "RUN", "IN.png": root / "in.png", "OUT.png": root / "out.png",
            "DIR": tests, "MY_TEST_FOLDER": tests, "noisy.png": root / "noisy.png",
            "clean.png": root / "clean.png", "small.png": root / "small.png", "big.png": root / "big.png"}


# ----------------------------------------------------------------------------- rewriting

def move_path(value: str, root: Path, home: Path, names: Dict[str, Path]) -> str:
    """A path of the README -> the same path under the temporary folder."""
    if value.startswith("~/"):
        return str(home / value[2:])
    if value.startswith(("data/", "runs/")):
        return str(root / value)
    first, sep, rest = value.partition("/")
    if first in names:
        return str(names[first]) + sep + rest
    return value


def rewrite(tokens: List[str], root: Path, home: Path, names: Dict[str, Path]) -> List[str]:
    """Optional ``[...]`` parts kept, paths moved (``--set x=data/...`` values too)."""
    out = []
    for tok in tokens:
        tok = tok.strip("[]")
        if "=" in tok and not tok.startswith("-"):
            key, val = tok.split("=", 1)
            tok = f"{key}={move_path(val, root, home, names)}"
        else:
            tok = move_path(tok, root, home, names)
        out.append(tok)
    return out


def runnable(command: str, root: Path, home: Path, names: Dict[str, Path]) -> List[str]:
    """The argv to run for a README command; raises ``LookupError`` when it is not one we know."""
    tokens = shlex.split(command)
    if tokens[:3] == ["python", "-m", "hinas_lib"] and len(tokens) > 3:
        sub = tokens[3]
        if sub not in TRAINING_COMMANDS + OTHER_COMMANDS:
            raise LookupError(f"unknown hinas_lib command {sub!r}: teach tests/test_readme_commands.py")
        argv = [sys.executable, "-m", "hinas_lib"] + rewrite(tokens[3:], root, home, names)
        if sub in TRAINING_COMMANDS:
            argv += [x for s in SHRINK for x in ("--set", s)]
        if sub != "describe":
            argv += ["--no-progress", "--threads", "1"]
        return argv
    if tokens[0] == "python" and len(tokens) > 1 and tokens[1].startswith("data_scripts/"):
        script = Path(tokens[1]).name
        if script not in DATA_SCRIPT_OUT:
            raise LookupError(f"unknown data script {script!r}: add its default --out to DATA_SCRIPT_OUT")
        argv = [sys.executable] + rewrite(tokens[1:], root, home, names)
        if "--out" not in tokens:  # its default is inside the repository: move it too
            argv += ["--out", move_path(DATA_SCRIPT_OUT[script] + "/", root, home, names).rstrip("/")]
        return argv
    raise LookupError("not a hinas_lib or data_scripts command")


def promised_outputs(comment: str, root: Path, home: Path, names: Dict[str, Path]) -> List[Path]:
    """``-> data/BSD500/{train,test}`` -> the folders a data script says it writes."""
    if not comment.startswith("->"):
        return []
    target = comment[2:].split()[0]
    m = re.match(r"(.*)\{(.*)\}(.*)", target)
    targets = [m.group(1) + part + m.group(3) for part in m.group(2).split(",")] if m else [target]
    return [Path(move_path(t, root, home, names)) for t in targets]


# ----------------------------------------------------------------------------- the test

@pytest.mark.slow
def test_every_readme_command_runs(tmp_path):
    commands = readme_commands(README.read_text())
    assert len(commands) >= 10, "the README's bash blocks were not found"
    home = tmp_path / "home"
    make_fake_downloads(home)
    names = make_placeholders(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HOME": str(home)}
    env.pop("HINAS_DEBUG", None)
    unknown, failed, ran = [], [], 0
    for command, comment in commands:
        if command in SKIPPED:
            continue
        try:
            argv = runnable(command, tmp_path, home, names)
        except LookupError as e:
            unknown.append(f"{command}  ({e})")
            continue
        proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        ran += 1
        if proc.returncode != 0:
            failed.append(f"{command}\n  -> exit {proc.returncode}: {proc.stderr.strip()[-800:]}")
            continue
        missing = [str(p) for p in promised_outputs(comment, tmp_path, home, names) if not p.is_dir()]
        if missing:
            failed.append(f"{command}\n  -> the README says it writes {comment[2:].strip()}, missing: {missing}")
    assert not unknown, ("README commands this test cannot run; make them runnable here or add them to "
                         "SKIPPED with a reason:\n" + "\n".join(unknown))
    assert not failed, "README commands that fail:\n" + "\n".join(failed)
    assert ran >= 10
    # what the commands promise is there
    assert (tmp_path / "runs" / "dn-train" / "model.pt").is_file()
    assert (tmp_path / "runs" / "sr-search" / "genotype.json").is_file()
    assert (tmp_path / "big.png").is_file() and (tmp_path / "clean.png").is_file()


def test_skipped_commands_are_still_in_the_readme():
    """An allow-list entry for a command the README no longer shows is stale: remove it."""
    commands = {c for c, _ in readme_commands(README.read_text())}
    stale = [c for c in SKIPPED if c not in commands]
    assert not stale, f"SKIPPED lists commands the README no longer has: {stale}"
