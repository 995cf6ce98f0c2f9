"""Command line: ``python -m hinas_lib {describe,search,train,eval,restore,demo}``.

``search`` and ``train`` also run as several processes under ``torchrun``
(``torchrun --nproc_per_node=N -m hinas_lib search ...``); rank 0 prints.

Errors end in one line on stderr (``error: ...``, naming the file or setting)
and an exit code that says what kind of failure it was (``EXIT_CODES``; the
README has the same table). ``HINAS_DEBUG=1`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import atexit
import errno
import json
import math
import os
import signal
import sys
from pathlib import Path
from typing import Callable, List, NoReturn, Optional

import yaml

from . import data, distributed, splits, viz
from .checkpoint import CheckpointError, load_checkpoint
from .checks import MAX_THREADS
from .config import Config, ConfigError, load_config
from .demo import run_demo
from .deploy import inference_copy
from .describe import describe, format_description
from .evaluate import NonFiniteOutputError, evaluate, format_table, restore_file
from .genotype import Genotype, GenotypeError
from .model_files import load_model
from .overlap import find_overlap, overlap_warning
from .runfiles import BEST_GENOTYPE_FILE, CONFIG_FILE, GENOTYPE_FILE, state_file
from .runtime import TrainingError, auto_threads, env_threads, set_threads
from .search import Searcher
from .datasets import real_inputs
from .tasks import TASKS, get_task, with_level
from .train import Trainer

# Exit codes, one per kind of failure (documented in README.md, "Failure modes handled").
EXIT_OK = 0
EXIT_INTERNAL = 1      # a bug: an exception nobody anticipated (HINAS_DEBUG=1 shows where)
EXIT_USAGE = 2         # bad input: arguments, config or --set values, image, genotype or checkpoint files
EXIT_FILES = 3         # the file system refused: permissions, disk full, not a folder, read-only, ...
EXIT_NUMERIC = 4       # training diverged (NaN/inf loss) or a model produced NaN/inf
EXIT_MEMORY = 5        # out of memory (CPU or GPU)
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, the shell convention), SIGTERM, a torchrun peer gone

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_INTERNAL: "internal error (a bug; rerun with HINAS_DEBUG=1 for the traceback)",
    EXIT_USAGE: "bad input: arguments, config, --set value, device, image, genotype or checkpoint",
    EXIT_FILES: "file system error: permission denied, disk full, not a folder, is a folder, read-only",
    EXIT_NUMERIC: "training diverged (NaN/inf loss) or the model produced NaN/inf",
    EXIT_MEMORY: "out of memory",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C, SIGTERM, or another torchrun rank stopped); search/train "
                      "resume with --resume, demo when rerun",
}


# ---------------------------------------------------------------------------
# Argument types: argparse turns their ValueError/ArgumentTypeError into a usage error
# ---------------------------------------------------------------------------

def int_in(lo: int, hi: Optional[int], what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer ({what}), got {text!r}") from None
        if v < lo or (hi is not None and v > hi):
            bound = f">= {lo}" if hi is None else f"in {lo}..{hi}"
            raise argparse.ArgumentTypeError(f"must be {bound} ({what}), got {v}")
        return v
    return parse


def _sigma(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number (noise level, 0-255), got {text!r}") from None
    if not (math.isfinite(v) and 0 <= v <= 255):
        raise argparse.ArgumentTypeError(f"must be a noise level in 0..255, got {text}")
    return v


def _colour(text: str) -> str:
    try:
        data.parse_background(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"unknown colour {text!r}; use a name (white, black) or #rrggbb") from None
    return text


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (its default prints the whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see {self.prog} --help)\n")


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default=None, help="tiny | paper-denoise | paper-sr (default: tiny)")
    p.add_argument("--config", default=None, help="a YAML config file (instead of a preset)")
    p.add_argument("--task", choices=sorted(TASKS), default=None)
    p.add_argument("--scale", type=int, default=None, help="SR scale: 2, 3 or 4")
    p.add_argument("--sigma", type=_sigma, default=None, help="noise level (0-255) for training and evaluation")
    p.add_argument("--quality", type=int_in(1, 100, "JPEG quality"), default=None,
                   help="JPEG quality (1-100) for training and evaluation (task jpeg)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override a config value, e.g. --set search.epochs=3 (repeatable)")


def _threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int_in(1, MAX_THREADS, "CPU threads"), default=None,
                   help="CPU threads for torch (default: HINAS_THREADS, else the cores not busy now)")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cuda | cpu | cuda:1 (default: CUDA if available)")
    _threads_arg(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_config(args) -> Config:
    """The run's config: preset or ``--config`` file, then ``--sigma``/``--quality`` and every ``--set``.

    Raises:
        ConfigError: naming the ``--set`` item or the field at fault.
    """
    cfg = load_config(args.preset, args.config, task=args.task, scale=args.scale)
    for flag, value in _level_flags(args):
        cfg = with_level(cfg, value, flag=flag)
    changes = {}
    items = getattr(args, "set", [])
    for item in items:
        sec, fld, value = _parse_set(item)
        changes.setdefault(sec, {})[fld] = value
    if changes:
        unknown = set(changes) - {"task", "space", "search", "train", "data"}
        if unknown:
            raise ConfigError(f"--set: unknown section(s) {sorted(unknown)}")
        d = cfg.to_dict()
        for sec, vals in changes.items():
            bad = set(vals) - set(d[sec])
            if bad:
                raise ConfigError(f"{sec}: unknown field(s) {sorted(bad)}; known: {sorted(d[sec])}")
        try:
            cfg = cfg.replace(**changes)
        except ConfigError:
            raise  # already names the field
        except (TypeError, ValueError) as e:  # a check that did not expect this kind of value
            raise ConfigError(f"{_culprit(cfg, items)}: invalid value ({e})") from None
    return cfg


def _level_flags(args):
    """``(flag, value)`` of the level options given (``--sigma``, ``--quality``; ``--scale``
    picks a preset variant in ``load_config`` instead)."""
    return [(f, getattr(args, f[2:])) for f in ("--sigma", "--quality") if getattr(args, f[2:], None) is not None]


def _parse_set(item: str):
    """``SECTION.FIELD=VALUE`` -> (section, field, value parsed as YAML)."""
    if "=" not in item or "." not in item.split("=", 1)[0]:
        raise ConfigError(f"--set {item!r}: expected SECTION.FIELD=VALUE, e.g. search.epochs=3")
    key, val = item.split("=", 1)
    sec, fld = key.split(".", 1)
    try:
        value = yaml.safe_load(val)
    except yaml.YAMLError as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"--set {key}: {val!r} is not a valid value ({detail})") from None
    return sec.strip(), fld.strip(), value


def _culprit(cfg: Config, items: List[str]) -> str:
    """The ``--set`` item that breaks the config on its own (else all of them)."""
    for item in items:
        sec, fld, value = _parse_set(item)
        try:
            cfg.replace(**{sec: {fld: value}})
        except ConfigError:
            continue  # may be fine together with the other items
        except (TypeError, ValueError):
            return f"--set {item}"
    return "--set " + " --set ".join(items) if items else "config"


def cmd_describe(args) -> int:
    d = describe(build_config(args))
    print(json.dumps(d, indent=1) if args.json else format_description(d))
    return 0


def cmd_search(args) -> int:
    cfg = build_config(args)
    if args.resume:
        saved = Path(args.out) / CONFIG_FILE
        if args.preset is None and args.config is None and saved.exists():
            cfg = Config.from_yaml(saved)  # resume with the run's own config
    if args.amp is not None:
        cfg = cfg.replace(search={"amp": args.amp})
    s = Searcher(cfg, args.out, device=args.device, resume=args.resume, progress=not args.no_progress,
                 threads=args.threads, write_figures=viz.write_search_figures)
    res = s.run(stop_after=args.stop_after)
    if not s.main:
        return 0
    if s.step < s.total_steps:
        print(f"stopped at step {s.step}/{s.total_steps}; continue with --resume")
        return 0
    print(res.genotype)
    print(f"genotype written to {Path(args.out) / GENOTYPE_FILE} (best val epoch: {BEST_GENOTYPE_FILE})")
    return 0


def cmd_train(args) -> int:
    cfg = build_config(args)
    if args.resume and args.preset is None and args.config is None and (Path(args.out) / CONFIG_FILE).exists():
        cfg = Config.from_yaml(Path(args.out) / CONFIG_FILE)
    geno = Genotype.load(args.genotype)
    t = Trainer(cfg, geno, args.out, device=args.device, resume=args.resume, progress=not args.no_progress,
                val_size=args.val_size, threads=args.threads)
    res = t.run(stop_after=args.stop_after)
    if not t.main:
        return 0
    if t.step < t.total_steps:
        print(f"stopped at step {t.step}/{t.total_steps}; continue with --resume")
        return 0
    print(f"best validation PSNR {res.best_psnr:.2f} dB; model written to {res.model_path}")
    return 0


def cmd_eval(args) -> int:
    net, cfg, ckpt = load_model(args.model, args.device, task=args.task, scale=args.scale)
    net = inference_copy(net)  # BN folded, NHWC: the same output, faster
    level = None
    for flag, value in _level_flags(args):  # checks the flag fits the model's task
        level = get_task(with_level(cfg, value, flag=flag, source=f"model {args.model}")).level()
    if args.lq_data and not args.data:
        raise ValueError("--lq-data: pairs the clean images of --data; give --data too")
    if args.data:
        images = data.load_folder(args.data, channels=cfg.task.channels, background=args.background)
        _warn_if_trained_on(images, args.data, cfg)
    else:
        images = splits.image_split(cfg)[2]
    if args.limit:
        images = images[: args.limit]
    inputs = real_inputs(images, args.lq_data, get_task(cfg))  # None without --lq-data
    res = evaluate(net, cfg, images, level=level, tile=args.tile, with_baseline=not args.no_baseline,
                   progress=not args.no_progress, self_ensemble=args.self_ensemble, inputs=inputs)
    res["model"] = str(args.model)
    res["data"] = args.data or "embedded test split"
    if args.lq_data:
        res["lq_data"] = args.lq_data
    print(json.dumps(res, indent=1) if args.json else format_table(res))
    return 0


def _warn_if_trained_on(images, folder, cfg) -> None:
    """Say so when test images are training images (e.g. BSD68 after the authors' BSD500 split)."""
    train_dir = cfg.data.train_dir
    if not train_dir or not Path(train_dir).is_dir() or Path(train_dir).resolve() == Path(folder).resolve():
        return
    train = data.load_folder(train_dir, channels=cfg.task.channels)
    pairs = find_overlap(images, train)
    if pairs:
        print(overlap_warning(folder, pairs, len(images), train_dir), file=sys.stderr)


def cmd_restore(args) -> int:
    info = restore_file(args.model, args.input, args.output, device=args.device, tile=args.tile,
                        convert=args.convert, overwrite_input=args.overwrite_input,
                        self_ensemble=args.self_ensemble, background=args.background)
    print(f"{args.input} -> {args.output}  ({info['task']}, {info['input_shape']} -> {info['output_shape']})")
    return 0


def cmd_demo(args) -> int:
    print(f"{args.threads_why} (change with --threads N or HINAS_THREADS=N)")
    run_demo(build_config(args), Path(args.out), device=args.device, progress=not args.no_progress)
    return 0


def make_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m hinas_lib", description=__doc__,
                epilog="exit codes: " + "; ".join(f"{k} {v}" for k, v in EXIT_CODES.items()))
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    d = sub.add_parser("describe", help="print the search space of a preset")
    _config_args(d)
    _threads_arg(d)
    d.add_argument("--json", action="store_true")
    d.set_defaults(fn=cmd_describe)

    s = sub.add_parser("search", help="search an architecture (writes OUT/genotype.json)")
    _config_args(s)
    _run_args(s)
    s.add_argument("--out", required=True)
    s.add_argument("--resume", action="store_true", help="continue the search in --out")
    s.add_argument("--amp", choices=["none", "bf16"], default=None,
                   help="CUDA autocast (default: the config's search.amp; no fp16: the search has no loss scaler)")
    s.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)
    s.set_defaults(fn=cmd_search)

    t = sub.add_parser("train", help="train the network of a genotype from scratch (writes OUT/model.pt)")
    _config_args(t)
    _run_args(t)
    t.add_argument("--genotype", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--val-size", type=int_in(0, None, "pixels"), default=256,
                   help="centre crop of val images (0 = whole)")
    t.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("eval", help="PSNR/SSIM of a model, the degraded input and a classical baseline")
    _run_args(e)
    e.add_argument("--model", required=True)
    e.add_argument("--data", default=None, help="folder of test images (default: the embedded test split)")
    e.add_argument("--lq-data", default=None, metavar="DIR",
                   help="paired data: the real degraded inputs of --data's images, matched by file name "
                        "(default: degrade them with the task's own degradation)")
    e.add_argument("--task", choices=sorted(TASKS), default=None, help="check the model is for this task")
    e.add_argument("--scale", type=int, default=None, help="check the model's SR scale")
    e.add_argument("--sigma", type=_sigma, default=None, help="noise level (default: the model's)")
    e.add_argument("--quality", type=int_in(1, 100, "JPEG quality"), default=None,
                   help="JPEG quality (default: the model's)")
    e.add_argument("--tile", type=int_in(0, None, "tile size in pixels"), default=0,
                   help="tiled inference with this tile size (0 = whole)")
    e.add_argument("--limit", type=int_in(0, None, "number of images"), default=0,
                   help="only the first N images (0 = all)")
    e.add_argument("--self-ensemble", action="store_true",
                   help="average the model over the 8 flips/rotations (8x the time, usually a little more PSNR)")
    e.add_argument("--background", type=_colour, default=None, metavar="COLOR",
                   help="composite transparent images over this colour (white, black, #rrggbb); "
                        "without it they are refused")
    e.add_argument("--no-baseline", action="store_true")
    e.add_argument("--json", action="store_true")
    e.set_defaults(fn=cmd_eval)

    r = sub.add_parser("restore", help="denoise / upscale an image file")
    _run_args(r)
    r.add_argument("--model", required=True, help="a model.pt path or a zoo name (e.g. denoise-s30)")
    r.add_argument("input")
    r.add_argument("output")
    r.add_argument("--tile", type=int_in(0, None, "tile size in pixels"), default=512,
                   help="tile size for inference (0 = the whole image at once)")
    r.add_argument("--convert", action="store_true", help="convert grey<->RGB to what the model expects")
    r.add_argument("--self-ensemble", action="store_true",
                   help="average the model over the 8 flips/rotations (8x the time, usually a little more PSNR)")
    r.add_argument("--background", type=_colour, default=None, metavar="COLOR",
                   help="composite a transparent image over this colour (white, black, #rrggbb); "
                        "without it such an image is refused")
    r.add_argument("--overwrite-input", action="store_true",
                   help="allow OUTPUT to be INPUT itself (the original is replaced)")
    r.set_defaults(fn=cmd_restore)

    m = sub.add_parser("demo", help="the main job: search, derive, render, retrain, evaluate")
    _config_args(m)
    _run_args(m)
    m.add_argument("--out", default="runs/demo")
    m.set_defaults(fn=cmd_demo)
    return p


