"""The model zoo: trained models shipped in ``zoo/<name>/`` and how they are made.

Each entry is a folder ``zoo/<name>/`` holding

* ``model.pt``      - a self-describing checkpoint (config + genotype + weights,
                      ``torch.load(weights_only=True)``), as :mod:`hinas_lib.train` writes it;
* ``genotype.json`` - the searched architecture, the same one ``model.pt`` stores;
* ``genotype.svg``  - the cells and width path as a picture (``genotype.gv`` without ``dot``);
* ``info.json``     - how it was made (data, settings, seed, time, machine) and its test scores.

``python -m hinas_lib restore --model denoise-s30 IN OUT`` finds an entry by name.
The scripts ``zoo/make_denoise.py`` and ``zoo/make_sr.py`` reproduce the entries;
``python -m hinas_lib.zoo`` rewrites ``zoo/RESULTS.md`` from the entries' ``info.json``;
with ``--time`` it first measures every entry's CPU speed again, side by side.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch

from .checks import PATH_TYPES, expect
from .runtime import cpu_model

ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"

# Published reference figures quoted in ../shared/README.md (the DnCNN authors' README),
# on BSD68 (grey) for denoising and Set5 for bicubic SR. Not measured here.
PUBLISHED = {
    "denoise": {"set": "BSD68", "BM3D": {15: 31.07, 25: 28.57, 50: 25.62},
                "DnCNN-S": {15: 31.73, 25: 29.23, 50: 26.23}},
    "sr": {"set": "Set5", "bicubic": {2: 33.66, 3: 30.39, 4: 28.42}},
}


def available(zoo_dir: Path = ZOO_DIR) -> Dict[str, Path]:
    """name -> checkpoint path, for every ``zoo/<name>/model.pt``."""
    zoo_dir = Path(zoo_dir)
    if not zoo_dir.is_dir():
        return {}
    return {p.parent.name: p for p in sorted(zoo_dir.glob("*/model.pt"))}


def resolve_model(name_or_path: str | Path) -> Path:
    """A model file from a ``model.pt`` path, a folder holding one, or a zoo name.

    Raises:
        TypeError: when ``name_or_path`` is not a string or path (``load_model(123)``).
        FileNotFoundError: naming it, when it is none of the three.
    """
    expect(name_or_path, PATH_TYPES, "path", "give a model.pt path, a run folder or a zoo name")
    p = Path(name_or_path)
    if p.is_file():
        return p
    if p.is_dir() and (p / "model.pt").is_file():
        return p / "model.pt"
    zoo = available()
    if str(name_or_path) in zoo:
        return zoo[str(name_or_path)]
    names = ", ".join(zoo) or "none installed"
    raise FileNotFoundError(f"model {str(name_or_path)!r} is neither a file nor a zoo name (zoo: {names})")


def entry_info(name: str, zoo_dir: Path = ZOO_DIR) -> Dict:
    path = Path(zoo_dir) / name / "info.json"
    if not path.is_file():
        raise FileNotFoundError(f"zoo entry {name!r} has no info.json at {path}")
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------
# Measuring a model
# ---------------------------------------------------------------------------

def ms_per_megapixel(models: Dict[str, object], *, size: int = 256, repeats: int = 5) -> Dict[str, float]:
    """CPU milliseconds per output megapixel of one eval forward on a ``size`` x ``size``
    output, for each ``name -> (net, cfg)``: median of ``repeats`` after one warm-up, the
    models taking turns forward by forward, so that load on the machine hits all alike."""
    runs = {}
    for name, (net, cfg) in models.items():
        s = cfg.task.scale if cfg.task.task == "sr" else 1
        runs[name] = (net.cpu().eval(), torch.rand(1, cfg.task.channels, size // s, size // s), s)
    times: Dict[str, List[float]] = {n: [] for n in runs}
    with torch.no_grad():
        for i in range(repeats + 1):  # the first round warms up
            for name, (net, x, _) in runs.items():
                t = time.perf_counter()
                net(x)
                if i:
                    times[name].append(time.perf_counter() - t)
    out = {}
    for name, (_, x, s) in runs.items():
        mpix = (x.shape[-1] * s) * (x.shape[-2] * s) / 1e6
        out[name] = float(sorted(times[name])[len(times[name]) // 2] * 1000 / mpix)
    return out


def machine() -> str:
    return f"{cpu_model()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


# ---------------------------------------------------------------------------
# Writing an entry
# ---------------------------------------------------------------------------

def write_entry(name: str, model_path: Path, info: Dict, zoo_dir: Path = ZOO_DIR) -> Path:
    """Copy a trained ``model.pt`` into ``zoo/<name>/`` with its genotype, picture and info."""
    from . import viz
    from .checkpoint import atomic_write_text
    from .genotype import Genotype
    from .train import load_model

    entry = Path(zoo_dir) / name
    entry.mkdir(parents=True, exist_ok=True)
    _, _, ckpt = load_model(model_path, "cpu")  # refuses a broken file before anything is replaced
    tmp = entry / "model.pt.tmp"
    shutil.copyfile(model_path, tmp)
    os.replace(tmp, entry / "model.pt")
    geno = Genotype.from_dict(ckpt["genotype"])
    geno.save(entry / "genotype.json")
    viz.render(viz.genotype_graph(geno), entry / "genotype", fmt="svg")
    atomic_write_text(entry / "info.json", json.dumps(info, indent=1))
    return entry


def build_entry(name: str, cfg, genotype, *, work_dir: Path, test_sets: Dict[str, str | Path],
                recipe: Dict, zoo_dir: Path = ZOO_DIR, device: Optional[str] = None,
                bm3d: bool = False, progress: bool = True) -> Dict:
    """Retrain ``genotype`` under ``cfg`` (resuming ``work_dir/name`` if it exists),
    evaluate it on each test folder at the model's own noise level / scale and
    write the zoo entry. ``recipe`` (how the genotype was found, the command) goes
    into ``info.json`` as is."""
    from . import data
    from .evaluate import evaluate, format_table
    from .train import Trainer, load_model

    run = Path(work_dir) / name
    tr = Trainer(cfg, genotype, run, device=device, progress=progress,
                 resume=(run / "train_checkpoint.pt").exists())
    res = tr.run()
    train_s = run_seconds(run)
    net, cfg, ckpt = load_model(res.model_path, device)
    t = cfg.task
    results = {}
    for set_name, folder in test_sets.items():
        images = data.load_folder(folder, channels=t.channels)
        ev = evaluate(net, cfg, images, progress=progress, bm3d=bm3d and t.task == "denoise")
        print(f"\n{name} on {set_name}:\n{format_table(ev)}")
        results[set_name] = {"mean": ev["mean"], "images": ev["images"], "metric": ev["metric"],
                             "sigma": ev["sigma"], "scale": ev["scale"]}
    info = {
        "name": name, "task": t.task, "channels": t.channels,
        "sigma": t.eval_sigma if t.task == "denoise" else None,
        "scale": t.scale if t.task == "sr" else None,
        "params": sum(p.numel() for p in net.parameters()),
        "ms_per_mpix_cpu": ms_per_megapixel({name: (net, cfg)})[name],
        "train_seconds": round(train_s),
        "train_steps": cfg.train.epochs * cfg.train.steps_per_epoch,
        "best_val_psnr": res.best_psnr,
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "recipe": recipe,
        "results": results,
    }
    write_entry(name, res.model_path, info, zoo_dir)
    return info


def run_seconds(run: Path) -> float:
    """Time a search or training run took over all its resumes, from its ``log.jsonl``:
    each process's ``elapsed_s`` restarts at 0, so sum the last value of each stretch."""
    log = run / "log.jsonl"
    if not log.is_file():
        return 0.0
    total, last = 0.0, 0.0
    for line in log.read_text().splitlines():
        if not line.strip():
            continue
        e = float(json.loads(line).get("elapsed_s", 0.0))
        if e < last:  # a resumed process
            total += last
        last = e
    return total + last


