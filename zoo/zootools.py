"""Making the model zoo's entries: retrain, evaluate, write ``zoo/<name>/`` and
the results page. Used by ``zoo/make_sr.py`` and ``zoo/grow_denoise.py``; ``python zoo/zootools.py [--time]``
rewrites ``zoo/RESULTS.md`` from the entries' ``info.json`` (``--time`` first
measures every entry's CPU speed again, side by side).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from hinas_lib import data, viz  # noqa: E402
from hinas_lib.checkpoint import atomic_save, atomic_write_text  # noqa: E402
from hinas_lib.config import Config  # noqa: E402
from hinas_lib.evaluate import evaluate, format_table  # noqa: E402
from hinas_lib.genotype import Genotype  # noqa: E402
from hinas_lib.model_files import load_model  # noqa: E402
from hinas_lib.runfiles import GENOTYPE_FILE, LOG_FILE, MODEL_FILE  # noqa: E402
from hinas_lib.runtime import cpu_model, set_threads  # noqa: E402
from hinas_lib.search import Searcher  # noqa: E402
from hinas_lib.tasks import TASKS, get_task  # noqa: E402
from hinas_lib.train import Trainer  # noqa: E402
from hinas_lib.zoo import ZOO_DIR, available, entry_info  # noqa: E402

# ---------------------------------------------------------------------------
# Measuring a model
# ---------------------------------------------------------------------------

def ms_per_megapixel(models: Dict[str, object], *, size: int = 256, repeats: int = 5) -> Dict[str, float]:
    """CPU milliseconds per output megapixel of one eval forward on a ``size`` x ``size``
    output, for each ``name -> (net, cfg)``: median of ``repeats`` after one warm-up, the
    models taking turns forward by forward, so that load on the machine hits all alike."""
    runs = {}
    for name, (net, cfg) in models.items():
        s = get_task(cfg).scale
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

def portable(ckpt: Dict) -> Dict:
    """A model checkpoint without the folders of the machine that trained it: its
    ``data`` section back to the defaults (``eval`` without ``--data`` then uses the
    embedded test photographs, not a folder the user never named)."""
    ckpt = dict(ckpt)
    cfg = dict(ckpt["config"])
    cfg["data"] = Config().to_dict()["data"]
    ckpt["config"] = cfg
    return ckpt


def write_entry(name: str, model_path: Path, info: Dict, zoo_dir: Path = ZOO_DIR) -> Path:
    """Copy a trained ``model.pt`` into ``zoo/<name>/`` (without machine paths) with its
    genotype, picture and info."""

    entry = Path(zoo_dir) / name
    entry.mkdir(parents=True, exist_ok=True)
    _, _, ckpt = load_model(model_path, "cpu")  # refuses a broken file before anything is replaced
    atomic_save(portable(ckpt), entry / MODEL_FILE)
    geno = Genotype.from_dict(ckpt["genotype"])
    geno.save(entry / GENOTYPE_FILE)
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

    run = Path(work_dir) / name
    tr = Trainer(cfg, genotype, run, device=device, progress=progress, resume="auto")
    res = tr.run()
    train_s = run_seconds(run)
    net, cfg, ckpt = load_model(res.model_path, device)
    t, task = cfg.task, get_task(cfg)
    results = {}
    for set_name, folder in test_sets.items():
        images = data.load_folder(folder, channels=t.channels)
        ev = evaluate(net, cfg, images, progress=progress, bm3d=bm3d)
        print(f"\n{name} on {set_name}:\n{format_table(ev)}")
        results[set_name] = {"mean": ev["mean"], "images": ev["images"], "metric": ev["metric"],
                             ev["level_name"]: ev[ev["level_name"]]}
    info = {
        "name": name, "task": t.task, "channels": t.channels,
        task.level_name: task.level(),
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
    log = run / LOG_FILE
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
    task = get_task(cfg)
    level = (f"sigma {', '.join(f'{x:g}' for x in t.sigmas)}" if task.level_name == "sigma"
             else task.describe_level())
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

    work_dir = Path(work_dir)
    run = work_dir / f"search-{search_cfg.task.task}"
    searcher = Searcher(search_cfg, run, device=device, progress=progress, resume="auto",
                        write_figures=viz.write_search_figures)
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
    """The command line shared by ``zoo/make_sr.py``: ``configs(shared, levels)`` gives the
    search config and ``{name: retrain config}``; ``test_sets`` and ``needs`` are paths
    below ``--shared``."""


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


def _level(info: Dict, r: Dict, task_cls) -> str:
    v = r.get(task_cls.level_name, info.get(task_cls.level_name))
    return "-" if v is None else task_cls.format_level(v)


def _cpu_hours(info: Dict) -> str:
    h = info.get("cpu_hours")
    if h:
        return f"{h['total']:.1f}"
    return f"{(info.get('recipe', {}).get('search_seconds', 0) + info.get('train_seconds', 0)) / 3600:.1f}"


def results_table(zoo_dir: Path = ZOO_DIR) -> str:
    """Markdown tables of every entry's test scores (from ``info.json``)."""
    infos = [entry_info(n, zoo_dir) for n in available(zoo_dir)]
    lines: List[str] = []
    for task, cls in TASKS.items():  # each task's section, as the task describes it
        level, cols, ours = cls.level_name, cls.report_columns, cls.report_ours
        mine = sorted((i for i in infos if i["task"] == task), key=lambda i: (i.get(level) is None, i.get(level) or 0))
        if not mine:
            continue
        heads = (["model", "test set", level] + [h for _, h in cols] + [h for _, h in ours] +
                 ["params", "ms/MPix CPU", "CPU-hours"])
        lines += [f"## {cls.report_title}", "", "| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        for i in mine:
            for set_name, r in i["results"].items():
                cells = [f"`{i['name']}`", set_name.split(" sigma")[0], _level(i, r, cls)]
                cells += [_fmt(r["mean"], k) for k, _ in cols]
                cells += [f"**{_fmt(r['mean'], k)}**" if k + "_psnr" in r["mean"] else "-" for k, _ in ours]
                cells += [f"{i['params']:,}", f"{i['ms_per_mpix_cpu']:.0f}", _cpu_hours(i)]
                lines.append("| " + " | ".join(cells) + " |")
        lines += ["", cls.published_note, ""]
    if infos:
        lines += ["## How each entry was made", "",
                  "| model | training data | search | retraining | machine |", "|---|---|---|---|---|"]
        for i in infos:
            r = i["recipe"]
            lines.append(f"| `{i['name']}` | {r.get('data', '?')} | {r.get('search', '?')} | {r.get('train', '?')} | "
                         f"{i['machine']} |")
    return "\n".join(lines) + "\n"


def write_results(zoo_dir: Path = ZOO_DIR, header: str = "") -> Path:
    path = Path(zoo_dir) / "RESULTS.md"
    atomic_write_text(path, header + results_table(zoo_dir))
    return path


def retime(zoo_dir: Path = ZOO_DIR, *, threads: int = 1, size: int = 256, repeats: int = 5) -> Dict[str, float]:
    """Measure every entry's CPU ms per output megapixel again, side by side
    (:func:`ms_per_megapixel`), and store the figures in their ``info.json``."""

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
    if "--time" in sys.argv[1:]:
        for n, v in retime().items():
            print(f"{n:14s} {v:8.0f} ms/MPix")
    print(write_results(header=_header()))
