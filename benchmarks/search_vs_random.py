"""Does the search find anything? Searched cells against cells drawn at random, at equal budget.

    python -m benchmarks.search_vs_random status           # what is done, what is queued
    python -m benchmarks.search_vs_random run --hours 1     # work through the queue (resumes; one thread)
    python -m benchmarks.search_vs_random run --only train:random-03:0 search:auxskip-s1   # just these
    python -m benchmarks.search_vs_random supernet          # inherited-weight PSNR of every genotype
    python -m benchmarks.search_vs_random report            # results JSON, page and plots

The study (issue 21; the method after Li & Talwalkar 2019 and Yu et al. 2020):

* **Genotypes.** ``N_RANDOM`` drawn uniformly from the compact design's space (3 layers x 4
  blocks, LWAS: one cell per layer, and a legal width path; :mod:`hinas_lib.sampling`), the
  genotypes of the study's searches (``SEARCHES``: settings ``STUDY_SEARCH`` at two seeds, and the
  same with DARTS-'s auxiliary skip against collapse, ``search.aux_skip``) and the zoo's own search
  (the genotype of every shipped denoiser, searched with the earlier settings).
* **One recipe for all** (``train_config``): compact design, F = 16, Train400 grey less the 20
  held-out images, sigma = 50, MSE, Adam 1e-3 cosine to 1e-6, ``TRAIN_STEPS`` steps of 16
  patches of 48 px, the same seed and sample order. Scored on Set12 and on the 20 held-out
  Train400 images (sigma 50, seeded noise, the final weights: nothing is selected on either).
* **Seed spread.** The zoo's genotype is also retrained with seeds 1 and 2: if seeds move the
  result as much as genotypes do, the budget is too small to rank anything.
* **The supernet's ranking.** Every genotype evaluated inside the first study search's trained
  supernet (:func:`supernet_psnr`), against its stand-alone held-out PSNR: Kendall tau.

Runs live in ``benchmarks/state/search_vs_random/`` and are committed as they grow (a finished
retraining keeps its log and ``result.json``; a running one its 1 MB checkpoint), so each
session resumes what the last one left. Needs ``../shared/data/{Train400,Set12}`` (``--shared``).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from hinas_lib import data, splits  # noqa: E402
from hinas_lib.checkpoint import atomic_write_text, load_checkpoint  # noqa: E402
from hinas_lib.config import Config, get_preset  # noqa: E402
from hinas_lib.evaluate import evaluate  # noqa: E402
from hinas_lib.genotype import Genotype, edge_index  # noqa: E402
from hinas_lib.grid import move_index  # noqa: E402
from hinas_lib.history import search_trajectory  # noqa: E402
from hinas_lib.network import build_network  # noqa: E402
from hinas_lib.runfiles import GENOTYPE_FILE, LOG_FILE, MODEL_FILE, SEARCH_STATE, TRAIN_STATE  # noqa: E402
from hinas_lib.runtime import set_threads  # noqa: E402
from hinas_lib.sampling import random_genotype  # noqa: E402
from hinas_lib.tasks import with_level  # noqa: E402

STATE = ROOT / "benchmarks" / "state" / "search_vs_random"
RESULTS_JSON = ROOT / "benchmarks" / "results" / "search_vs_random.json"
PAGE = ROOT / "benchmarks" / "SEARCH_VS_RANDOM.md"
PLOT = ROOT / "benchmarks" / "results" / "search_vs_random.png"
SPREAD_PLOT = ROOT / "benchmarks" / "results" / "search_alpha_spread.png"
ZOO_SEARCH = ROOT / "zoo" / "state" / "denoise-search"

N_RANDOM = 10
RANDOM_SEED = 2026          # random genotype k is random_genotype(Random(RANDOM_SEED + k), ...)
# the study's searches: name -> (seed, settings beyond STUDY_SEARCH)
SEARCHES = {"search-s1": (1, {}), "search-s2": (2, {}),
            "auxskip-s1": (1, {"aux_skip": 1.0}), "auxskip-s2": (2, {"aux_skip": 1.0}),
            # less noise in the architecture gradient, less pull back to uniform: one sigma (50, the
            # study's) instead of a draw from {30, 50, 70} per patch, Adam's beta1 0.9 (averaging
            # ~10 steps, not DARTS's 0.5) and no weight decay on alpha/beta
            "sep-s1": (1, {"level": 50.0, "a_betas": (0.9, 0.999), "a_weight_decay": 0.0})}
SUPERNET_OF = "search-s1"   # whose trained supernet ranks every genotype
SEED_CHECK = ("zoo-search", (1, 2))  # this genotype is also retrained with these seeds
TRAIN_STEPS = 2000          # 8 epochs of 250 steps: 20-30 CPU-minutes per genotype at one thread
EVAL_SIGMA = 50.0
# The study's search: the zoo search's space and data, with an architecture rate 10x the zoo's
# (1e-3 moved softmax(alpha) by a few thousandths in 400 steps: the genotype was a coin toss).
STUDY_SEARCH = dict(epochs=10, warmup_epochs=3, steps_per_epoch=50, a_lr=1e-2)


# ---------------------------------------------------------------------------
# configs
def base_config(shared: str = "../shared") -> Config:
    """The zoo search's space (compact, 3 layers x 4 blocks, F = 8) and its data, with the
    20 held-out Train400 images kept out of both search halves and of retraining."""
    return get_preset("tiny", "denoise").replace(
        name="search-vs-random",
        task=dict(sigmas=[30.0, 50.0, 70.0], sigma_range=None, eval_sigma=EVAL_SIGMA),
        space=dict(layers=3, blocks=4, filters=8),
        search=dict(epochs=12, warmup_epochs=4, steps_per_epoch=50, batch_size=6, crop=40),
        # relative paths (the script runs from the repository root): no machine's folder in git
        data=dict(train_dir=f"{shared}/data/Train400", val_fraction=0.5, holdout_fraction=0.05))


def search_config(name: str, shared: str = "../shared") -> Config:
    seed, extra = SEARCHES[name]
    extra = dict(extra)
    level = extra.pop("level", None)  # a fixed noise level instead of the zoo search's draw
    cfg = base_config(shared).replace(search=dict(seed=seed, **STUDY_SEARCH, **extra))
    return cfg if level is None else with_level(cfg, level)


def train_config(seed: int = 0, shared: str = "../shared") -> Config:
    return with_level(base_config(shared), EVAL_SIGMA).replace(
        train=dict(filters=16, epochs=TRAIN_STEPS // 250, steps_per_epoch=250, batch_size=16, crop=48,
                   lr=1e-3, lr_min=1e-6, schedule="cosine", ssim_weight=0.0, val_every=1,
                   train_on_val=True, seed=seed))


# ---------------------------------------------------------------------------
# the genotypes
def random_genotypes(cfg: Config) -> Dict[str, Genotype]:
    sp = cfg.space
    return {f"random-{k:02d}": random_genotype(random.Random(RANDOM_SEED + k), sp.layers, sp.blocks,
                                               sp.primitives, sp.width_factors) for k in range(N_RANDOM)}


def search_dir(name: str) -> Path:
    seed, extra = SEARCHES[name]
    return STATE / "search" / (f"seed{seed}" if not extra else f"{name.rsplit('-s', 1)[0]}-seed{seed}")


def genotype_of(name: str, cfg: Config) -> Optional[Genotype]:
    """The genotype called ``name``; None for a search that has not finished yet."""
    if name.startswith("random-"):
        return random_genotypes(cfg)[name]
    if name == "zoo-search":
        return Genotype.load(ZOO_SEARCH / GENOTYPE_FILE)
    if name in SEARCHES:
        p = search_dir(name) / GENOTYPE_FILE
        return Genotype.load(p) if p.exists() else None
    raise ValueError(f"unknown genotype {name!r}")


def names() -> List[str]:
    return list(SEARCHES) + ["zoo-search"] + [f"random-{k:02d}" for k in range(N_RANDOM)]


def kind_of(name: str) -> str:
    return "random" if name.startswith("random-") else "searched"


def train_dir(name: str, seed: int = 0) -> Path:
    return STATE / "train" / f"{name}-seed{seed}"


def queue() -> List[str]:
    """Jobs in the order they are worth doing: the seed check and a first spread of randoms
    (is the budget enough to rank?), the searches, then the rest."""
    jobs = ["train:zoo-search:0", "train:zoo-search:1", "train:random-00:0", "train:random-01:0",
            "search:search-s1", "train:search-s1:0", "search:auxskip-s1", "train:auxskip-s1:0"]
    jobs += [f"train:random-{k:02d}:0" for k in range(2, N_RANDOM)]
    for name in SEARCHES:
        jobs += [j for j in (f"search:{name}", f"train:{name}:0") if j not in jobs]
    jobs += [f"train:{SEED_CHECK[0]}:{s}" for s in SEED_CHECK[1] if f"train:{SEED_CHECK[0]}:{s}" not in jobs]
    return jobs


def job_done(job: str) -> bool:
    kind, *rest = job.split(":")
    if kind == "search":
        return (search_dir(rest[0]) / GENOTYPE_FILE).exists()
    return (train_dir(rest[0], int(rest[1])) / "result.json").exists()


# ---------------------------------------------------------------------------
# the work
def run_search(name: str, shared: str) -> None:
    from hinas_lib import viz
    from hinas_lib.search import Searcher
    out = search_dir(name)
    cfg = search_config(name, shared)
    Searcher(cfg, out, resume="auto", progress=True, write_figures=viz.write_search_figures).run()
    if name != SUPERNET_OF:  # finished: only the ranking supernet's 5 MB state is kept in git
        (out / SEARCH_STATE).unlink(missing_ok=True)


def macs_per_px(net: torch.nn.Module, channels: int = 1, size: int = 64) -> float:
    from benchmarks.derived import count_macs
    net.eval()
    return count_macs(net, torch.rand(1, channels, size, size)) / size ** 2


def run_train(name: str, seed: int, shared: str) -> Dict:
    from hinas_lib.train import Trainer
    cfg = train_config(seed, shared)
    g = genotype_of(name, cfg)
    if g is None:
        raise SystemExit(f"error: {name}: its search has not finished; run its search job first")
    out = train_dir(name, seed)
    Trainer(cfg, g, out, resume="auto", progress=True).run()
    # the final weights (model.pt is the best epoch by held-out PSNR: a selection we do not want here)
    state = load_checkpoint(out / TRAIN_STATE, kind="train")
    net = build_network(g, cfg)
    net.load_state_dict(state["model"])
    net.eval()
    res = score(net, cfg, shared)
    res.update(name=name, kind=kind_of(name), seed=seed, steps=int(state["step"]),
               cpu_hours=float(state["cpu_s"]) / 3600, params=sum(p.numel() for p in net.parameters()),
               macs_per_px=macs_per_px(net), genotype=g.to_dict())
    atomic_write_text(out / "result.json", json.dumps(res, indent=1))
    # finished: the log and result stay, the 1 MB state and the best-epoch model go
    for f in (TRAIN_STATE, MODEL_FILE):
        (out / f).unlink(missing_ok=True)
    return res


def heldout_images(cfg: Config) -> List:
    return splits.split_images(cfg)["holdout"]


def score(net, cfg: Config, shared: str) -> Dict:
    """Mean PSNR/SSIM at sigma 50 on Set12 and on the held-out Train400 images (seeded noise)."""
    set12 = data.load_folder(Path(shared) / "data" / "Set12", 1)
    out = {}
    for key, imgs in (("set12", set12), ("heldout", heldout_images(cfg))):
        r = evaluate(net, cfg, imgs, sigma=EVAL_SIGMA, with_baseline=False, progress=False)
        out[f"{key}_psnr"], out[f"{key}_ssim"] = r["mean"]["ours_psnr"], r["mean"]["ours_ssim"]
    return out


# ---------------------------------------------------------------------------
# the supernet's ranking
def discrete_arch(net, genotype: Genotype):
    """(alpha, beta) logits that make the supernet compute ``genotype``: each block's two
    edges with their ops and ``none`` on every other edge (LWAS: one cell per layer), and the
    move along the width path out of every node on it."""
    prims = list(net.primitives)
    big = 1e4
    alpha = torch.full_like(net.alpha, -big)
    edges = edge_index(genotype.blocks)
    for l, cell in enumerate(genotype.cells):
        chosen = {(i, j): op for i, block in enumerate(cell) for op, j in block}
        for e, (i, j) in enumerate(edges):
            alpha[l, e, prims.index(chosen.get((i, j), "none"))] = 0.0
    beta = net.beta.detach().clone()
    prev = 0
    for l, s in enumerate(genotype.path):
        beta[l, prev] = -big
        beta[l, prev, move_index(prev, s)] = 0.0
        prev = s
    return alpha, beta


@torch.no_grad()
def supernet_psnr(net, genotype: Genotype, calib, heldout, task, device, bn_batches: int = 20) -> float:
    """The held-out PSNR of ``genotype`` with the weights it inherits from the trained supernet
    ``net`` (compact design): alpha/beta set by :func:`discrete_arch`, the projections of the
    last layer's other nodes switched off (the sub-network ends at its path's node; where a
    cell reads its older input from a node off the path, that node is computed as in the
    supernet), and every BatchNorm's statistics recomputed on ``bn_batches`` training batches."""
    from hinas_lib.validation import validate
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta, was_training = [m.momentum for m in bns], net.training
    try:
        a, b = discrete_arch(net, genotype)
        net.alpha.copy_(a)
        net.beta.copy_(b)
        for s, proj in net.proj.items():
            if int(s) != genotype.path[-1]:
                proj.weight.zero_()
                proj.bias.zero_()
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # a plain average over the calibration batches
        net.train()
        for x, _ in calib[:bn_batches]:
            net(x.to(device))
        net.eval()
        return float(validate(net, heldout, task, device)["val_psnr"])
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        net.load_state_dict(saved)
        net.train(was_training)