def describe_search(cfg) -> str:
    s, sp, t = cfg.search, cfg.space, cfg.task
    level = f"sigma {', '.join(f'{x:g}' for x in t.sigmas)}" if t.task == "denoise" else f"x{t.scale}"
    return (f"{sp.layers} layers x {sp.blocks} blocks, F={sp.filters}, {s.epochs} epochs x {s.steps_per_epoch} steps "
            f"({s.warmup_epochs} warm-up), batch {s.batch_size}, crop {s.crop}, {level}, seed {s.seed}")


def describe_train(cfg) -> str:
    t = cfg.train
    return (f"F={t.filters}, {t.epochs} epochs x {t.steps_per_epoch} steps, batch {t.batch_size}, crop {t.crop}, "
            f"lr {t.lr:g} cosine to {t.lr_min:g}, seed {t.seed}")


def run_family(search_cfg, train_cfgs: Dict[str, object], *, work_dir: Path, test_sets: Dict[str, str | Path],
               data_note: str, command: str, zoo_dir: Path = ZOO_DIR, device: Optional[str] = None,
               bm3d: bool = False, progress: bool = True) -> List[Dict]:
    """Search once with ``search_cfg``, then retrain and write one entry per
    ``name -> config`` of ``train_cfgs``. Every stage resumes from ``work_dir``."""
    from .search import Searcher

    work_dir = Path(work_dir)
    run = work_dir / f"search-{search_cfg.task.task}"
    searcher = Searcher(search_cfg, run, device=device, progress=progress,
                        resume=(run / "checkpoint.pt").exists())
    geno = searcher.run().genotype
    search_s = run_seconds(run)
    print(f"searched genotype ({search_s / 60:.1f} min):\n{geno}")
    infos = []
    for name, cfg in train_cfgs.items():
        recipe = {"data": data_note, "search": describe_search(search_cfg), "train": describe_train(cfg),
                  "search_seconds": round(search_s), "command": command}
        infos.append(build_entry(name, cfg, geno, work_dir=work_dir, test_sets=test_sets, recipe=recipe,
                                 zoo_dir=zoo_dir, device=device, bm3d=bm3d, progress=progress))
    return infos