class Stopped(KeyboardInterrupt):
    """A termination signal (SIGTERM: ``kill PID``, or torchrun stopping the other ranks when
    one fails), raised in the main thread so that the run's ``finally`` blocks release its
    lock; the default action would end the process at once and leave the lock behind."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum


# what main() is doing when a termination signal arrives: "running" (raise Stopped), "reporting"
# (the error is being classified and printed: let it finish), "reported" (leave now)
_phase = {"state": "idle", "code": EXIT_INTERRUPTED}


def _on_terminate(signum, frame) -> None:
    if _phase["state"] == "running":
        _phase["state"] = "reporting"
        raise Stopped(signum)
    if _phase["state"] == "reported":
        _leave_now()
    _phase["pending"] = True  # reporting: leave once the message is out


def _leave_now() -> None:
    """Only leaving the process group is left after the error message, and it may wait for a
    peer that is gone: exit at once (the run locks are released by their atexit hooks)."""
    sys.stderr.flush()
    atexit._run_exitfuncs()
    os._exit(_phase["code"])


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command; return its exit code (``EXIT_CODES``) instead of raising."""
    try:
        args = make_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    ok = False
    try:
        previous = signal.signal(signal.SIGTERM, _on_terminate)
    except ValueError:  # not the main thread: signals cannot be handled here
        previous = None
    _phase["state"] = "running"
    try:
        args.threads, args.threads_why = _threads(args)
        set_threads(args.threads)
        code = args.fn(args)
        ok = code == 0
        return code
    except BaseException as e:  # noqa: B902 -- every failure becomes one line and an exit code
        _phase["state"] = "reporting"
        if os.environ.get("HINAS_DEBUG", "") not in ("", "0") or isinstance(e, SystemExit):
            raise
        code, message = classify(e, args)
        rank = os.environ.get("RANK", "0")
        print(f"error: {message}" if rank == "0" else f"error (rank {rank}): {message}", file=sys.stderr,
              flush=True)
        _phase.update(state="reported", code=code)
        if _phase.pop("pending", False):
            _leave_now()
        return code
    finally:
        # several processes: leave the process group (after the others on success, at once on
        # failure, so that torchrun or the peers' collectives see this rank go and stop the run)
        try:
            distributed.shutdown(ok)
        finally:
            _phase.update(state="idle", pending=False)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def _threads(args) -> "tuple[Optional[int], str]":
    """``--threads``, else ``HINAS_THREADS``, else the cores not busy now (one process);
    under torchrun None, so that each rank takes its share (distributed.threads_per_rank).
    Never torch's own default, one thread per core: on a machine where another job holds
    a core, those threads wait on each other and steps were 20-100x slower."""
    if getattr(args, "threads", None):
        return args.threads, f"{args.threads} torch thread(s) (--threads)"
    env = env_threads()
    if env is not None:
        return env, f"{env} torch thread(s) (HINAS_THREADS={env})"
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        return None, ""
    return auto_threads()


