"""Command line: ``python -m hinas_lib {describe,search,train,eval,restore,demo}``.

``search`` and ``train`` also run as several processes under ``torchrun``
(``torchrun --nproc_per_node=N -m hinas_lib search ...``); rank 0 prints.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

import yaml

from . import data, distributed
from .checkpoint import CheckpointError
from .config import Config, ConfigError, load_config
from .demo import run_demo
from .describe import describe, format_description
from .evaluate import evaluate, format_table, restore_file
from .genotype import Genotype, GenotypeError
from .network import load_model
from .runtime import TrainingError, set_threads
from .search import Searcher
from .tasks import TASKS
from .train import Trainer


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default=None, help="tiny | paper-denoise | paper-sr (default: tiny)")
    p.add_argument("--config", default=None, help="a YAML config file (instead of a preset)")
    p.add_argument("--task", choices=sorted(TASKS), default=None)
    p.add_argument("--scale", type=int, default=None, help="SR scale: 2, 3 or 4")
    p.add_argument("--sigma", type=float, default=None, help="noise level (0-255) for training and evaluation")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="override a config value, e.g. --set search.epochs=3 (repeatable)")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cuda | cpu | cuda:1 (default: CUDA if available)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_config(args) -> Config:
    cfg = load_config(args.preset, args.config, task=args.task, scale=args.scale)
    changes = {}
    if getattr(args, "sigma", None) is not None:
        changes.setdefault("task", {}).update({"sigmas": [args.sigma], "eval_sigma": args.sigma})
    for item in getattr(args, "set", []):
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ConfigError(f"--set {item!r}: expected SECTION.FIELD=VALUE, e.g. search.epochs=3")
        key, val = item.split("=", 1)
        sec, fld = key.split(".", 1)
        changes.setdefault(sec, {})[fld] = yaml.safe_load(val)
    if changes:
        unknown = set(changes) - {"task", "space", "search", "train", "data"}
        if unknown:
            raise ConfigError(f"--set: unknown section(s) {sorted(unknown)}")
        d = cfg.to_dict()
        for sec, vals in changes.items():
            bad = set(vals) - set(d[sec])
            if bad:
                raise ConfigError(f"{sec}: unknown field(s) {sorted(bad)}; known: {sorted(d[sec])}")
        cfg = cfg.replace(**changes)
    return cfg


def cmd_describe(args) -> int:
    d = describe(build_config(args))
    print(json.dumps(d, indent=1) if args.json else format_description(d))
    return 0


def cmd_search(args) -> int:
    cfg = build_config(args)
    if args.resume:
        saved = Path(args.out) / "config.yaml"
        if args.preset is None and args.config is None and saved.exists():
            cfg = Config.from_yaml(saved)  # resume with the run's own config
    if args.amp is not None:
        cfg = cfg.replace(search={"amp": args.amp})
    s = Searcher(cfg, args.out, device=args.device, resume=args.resume, progress=not args.no_progress)
    res = s.run(stop_after=args.stop_after)
    if not s.main:
        return 0
    if s.step < s.total_steps:
        print(f"stopped at step {s.step}/{s.total_steps}; continue with --resume")
        return 0
    print(res.genotype)
    print(f"genotype written to {Path(args.out) / 'genotype.json'} (best val epoch: genotype_best.json)")
    return 0


def cmd_train(args) -> int:
    cfg = build_config(args)
    if args.resume and args.preset is None and args.config is None and (Path(args.out) / "config.yaml").exists():
        cfg = Config.from_yaml(Path(args.out) / "config.yaml")
    geno = Genotype.load(args.genotype)
    t = Trainer(cfg, geno, args.out, device=args.device, resume=args.resume, progress=not args.no_progress,
                val_size=args.val_size)
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
    if args.data:
        images = data.load_folder(args.data, channels=cfg.task.channels)
    else:
        images = data.image_split(cfg)[2]
    if args.limit:
        images = images[: args.limit]
    res = evaluate(net, cfg, images, level=args.sigma, tile=args.tile, with_baseline=not args.no_baseline,
                   progress=not args.no_progress)
    res["model"] = str(args.model)
    res["data"] = args.data or "embedded test split"
    print(json.dumps(res, indent=1) if args.json else format_table(res))
    return 0


def cmd_restore(args) -> int:
    info = restore_file(args.model, args.input, args.output, device=args.device, tile=args.tile,
                        convert=args.convert)
    print(f"{args.input} -> {args.output}  ({info['task']}, {info['input_shape']} -> {info['output_shape']})")
    return 0


def cmd_demo(args) -> int:
    run_demo(build_config(args), Path(args.out), device=args.device, progress=not args.no_progress)
    return 0


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hinas_lib", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("describe", help="print the search space of a preset")
    _config_args(d)
    d.add_argument("--json", action="store_true")
    d.set_defaults(fn=cmd_describe)

    s = sub.add_parser("search", help="search an architecture (writes OUT/genotype.json)")
    _config_args(s)
    _run_args(s)
    s.add_argument("--out", required=True)
    s.add_argument("--resume", action="store_true", help="continue the search in --out")
    s.add_argument("--amp", choices=["none", "bf16", "fp16"], default=None,
                   help="CUDA autocast (default: the config's search.amp)")
    s.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)
    s.set_defaults(fn=cmd_search)

    t = sub.add_parser("train", help="train the network of a genotype from scratch (writes OUT/model.pt)")
    _config_args(t)
    _run_args(t)
    t.add_argument("--genotype", required=True)
    t.add_argument("--out", required=True)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--val-size", type=int, default=256, help="centre crop of val images (0 = whole)")
    t.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("eval", help="PSNR/SSIM of a model, the degraded input and a classical baseline")
    _run_args(e)
    e.add_argument("--model", required=True)
    e.add_argument("--data", default=None, help="folder of test images (default: the embedded test split)")
    e.add_argument("--task", choices=sorted(TASKS), default=None, help="check the model is for this task")
    e.add_argument("--scale", type=int, default=None, help="check the model's SR scale")
    e.add_argument("--sigma", type=float, default=None, help="noise level (default: the model's)")
    e.add_argument("--tile", type=int, default=0, help="tiled inference with this tile size (0 = whole)")
    e.add_argument("--limit", type=int, default=0, help="only the first N images")
    e.add_argument("--no-baseline", action="store_true")
    e.add_argument("--json", action="store_true")
    e.set_defaults(fn=cmd_eval)

    r = sub.add_parser("restore", help="denoise / upscale an image file")
    _run_args(r)
    r.add_argument("--model", required=True, help="a model.pt path or a zoo name (e.g. denoise-s30)")
    r.add_argument("input")
    r.add_argument("output")
    r.add_argument("--tile", type=int, default=512)
    r.add_argument("--convert", action="store_true", help="convert grey<->RGB to what the model expects")
    r.set_defaults(fn=cmd_restore)

    m = sub.add_parser("demo", help="the main job: search, derive, render, retrain, evaluate")
    _config_args(m)
    _run_args(m)
    m.add_argument("--out", default="runs/demo")
    m.set_defaults(fn=cmd_demo)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = make_parser().parse_args(argv)
    set_threads(getattr(args, "threads", None))
    ok = False
    try:
        code = args.fn(args)
        ok = code == 0
        return code
    except (ConfigError, GenotypeError, CheckpointError, TrainingError, ValueError, FileNotFoundError) as e:
        if os.environ.get("HINAS_DEBUG"):
            raise
        rank = os.environ.get("RANK", "0")
        print(f"error: {e}" if rank == "0" else f"error (rank {rank}): {e}", file=sys.stderr)
        return 2
    finally:
        # several processes: leave the process group (after the others on success, at once on
        # failure, so that torchrun or the peers' collectives see this rank go and stop the run)
        distributed.shutdown(ok)


if __name__ == "__main__":
    sys.exit(main())