def family_main(argv, *, description: str, configs, level: str, level_type, levels: Sequence, needs: Sequence[str],
                test_sets: Dict[str, str], data_note: str, script: str, bm3d: bool = False) -> int:
    """The command line shared by ``zoo/make_*.py``: ``configs(shared, levels)`` gives the
    search config and ``{name: retrain config}``; ``test_sets`` and ``needs`` are paths
    below ``--shared``."""
    import argparse
    import sys

    from .runtime import set_threads

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--shared", default="../shared", help="the folder holding data/ (" + ", ".join(needs) + ")")
    ap.add_argument(f"--{level}", type=level_type, nargs="+", default=list(levels))
    ap.add_argument("--work", default="runs/zoo", help="search/retraining runs (resumable)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default=None)
    if bm3d:
        ap.add_argument("--no-bm3d", action="store_true", help="skip the BM3D column (slow; needs pip install bm3d)")
    args = ap.parse_args(argv)
    missing = [n for n in needs if not (Path(args.shared) / n).is_dir()]
    if missing:
        print(f"error: {', '.join(missing)} not found under {args.shared} (pass --shared)", file=sys.stderr)
        return 2
    set_threads(args.threads)
    search, trains = configs(args.shared, getattr(args, level))
    command = f"python {script} " + " ".join(sys.argv[1:] if argv is None else argv)
    run_family(search, trains, work_dir=Path(args.work), data_note=data_note, command=command.strip(),
               test_sets={k: f"{args.shared}/{v}" for k, v in test_sets.items()}, device=args.device,
               bm3d=bm3d and not args.no_bm3d)
    print(write_results(header=_header()))
    return 0


def _header() -> str:
    h = ZOO_DIR / "HEADER.md"
    return h.read_text() if h.is_file() else ""


# ---------------------------------------------------------------------------
# The results page
# ---------------------------------------------------------------------------

def _fmt(m: Dict, key: str) -> str:
    return f"{m[key + '_psnr']:.2f} / {m[key + '_ssim']:.4f}" if key + "_psnr" in m else "-"


# task -> (section title, level column, level format, score columns (key, heading))
_SECTIONS = {
    "denoise": ("Grey denoising (PSNR dB / SSIM, whole image)", "sigma", "{:g}",
                [("input", "noisy"), ("baseline", "NLM (skimage)"), ("bm3d", "BM3D")]),
    "sr": ("Super-resolution (PSNR dB / SSIM on Y, shave = scale)", "scale", "x{}", [("input", "bicubic")]),
}


def _published_line(task: str) -> str:
    p = PUBLISHED[task]
    if task == "denoise":
        return (f"Published, on {p['set']} (quoted, not measured here): " +
                "; ".join(f"sigma {s}: BM3D {p['BM3D'][s]:.2f}, DnCNN-S {p['DnCNN-S'][s]:.2f}" for s in p["BM3D"]))
    return f"Published bicubic on {p['set']}: " + ", ".join(f"x{k} {v:.2f}" for k, v in p["bicubic"].items()) + " dB."


def results_table(zoo_dir: Path = ZOO_DIR) -> str:
    """Markdown tables of every entry's test scores (from ``info.json``)."""
    infos = [entry_info(n, zoo_dir) for n in available(zoo_dir)]
    lines: List[str] = []
    for task, (title, level, fmt, cols) in _SECTIONS.items():
        mine = sorted((i for i in infos if i["task"] == task), key=lambda i: i[level])
        if not mine:
            continue
        heads = ["model", "test set", level] + [h for _, h in cols] + ["HiNAS (ours)", "params", "ms/MPix CPU"]
        lines += [f"## {title}", "", "| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        for i in mine:
            for set_name, r in i["results"].items():
                cells = [f"`{i['name']}`", set_name, fmt.format(i[level])] + [_fmt(r["mean"], k) for k, _ in cols]
                cells += [f"**{_fmt(r['mean'], 'ours')}**", f"{i['params']:,}", f"{i['ms_per_mpix_cpu']:.0f}"]
                lines.append("| " + " | ".join(cells) + " |")
        lines += ["", _published_line(task), ""]
    if infos:
        lines += ["## How each entry was made", "",
                  "| model | training data | search | retraining | search + train time | machine |",
                  "|---|---|---|---|---|---|"]
        for i in infos:
            r = i["recipe"]
            lines.append(f"| `{i['name']}` | {r.get('data', '?')} | {r.get('search', '?')} | {r.get('train', '?')} | "
                         f"{r.get('search_seconds', 0) / 60:.0f} + {i['train_seconds'] / 60:.0f} min | {i['machine']} |")
    return "\n".join(lines) + "\n"


def write_results(zoo_dir: Path = ZOO_DIR, header: str = "") -> Path:
    from .checkpoint import atomic_write_text
    path = Path(zoo_dir) / "RESULTS.md"
    atomic_write_text(path, header + results_table(zoo_dir))
    return path


def retime(zoo_dir: Path = ZOO_DIR, *, threads: int = 1, size: int = 256, repeats: int = 5) -> Dict[str, float]:
    """Measure every entry's CPU ms per output megapixel again, side by side
    (:func:`ms_per_megapixel`), and store the figures in their ``info.json``."""
    from .checkpoint import atomic_write_text
    from .train import load_model

    torch.set_num_threads(threads)
    models = {}
    for name in available(zoo_dir):
        net, cfg, _ = load_model(Path(zoo_dir) / name, "cpu")
        models[name] = (net, cfg)
    out = ms_per_megapixel(models, size=size, repeats=repeats)
    for name, ms in out.items():
        info = entry_info(name, zoo_dir)
        info["ms_per_mpix_cpu"] = ms
        info["ms_per_mpix_note"] = f"{threads} thread(s), {size}x{size} output, median of {repeats}, all entries interleaved"
        atomic_write_text(Path(zoo_dir) / name / "info.json", json.dumps(info, indent=1))
    return out


if __name__ == "__main__":
    import sys
    if "--time" in sys.argv[1:]:
        for n, v in retime().items():
            print(f"{n:14s} {v:8.0f} ms/MPix")
    print(write_results(header=_header()))