def classify(e: BaseException, args=None) -> "tuple[int, str]":
    """An exception -> (exit code, one-line message)."""
    peer = _peer_failure(e)
    if peer is not None or isinstance(e, Stopped):
        return EXIT_INTERRUPTED, _stopped_message(e, peer, args)
    if isinstance(e, KeyboardInterrupt):
        return EXIT_INTERRUPTED, _interrupted_message(args)
    if isinstance(e, (TrainingError, NonFiniteOutputError)):
        return EXIT_NUMERIC, _one_line(e)
    if (isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError"
            or (isinstance(e, RuntimeError) and "can't allocate memory" in str(e))):  # torch's CPU allocator
        return EXIT_MEMORY, ("out of memory; use a smaller batch_size/crop, or --tile for eval/restore "
                             f"({_one_line(e) or type(e).__name__})")
    if isinstance(e, FileNotFoundError):  # a missing input: the user named the wrong file
        return EXIT_USAGE, _os_message(e) if e.errno is not None else _one_line(e)
    if isinstance(e, OSError):
        return EXIT_FILES, _os_message(e)
    if isinstance(e, (ConfigError, GenotypeError, CheckpointError, ValueError)):
        return EXIT_USAGE, _one_line(e)
    # anything else (TypeError included: the CLI passes the right types) is a missing check, i.e. a bug
    return EXIT_INTERNAL, (f"internal error: {type(e).__name__}: {_one_line(e)} "
                           "(rerun with HINAS_DEBUG=1 for the traceback, and please report it)")


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def _os_message(e: OSError) -> str:
    """``PATH: what went wrong``; a full disk says so plainly."""
    what = e.strerror or _one_line(e) or type(e).__name__
    if e.errno == errno.ENOSPC:
        what = "no space left on device (disk full); nothing was replaced"
    elif e.errno == errno.EROFS:
        what = "read-only file system"
    where = e.filename if e.filename is not None else None
    if e.filename2 is not None:
        where = f"{e.filename} -> {e.filename2}"
    return f"{where}: {what}" if where is not None else what