def run_supernet(shared: str, name: str = SUPERNET_OF) -> Dict[str, float]:
    from hinas_lib import streams
    from hinas_lib.supernet import build_supernet
    from hinas_lib.tasks import get_task
    ck = search_dir(name) / SEARCH_STATE
    if not (search_dir(name) / GENOTYPE_FILE).exists():
        raise SystemExit(f"error: the supernet of {name} is not trained yet; run 'search:{name}' first")
    cfg = with_level(search_config(name, shared), EVAL_SIGMA)
    state = load_checkpoint(ck, kind="search")
    net = build_supernet(cfg)
    net.load_state_dict(state["model"])
    task = get_task(cfg)
    imgs = splits.split_images(cfg)
    calib = streams.fixed_batches(task.patch_dataset(imgs["train"], cfg.search.crop), 7, cfg.search.batch_size, 20)
    heldout = list(task.eval_dataset(imgs["holdout"]))
    out = {}
    for gname in names():
        g = genotype_of(gname, cfg)
        if g is not None:
            out[gname] = supernet_psnr(net, g, calib, heldout, task, torch.device("cpu"))
            print(f"{gname}: {out[gname]:.2f} dB")
    # (the loop once reused `name`, so the file named the last genotype as the supernet's owner)
    atomic_write_text(STATE / "supernet.json", json.dumps({"supernet_of": name, "psnr": out}, indent=1))
    return out