# what gloo / NCCL / the TCP store say when another rank's process is gone
_PEER_GONE = ("connection reset by peer", "connection closed by peer", "broken pipe", "remote process exited",
              "socket closed")


def _peer_failure(e: BaseException) -> Optional[str]:
    """Who stopped, when ``e`` (or what it interrupted) is a collective failing because another
    rank's process is gone: "rank N of M" (the other rank of two) or "another of the M ranks"."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return None
    seen, x = set(), e
    while x is not None and id(x) not in seen:
        seen.add(id(x))
        if isinstance(x, RuntimeError) and any(m in str(x).lower() for m in _PEER_GONE):
            rank = int(os.environ.get("RANK", "0") or 0)
            return f"rank {1 - rank} of 2" if world == 2 else f"another of the {world} ranks"
        x = x.__cause__ or x.__context__
    return None


def _stopped_message(e: BaseException, peer: Optional[str], args) -> str:
    """A multi-process run that lost a rank, or a run stopped by a signal: who, and what is left."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if peer is not None:
        what = (f"{peer} stopped (its connection closed: killed, crashed or out of memory; "
                "torchrun's report names its exit signal)")
    else:
        name = signal.Signals(e.signum).name if e.signum in signal.Signals.__members__.values() else "?"
        what = f"stopped by signal {e.signum} ({name})"
        if world > 1:
            what += ": torchrun stops every rank when one of them fails"
    cmd = getattr(args, "cmd", None)
    if cmd not in ("search", "train") or getattr(args, "out", None) is None:
        return what
    state = Path(args.out) / state_file(cmd)
    if not state.is_file():
        return f"{what}; there is no checkpoint in {args.out} yet: nothing to resume (start again)"
    try:
        step = f"step {int(load_checkpoint(state)['step'])}, "
    except Exception:  # noqa: BLE001 -- the message must not fail; the step is a detail
        step = ""
    return f"{what}; the last checkpoint ({step}{state}) is intact; resume with --resume"


def _interrupted_message(args) -> str:
    """Ctrl-C: for search/train, whether there is a checkpoint to resume from (and only then say so)."""
    cmd = getattr(args, "cmd", None)
    if cmd == "demo" and getattr(args, "out", None) is not None:
        # the demo resumes by itself: the newest of its two checkpoints is where it goes on from
        for state in (Path(args.out) / "train" / "train_checkpoint.pt", Path(args.out) / "search" / "checkpoint.pt"):
            if state.is_file():
                return f"interrupted; rerun the same command to resume from {state} (or delete {args.out} to start over)"
        return f"interrupted before the first checkpoint; rerunning starts again in {args.out}"
    if cmd not in ("search", "train") or getattr(args, "out", None) is None:
        return "interrupted"
    state = Path(args.out) / state_file(cmd)
    if state.is_file():
        return f"interrupted; resume with --resume (the last checkpoint, {state}, is intact)"
    return f"interrupted before the first checkpoint; nothing to resume in {args.out} (start again)"


if __name__ == "__main__":
    sys.exit(main())