# ---------------------------------------------------------------------------
# the report
def kendall(x: Sequence[float], y: Sequence[float]):
    from scipy.stats import kendalltau
    if len(x) < 3:
        return None, None
    t = kendalltau(x, y)
    return float(t.statistic if hasattr(t, "statistic") else t[0]), float(t.pvalue)


def collect() -> Dict:
    results = {}
    for p in sorted((STATE / "train").glob("*/result.json")):
        r = json.loads(p.read_text())
        results[(r["name"], r["seed"])] = r
    sup = json.loads((STATE / "supernet.json").read_text())["psnr"] if (STATE / "supernet.json").exists() else {}
    rows = []
    for name in names():
        r = results.get((name, 0))
        if r is None:
            continue
        row = {k: r[k] for k in ("name", "kind", "set12_psnr", "set12_ssim", "heldout_psnr", "heldout_ssim",
                                 "params", "macs_per_px", "cpu_hours", "steps")}
        row["supernet_psnr"] = sup.get(name)
        row["seeds"] = {str(s): results[(name, s)]["set12_psnr"] for (n, s) in sorted(results) if n == name}
        row["genotype"] = r["genotype"]
        rows.append(row)
    rand = [r["set12_psnr"] for r in rows if r["kind"] == "random"]
    for r in rows:
        # (no rank before any random genotype is retrained)
        r["rank_among_random"] = (1 + sum(1 for v in rand if v > r["set12_psnr"])
                                  if r["kind"] == "searched" and rand else None)
    paired = [(r["supernet_psnr"], r["heldout_psnr"]) for r in rows if r["supernet_psnr"] is not None]
    tau, p = kendall([a for a, _ in paired], [b for _, b in paired])
    out = {
        "genotypes": rows,
        "random_set12_mean": statistics.mean(rand) if rand else None,
        "random_set12_std": statistics.stdev(rand) if len(rand) > 1 else None,
        "searched_set12_mean": (statistics.mean([r["set12_psnr"] for r in rows if r["kind"] == "searched"])
                                if any(r["kind"] == "searched" for r in rows) else None),
        "seed_spread_set12": {r["name"]: (max(s.values()) - min(s.values())) for r in rows for s in [r["seeds"]]
                              if len(s) > 1},
        "kendall_tau": tau, "kendall_p": p, "kendall_n": len(paired),
        # the test: searched mean above the random mean by at least one random std
        "searched_minus_random_in_std": _gap_in_std(rows),
        "recipe": {"train_steps": TRAIN_STEPS, "sigma": EVAL_SIGMA, "filters": 16, "batch": 16, "crop": 48,
                   "optimizer": "adam 1e-3 cosine to 1e-6", "loss": "mse", "study_search": STUDY_SEARCH},
        "complete": len([r for r in rows if r["kind"] == "random"]) >= 8 and
                    len([r for r in rows if r["kind"] == "searched"]) >= 2 and tau is not None,
    }
    return out


def _gap_in_std(rows: List[Dict]) -> Optional[float]:
    rand = [r["set12_psnr"] for r in rows if r["kind"] == "random"]
    srch = [r["set12_psnr"] for r in rows if r["kind"] == "searched"]
    if len(rand) < 2 or not srch or statistics.stdev(rand) == 0:
        return None
    return (statistics.mean(srch) - statistics.mean(rand)) / statistics.stdev(rand)


# What the study tried to make alpha separate (item 2 of issue 21); the page lists it.
TRIED = [
    "the zoo's search: a_lr 1e-3 (the authors' rate), Adam betas 0.5/0.999, alpha weight decay 1e-3, "
    "12 epochs x 50 steps, 4 warm-up (400 architecture steps), sigma drawn from {30, 50, 70}",
    "`search-s1`: the same with a_lr 1e-2 (10x), 10 epochs, 3 warm-up (350 architecture steps)",
    "`auxskip-s1`/`-s2`: DARTS-'s auxiliary skip (coefficient 1 decaying to 0) against the drift to skip",
    "`sep-s1`: less gradient noise and no pull back to uniform: one sigma (50), Adam beta1 0.9, no alpha "
    "weight decay, a_lr 1e-2 (this one separates alpha: see below)",
]


def report() -> Dict:
    res = collect()
    atomic_write_text(RESULTS_JSON, json.dumps(res, indent=1))
    _plots(res)
    atomic_write_text(PAGE, _page(res))
    print(f"wrote {RESULTS_JSON}, {PAGE}")
    return res


def _trajectories() -> Dict[str, List[Dict]]:
    prims = get_preset("tiny").space.primitives
    out = {"zoo search (a_lr 1e-3)": search_trajectory(ZOO_SEARCH / LOG_FILE, prims)}
    for name, (_, extra) in SEARCHES.items():
        log = search_dir(name) / LOG_FILE
        if log.exists():
            label = f"{name} (a_lr {STUDY_SEARCH['a_lr']:g}" + "".join(f", {k} {_setting(v)}" for k, v in extra.items()) + ")"
            if not (search_dir(name) / GENOTYPE_FILE).exists():
                label += f", still running: epoch {len(search_trajectory(log, prims))} of {STUDY_SEARCH['epochs']}"
            out[label] = search_trajectory(log, prims)
    return out


def _setting(v) -> str:
    return "/".join(f"{x:g}" for x in v) if isinstance(v, (tuple, list)) else f"{v:g}"


def _plots(res: Dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = res["genotypes"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for kind, colour, x in (("random", "tab:grey", 0), ("searched", "tab:red", 1)):
        rs = [r for r in rows if r["kind"] == kind]
        ax1.scatter([x] * len(rs), [r["set12_psnr"] for r in rs], c=colour, s=30, zorder=3)
        for k, r in enumerate(sorted(rs, key=lambda r: r["set12_psnr"])):
            if kind == "searched":  # staggered: searched cells often score alike and the names would overlap
                ax1.annotate(r["name"], (x, r["set12_psnr"]), xytext=(8, -9 + 9 * (k % 3)), textcoords="offset points",
                             fontsize=8)
            for s, v in r["seeds"].items():
                if s != "0":
                    ax1.scatter([x + 0.08], [v], c=colour, marker="x", s=25)
    if res["random_set12_mean"] is not None and res["random_set12_std"] is not None:
        m, sd = res["random_set12_mean"], res["random_set12_std"]
        ax1.axhspan(m - sd, m + sd, color="tab:grey", alpha=0.15, label="random mean ± std")
        ax1.axhline(m, color="tab:grey", lw=1)
        ax1.legend(loc="lower right", fontsize=8)
    ax1.set_xticks([0, 1], ["random", "searched"])
    ax1.set_xlim(-0.5, 1.8)
    ax1.set_ylabel(f"Set12 PSNR (dB), sigma {EVAL_SIGMA:g}")
    ax1.set_title("stand-alone, equal budget (x: other training seeds)")
    pts = [(r["supernet_psnr"], r["heldout_psnr"], r["kind"]) for r in rows if r["supernet_psnr"] is not None]
    for a, b, k in pts:
        ax2.scatter(a, b, c="tab:red" if k == "searched" else "tab:grey", s=30)
    ax2.set_xlabel("held-out PSNR inside the supernet (dB)")
    ax2.set_ylabel("held-out PSNR stand-alone (dB)")
    tau = res["kendall_tau"]
    ax2.set_title("supernet ranking" + (f": Kendall tau {tau:.2f} (p {res['kendall_p']:.2f})" if tau is not None
                                        else ": not measured yet"))
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=100)
    plt.close(fig)
    traj = _trajectories()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for label, rows_ in traj.items():
        steps = [r["step"] for r in rows_]
        axes[0].plot(steps, [r["spread_mean"] for r in rows_], marker="o", ms=3, label=label)
        axes[1].plot(steps[1:], [r["changed_edges"] for r in rows_[1:]], marker="o", ms=3, label=label)
        axes[2].plot(steps, [r["skip_edges"] for r in rows_], marker="o", ms=3, label=label)
    axes[0].axhline(0.0, color="k", lw=0.5)
    axes[0].set_title("softmax(alpha) spread, mean over edges")
    axes[1].set_title("derived edges changed since the last epoch (of 24)")
    axes[2].set_title("skip_connect edges in the derived genotype")
    for ax in axes:
        ax.set_xlabel("search step")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(SPREAD_PLOT, dpi=100)
    plt.close(fig)


def _fmt(v, f="{:.2f}"):
    return "–" if v is None else f.format(v)


def _verdict(res: Dict, n_rand: int, n_srch: int) -> str:
    gap = res["searched_minus_random_in_std"]
    if gap is None:
        return "Not enough genotypes retrained yet to compare."
    done = [t for t in TRIED if not any(f"`{n}" in t and not (search_dir(n) / GENOTYPE_FILE).exists()
                                        for n in SEARCHES)]
    head = (f"The searched cells' Set12 mean is {gap:+.2f} random standard deviations from the random mean "
            f"({n_srch} searched, {n_rand} random genotypes). ")
    if gap >= 1:
        head += "That is above the random mean by at least one random standard deviation."
    else:
        head += ("**The search does not beat cells drawn at random** by the issue's test (one random standard "
                 "deviation above their mean): at this budget a searched cell is no better than a random one "
                 "from the same space.")
    tau, p, n = res["kendall_tau"], res["kendall_p"], res["kendall_n"]
    if tau is not None:
        head += (f" The trained supernet does not rank the genotypes as stand-alone training does: Kendall tau "
                 f"{tau:+.2f} (p {p:.3f}, n = {n}) between the held-out PSNR inside the supernet and after "
                 "retraining" + (", if anything the reverse order." if tau < 0 and p < 0.1 else "."))
    srch = [r for r in res["genotypes"] if r["kind"] == "searched"]
    head += (" Each searched genotype's Set12 PSNR and rank among the random ones: " +
             ", ".join(f"`{r['name']}` {r['set12_psnr']:.2f} dB ({r['rank_among_random']} of {n_rand + 1})"
                       for r in srch) + ".")
    sep = {lab: t[-1] for lab, t in _trajectories().items() if lab.startswith("sep-s1") and "running" not in lab}
    if sep and any(r["name"] == "sep-s1" for r in srch):
        last = next(iter(sep.values()))
        v = next(r["set12_psnr"] for r in srch if r["name"] == "sep-s1")
        better = v >= res["random_set12_mean"] + res["random_set12_std"]
        head += (f" `sep-s1` is the search whose alpha separated (spread {last['spread_mean']:.3f} on average, "
                 f"{last['spread_max']:.3f} at most, {last['changed_edges']} edges changed in its last epoch): "
                 + ("its cell is above the random mean by at least one random standard deviation."
                    if better else "a decided alpha did not make a better cell."))
    return head + " Searches finished so far: " + "; ".join(done) + "."


def _page(res: Dict) -> str:
    rows = res["genotypes"]
    n_rand = sum(r["kind"] == "random" for r in rows)
    n_srch = sum(r["kind"] == "searched" for r in rows)
    lines = ["# Search against random: does the HiNAS search find anything?", "",
             "Made by `python -m benchmarks.search_vs_random report` from the runs in "
             "`benchmarks/state/search_vs_random/` (data: `benchmarks/results/search_vs_random.json`). "
             "How the study works is in the docstring of `benchmarks/search_vs_random.py`.", ""]
    if not res["complete"]:
        lines += [f"**Status: incomplete.** {n_rand} of {N_RANDOM} random and {n_srch} of {len(SEARCHES) + 1} "
                  "searched genotypes are retrained so far"
                  + ("" if res["kendall_tau"] is not None else ", and the supernet ranking is not measured yet")
                  + ". The runs resume and accumulate across sessions "
                  "(`python -m benchmarks.search_vs_random run --hours H`); nothing below is a conclusion yet.", ""]
    pending = [j for j in queue() if not job_done(j)]
    if pending:
        lines += ["Jobs not done yet (they resume where they stopped): " + ", ".join(f"`{j}`" for j in pending) + ".",
                  ""]
    lines += ["## Recipe (the same for every genotype)", "",
              f"Compact design, F = 16, Train400 grey less 20 held-out images, sigma = {EVAL_SIGMA:g}, MSE, "
              f"Adam 1e-3 cosine to 1e-6, {TRAIN_STEPS} steps of 16 patches of 48 px, seed 0 (same "
              "initialisation seed and sample order for all), one torch thread. Scores: the final weights "
              "(no epoch selected) on Set12 and on the 20 held-out Train400 images, sigma 50, seeded noise.", "",
              "## Results", "",
              "| genotype | kind | Set12 PSNR | Set12 SSIM | held-out PSNR | in supernet | rank among random | "
              "weights | MACs/px | other seeds (Set12) | CPU-h |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: -r["set12_psnr"]):
        other = ", ".join(f"s{s}: {v:.2f}" for s, v in r["seeds"].items() if s != "0") or ""
        lines.append(f"| `{r['name']}` | {r['kind']} | {r['set12_psnr']:.2f} | {r['set12_ssim']:.3f} | "
                     f"{r['heldout_psnr']:.2f} | {_fmt(r['supernet_psnr'])} | {_fmt(r['rank_among_random'], '{}')} | "
                     f"{r['params'] / 1e3:.1f} K | {r['macs_per_px'] / 1e3:.1f} K | {other} | {r['cpu_hours']:.2f} |")
    lines += ["", f"- Random: mean {_fmt(res['random_set12_mean'])} dB, std {_fmt(res['random_set12_std'], '{:.3f}')} "
              f"dB on Set12 (n = {n_rand}).",
              f"- Searched: mean {_fmt(res['searched_set12_mean'])} dB (n = {n_srch}).",
              "- Seed spread (max - min over training seeds, same genotype): " +
              (", ".join(f"`{k}` {v:.3f} dB" for k, v in res["seed_spread_set12"].items()) or "not measured yet") + ".",
              f"- Supernet ranking: Kendall tau {_fmt(res['kendall_tau'])}, p {_fmt(res['kendall_p'], '{:.3f}')} "
              f"(n = {res['kendall_n']}).", "",
              "![searched vs random](results/search_vs_random.png)", "",
              "## Verdict", "", _verdict(res, n_rand, n_srch), "",
              "## Does alpha separate? (the search's trajectories)", "",
              "Per epoch: the spread of softmax(alpha) (max - min over the 7 ops of an edge; uniform is 0), how "
              "many of the derived genotype's 24 edges changed since the previous epoch, and how many of them "
              "are `skip_connect` (a drift to parameter-free ops is the 'collapse' of DARTS-style searches).", "",
              "![alpha spread, stability, skips](results/search_alpha_spread.png)", ""]
    for label, traj in _trajectories().items():
        last = traj[-1]
        lines.append(f"- {label}: after {last['step']} steps, spread mean {last['spread_mean']:.3f} / max "
                     f"{last['spread_max']:.3f}; {last['changed_edges']} edges changed in the last epoch; "
                     f"{last['skip_edges']} skip edges.")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
def run_jobs(jobs: Sequence[str], hours: float, shared: str) -> None:
    t0 = time.process_time()
    for job in jobs:
        if job_done(job):
            continue
        if (time.process_time() - t0) / 3600 >= hours:
            print(f"stopping: {hours:g} CPU-hours used; rerun to continue")
            return
        print(f"== {job}", flush=True)
        kind, *rest = job.split(":")
        if kind == "search":
            run_search(rest[0], shared)
        else:
            r = run_train(rest[0], int(rest[1]), shared)
            print(f"{job}: Set12 {r['set12_psnr']:.2f} dB, held-out {r['heldout_psnr']:.2f} dB", flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["status", "run", "supernet", "report"])
    p.add_argument("--hours", type=float, default=1.0, help="run: stop starting jobs after this many CPU-hours")
    p.add_argument("--only", nargs="+", default=None, help="run: these jobs (e.g. train:random-03:0 search:2)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--shared", default="../shared", help="the folder holding data/Train400 and data/Set12 "
                   "(relative to the repository root)")
    a = p.parse_args(argv)
    if not (a.hours > 0 and math.isfinite(a.hours)):
        p.error(f"--hours: must be a positive number, got {a.hours}")
    if a.threads < 1:
        p.error(f"--threads: must be >= 1, got {a.threads}")
    import os
    os.chdir(ROOT)  # configs hold paths relative to the repository
    set_threads(a.threads)
    if a.command in ("run", "supernet"):
        for sub in ("Train400", "Set12"):
            if not (Path(a.shared) / "data" / sub).is_dir():
                p.error(f"--shared: {Path(a.shared) / 'data' / sub} is not a folder")
    if a.command == "status":
        for job in queue():
            print(f"{'done' if job_done(job) else 'todo'}  {job}")
    elif a.command == "run":
        jobs = queue() if a.only is None else a.only
        bad = [j for j in jobs if j not in queue()]
        if bad:
            p.error(f"--only: unknown job(s) {bad}; 'status' lists them")
        run_jobs(jobs, a.hours, a.shared)
    elif a.command == "supernet":
        run_supernet(a.shared)
    else:
        report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
