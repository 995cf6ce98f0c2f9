"""Write ``benchmarks/RESULTS.md`` from the JSON files the benchmarks wrote.

    python -m benchmarks.report [--dir benchmarks/results] [--out benchmarks/RESULTS.md]

Reads, when present: ``search_step_denoise.json``, ``search_step_{denoise,sr}_t1.json`` / ``_t2.json``
(default against the authors' code per thread count; ``..._t1_epyc.json`` / ``_t2_epyc.json`` the
same on an AMD EPYC), ``search_step_sr.json``
(``benchmarks.search_step``), ``sweep_layers.json``, ``sweep_batch.json``
(``--sweep``), ``eval_forward.json``, ``derived.json``, ``distributed_cpu.json``
and ``gpu_check.md``.
``make bench-all`` runs them all and then this.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List

from benchmarks.restore_speed import wall
from benchmarks.search_step import main_table, ratio_table

HERE = Path(__file__).resolve().parent
BEFORE_DIR = "/tmp/before"  # `git worktree add /tmp/before ac21fcd`: the code before the 2026-12-07 speed-ups
BEFORE_NOTE = ("`before` = the default path as the code stood before the 2026-12-07 changes (commit ac21fcd, "
               "`git worktree add /tmp/before ac21fcd`), interleaved with ours. What changed: the search "
               "cells' 1x1 convolutions on NHWC input run as one matrix product each (a grouped one with a "
               "block-diagonal weight; `hinas_lib/fused.py`), BatchNorms whose width is not a multiple of "
               "16 run on one thread where torch's channels_last kernel is slower on more "
               "(`hinas_lib/bn_threads.py`), and the search and training keep freed memory in the process "
               "(`runtime.prepare_model`). Equivalence tests unchanged and passing; new ones at 2 threads "
               "(`tests/test_bn_threads.py`).")


def _load(d: Path, name: str):
    p = d / name
    return json.loads(p.read_text()) if p.is_file() else None


def _threads(r: Dict) -> int:
    return r.get("machine", {}).get("threads", 2)


def _machine(m: Dict) -> str:
    return (f"{m['cpu_model']}, {m['cpu_count']} cores, {m['threads']} torch threads, torch {m['torch']}, "
            f"Python {m['python']}, {m['date'][:16].replace('T', ' ')}, load average at start "
            f"{m['load_average_1_5_15'][0]:.2f}")


def _search_section(r: Dict, title: str, command: str) -> List[str]:
    res = {r["variant"]: {k: r[k] for k in ("iter_s_median", "peak_mem_mib", "max_rss_mib")}, **r["variants"]}
    a = r.get("anchor") or {}
    how = a.get("measured", "quoted")
    anchor = "No anchor figures for this preset." if not a.get("iter_s") else (
        (f"Anchor: the authors' code ({how})" if how.startswith("in this run") else
         f"Anchor: the authors' code, figures quoted from an earlier measurement on this machine type, "
         f"not side by side ({how})")
        + f": {a['iter_s']:.2f} s/iter"
        + (f", {a['peak_mem_mib']:.0f} MiB peak allocation" if a.get("peak_mem_mib") else "")
        + (f", {a['max_rss_mib'] / 1024:.1f} GiB max RSS." if a.get("max_rss_mib") else "."))
    return [f"## {title}", "", f"`{command}`", "", f"Machine: {_machine(r['machine'])}. "
            f"{r['warmup']} warm-up + {r['iters']} timed iterations per variant, variants interleaved.", "",
            anchor, "", main_table(res, a), "", "Ratios measured side by side in the same run:", "",
            ratio_table(r["ratios"]), ""] + _goal(r) + _roofline(r)


def _roofline(r: Dict) -> List[str]:
    """The default step's useful multiply-adds per second against a matmul's, both measured in its worker."""
    f = r.get("roofline")
    if not f:
        return []
    return [f"**Roofline** (`default`): {f['useful_gmac_s']:.1f} useful G MAC/s against {f['matmul_gmac_s']:.1f} "
            f"for a 2048x2048 float32 matmul in the same worker at the same thread count, "
            f"**{f['useful_gmac_s'] / f['matmul_gmac_s']:.2f}** of it. Useful = 5 forwards' multiply-adds per "
            f"iteration (the architecture step's forward and backward to the activations, the weight step's "
            f"forward and backward to the activations and the weights), a forward being "
            f"{f['forward_macs'] / 1e9:.1f} G MACs on the batch: every candidate op of every edge, counted on "
            "the plain path.", ""]


GOAL_TIME, GOAL_PEAK = 3.0, 0.5  # the project's target against the authors' code, like for like


def _goal(r: Dict) -> List[str]:
    """The target (>= 3x less time, <= 0.5x the peak allocation of the authors' code), judged
    only from a run where their code was measured side by side with ours."""
    ratio = r["ratios"].get("authors-code / default")
    if not ratio:
        return []
    t, m = ratio["iter_s_median"], ratio.get("peak_mem_mib")
    parts = [f"time {t:.2f}x less ({'met' if t >= GOAL_TIME else 'not met'})"]
    if m:
        parts.append(f"peak allocation {1 / m:.2f}x theirs ({'met' if 1 / m <= GOAL_PEAK else 'not met'})")
    return [f"**Against the goal** (at least {GOAL_TIME:g}x less time and at most {GOAL_PEAK:g}x the peak "
            f"memory of the authors' code, like for like): " + "; ".join(parts) + ".", ""]


def _restore_section(r, fname: str) -> List[str]:
    if not r:
        return []
    out: List[str] = []
    w, h = r["size"]
    macs = r["points"][0]["macs_per_px"] / 1000 if r["points"] else 0
    # model_label: what a measurement names when the zoo name has since meant another network
    label = r.get("model_label", f"`{r['model']}` ({macs:.0f} K multiply-adds per pixel)")
    out += [f"## `restore` of a {w}x{h} grey photograph with {label}, against a matmul", "",
            f"`python -m benchmarks.restore_speed --size {w}x{h} --threads "
            f"{' '.join(str(t) for t in sorted({p['threads'] for p in r['points']}))} "
            f"--variants {','.join(dict.fromkeys(p['variant'] for p in r['points']))} "
            + (f"--repeats {_repeats(r)} " if _repeats(r) > 1 else "")
            + (f"--tile {r['tile']} " if r.get("tile", 512) != 512 else "")
            + ("--previous /tmp/previous " if r.get("previous") else "")
            + f"--json benchmarks/results/{fname}`", "",
            "Each point in a fresh process, the variants taking turns: `before` = the network as loaded with "
            "glibc's default allocator; `eager` = the eager inference copy (BatchNorm folded, NHWC, freed memory "
            "kept in the process: `hinas_lib/deploy.py`); `after` = what `restore` runs now: for the compact "
            "design the planned forward pass (`hinas_lib/inference_plan.py`: torch's fused oneDNN convolutions, "
            "a conv's bias, activation and the block's addition in one primitive, no concatenation; a block no "
            "later block reads adds its edges straight into the cell's output, the output 1x1 conv composed into "
            "each edge's last conv, and the last cell's output convs composed with the network's 1x1 projection). "
            + (f"`previous` = `after` as the code stood at commit {r['previous']} (`git worktree add /tmp/previous "
               f"{r['previous']}`), interleaved with it. " if r.get("previous") else "")
            + "Useful G MAC/s = the network's multiply-adds on the "
            "image (tile context not counted) per second; the last column is that as a fraction of a 2048x2048 "
            "float32 matmul timed in the same process at the same thread count (the roofline). "
            f"Machine: {_machine(r['machine'])}.", "", r["table"], "",
            *([f"The network: {r['note']}", ""] if r.get("note") else []),
            "Outputs agree between the variants: " + ("yes" if r.get("outputs_agree") else "NO") + ". "
            + _compiled_note(r) + "The goal of 0.40 of the matmul rate at 2 threads is "
            + ("met" if _fraction(r, 2, "after") >= 0.40 else "not met") + " by what `restore` runs "
            f"({_fraction(r, 2, 'after'):.2f}; {_fraction(r, 2, 'after', 'useful_gmac_s_again'):.2f} for a second "
            "image in the same process, where buffers and oneDNN primitives already exist). "
            + _executed_note(r) + "What is left is "
            "memory-bound: at these widths each depthwise convolution and each activation of a state reads "
            "and writes the whole activation, and torch offers no primitive that fuses a depthwise convolution "
            "with the 1x1 convolution after it.", ""]
    return out


# What each retraining-step measurement compared (its title's tail, what changed), by file
_CAT_CHANGE = ("", "the cells concatenate their blocks with `hinas_lib.ops.cat_channels`, whose backward "
               "hands each block a dense NHWC gradient; torch's own hands out strided channel slices, and torch's "
               "CPU BatchNorm backward on those (NHWC input) takes a slow kernel, about 10x its time on a dense "
               "gradient (26 against 2.7 ms on (16, 48, 48, 48), one thread). The search's BatchNorms had the "
               "same fix already (`hinas_lib/bn_threads.py`); retraining had not. Gradients equal up to float32 "
               "rounding (`tests/test_ops_cells.py`).")
_DW_CHANGE = (", dilated depthwise backward",
              "the dilated depthwise convolutions of the `dil_conv` ops (5 `dil_conv_3x3` and 4 `dil_conv_5x5` "
              "edges in the zoo's genotype) compute their input's gradient as a forward convolution with the "
              "kernel flipped and ask torch's backward for the weight's gradient alone "
              "(`hinas_lib/depthwise.py`): torch's joint CPU backward of a dilated depthwise convolution took "
              "1.6-1.9x as long, per op, at 1 and 2 threads. Gradients equal torch's (float64, "
              "`tests/test_depthwise.py`).")
TRAIN_STEP_CHANGES = {"train_step_s30.json": _CAT_CHANGE, "train_step_s50.json": _CAT_CHANGE,
                      "train_step_s30_dw.json": _DW_CHANGE, "train_step_s50_dw.json": _DW_CHANGE}


def _train_step_section(r, fname: str) -> List[str]:
    if not r:
        return []
    p0 = r["points"][0]
    threads = sorted({p["threads"] for p in r["points"]})
    cmd = (f"`python -m benchmarks.train_step --model {r['model']} --threads {' '.join(map(str, threads))} "
           f"--steps {p0['steps']} " + (f"--repeats {_repeats(r)} " if _repeats(r) > 1 else "")
           + ("--previous /tmp/previous " if r.get("previous") else "") + f"--json benchmarks/results/{fname}`")
    ratios = "; ".join(f"{t} thread(s): " + ", ".join(f"{k} {v:.2f}" for k, v in rs.items())
                       for t, rs in r["ratios"].items() if rs)
    tail, change = TRAIN_STEP_CHANGES.get(fname, ("", ""))
    return [f"## One retraining step of `{r['model']}` ({p0['params'] / 1000:.0f} K weights, batch {p0['batch']} of "
            f"{p0['crop']}x{p0['crop']}){tail}", "", cmd, "",
            "The trainer's own step (forward, loss, backward, optimiser) on the entry's network and recipe, each "
            "point in a fresh process, the variants taking turns: `default` = this checkout"
            + (f"; `previous` = the code at commit {r['previous']} (`git worktree add /tmp/previous "
               f"{r['previous']}`)" if r.get("previous") else "")
            + f". Machine: {_machine(r['machine'])}.", "", r["table"], "",
            *([f"Median step time against `default`, per thread count: {ratios}."
               + (f" What changed: {change}" if change else ""), ""] if ratios else [])]


def _repeats(r: Dict) -> int:
    p = r["points"][0] if r["points"] else None
    return sum(q["threads"] == p["threads"] and q["variant"] == p["variant"] for q in r["points"]) if p else 1


def _executed_note(r: Dict) -> str:
    ps = [p for p in r["points"] if p["variant"] == "after" and p.get("executed_macs_per_px")]
    if not ps or ps[0]["executed_macs_per_px"] >= ps[0]["macs_per_px"]:
        return ""
    run, counted = ps[0]["executed_macs_per_px"], ps[0]["macs_per_px"]
    return (f"The planned pass runs {run / 1000:.0f} K of the network's {counted / 1000:.0f} K multiply-adds per "
            "pixel (the composed convs: the same function, fewer products); the fractions count the network's, "
            f"so per multiply-add actually run `after` is at {_fraction(r, 2, 'after') * run / counted:.2f} of the "
            "matmul rate at 2 threads. ")


def _fraction(r: Dict, threads: int, variant: str, key: str = "useful_gmac_s") -> float:
    ps = [p for p in r["points"] if p["threads"] == threads and p["variant"] == variant and key in p]
    return sum(p[key] / p["matmul_gmac_s"] for p in ps) / len(ps) if ps else 0.0


def _onnx_section(r, fname: str) -> List[str]:
    """ONNX Runtime against what ``restore`` runs (the issue's optional ONNX export, kept only if faster)."""
    if not r:
        return []
    w, h = r["size"]
    threads = sorted({p["threads"] for p in r["points"]})
    ps = r["points"]
    parts, verdict = [], {}
    for t in threads:
        o, a = wall(ps, t, "onnxruntime"), wall(ps, t, "after")
        parts.append(f"at {t} thread(s) {o:.1f} s against {a:.1f} s ({o / a:.2f}x the time; the same image "
                     f"again {wall(ps, t, 'onnxruntime', 'again_s') / wall(ps, t, 'after', 'again_s'):.2f}x)")
        # within 5% of the planned pass's time is level on this noisy machine
        verdict[t] = "faster" if o / a < 0.95 else "slower" if o / a > 1.05 else "level"
    export = [p["export_s"] for p in ps if p.get("export_s")]
    faster = all(v == "faster" for v in verdict.values())
    return [f"## ONNX Runtime against `restore`: a {w}x{h} grey photograph with `{r['model']}`", "",
            f"`python -m benchmarks.restore_speed --size {w}x{h} --threads {' '.join(map(str, threads))} "
            f"--variants after,onnxruntime --repeats {_repeats(r)} --json benchmarks/results/{fname}` "
            "(needs `pip install onnxruntime onnxscript`)", "",
            "`onnxruntime` = the eager inference copy exported to ONNX (torch's dynamo exporter, tile height and "
            f"width dynamic) and run by ONNX Runtime {r.get('onnxruntime', '')} (CPU provider, the same thread "
            f"count), tile by tile; its export ({min(export):.0f}-{max(export):.0f} s, once per network) is not in "
            "the wall time. `after` = what `restore` runs (the planned pass). Each point in a fresh process, the "
            f"variants taking turns. Machine: {_machine(r['machine'])}.", "", r["table"], "",
            "Outputs agree: " + ("yes" if r.get("outputs_agree") else "NO") + ". Summed over the repeats, "
            "ONNX Runtime took " + "; ".join(parts) + ". "
            + "Against the planned pass it is " + ", ".join(f"{v} at {t} thread(s)" for t, v in verdict.items())
            + (": faster at every thread count measured." if faster else
               ": not faster, so the library has no ONNX export command and `restore` keeps the planned pass."),
            ""]


def _compiled_note(r: Dict) -> str:
    ps = {(p["threads"], p["variant"]): p for p in r["points"]}
    if not any(v == "compiled" for _, v in ps):
        return ("`torch.compile` is measured in the 1600x1200 section of the 130 K network; TorchScript freezing with "
                "`optimize_for_inference` was tried earlier on the same tiles and was no faster than the eager copy. ")
    parts = []
    for t in sorted({t for t, v in ps if v == "compiled"}):
        c, a = ps[(t, "compiled")], ps.get((t, "after"))
        if a:
            parts.append(f"at {t} thread(s) {c['wall_s']:.1f} s with its compilation against {a['wall_s']:.1f} s "
                         f"for `after`; the same image again in the process {c['again_s']:.1f} s against "
                         f"{a['again_s']:.1f} s ({_fraction(r, t, 'compiled', 'useful_gmac_s_again'):.2f} of the "
                         "matmul rate)")
    return ("`compiled` (`torch.compile` of the eager copy, Inductor with freezing: convolutions prepacked and "
            "fused with their activations): " + "; ".join(parts) + ". Compiling (one graph per tile shape) costs "
            "more than it saves on one photograph, which is what `restore` is run on, so `restore` does not "
            "compile; the second-pass column is the rate a long-running process could reach. ")


def build(d: Path) -> str:
    out = ["# Benchmark results", "",
           "Written by `python -m benchmarks.report` from the JSON files in `benchmarks/results/`; "
           "rerun the commands below to reproduce (CPU figures are from a shared, noisy 2-core machine: "
           "read the ratios, which come from one run with the variants interleaved).", "",
           "Variants: `default` = HiNAS as the library runs it (cell sharing, fused mixed ops, channels_last, "
           "alpha/beta-only gradients in the architecture step); `checkpoint` = per-cell activation "
           "checkpointing (`space.checkpoint_cells`); `unoptimised` = the straightforward per-edge, NCHW code "
           "path computing the same function; `full-backward` = ours, but the architecture step back-propagates "
           "into every weight as the authors' code does (what the alpha/beta-only gradients save); "
           "`authors-code` = the authors' own code (github hkzhang91/HiNAS, `--authors-src`, nothing of it in "
           "this repository) at the same preset, batch and crop, its worker interleaved with ours: the anchor; "
           "`no-sharing` = one cell per incoming path (Auto-DeepLab style, compact design only); "
           "`compiled` = `default` under `torch.compile` (Inductor, CPU; its compilation in the warm-up "
           "iteration): measured, not kept, as it was slower than eager.",
           "Peak memory: the profiler's peak of live CPU allocations during one search iteration "
           "(activations and temporaries, above the weights already live); max RSS of the worker process.", ""]
    out += ["**Does the search find anything?** Searched cells against random ones at equal training "
            "budget, the supernet's ranking (Kendall tau), and whether alpha separates: "
            "[SEARCH_VS_RANDOM.md](SEARCH_VS_RANDOM.md) (`python -m benchmarks.search_vs_random`).", ""]
    r = _load(d, "search_step_denoise.json")
    if r:
        out += _search_section(r, "Search iteration, paper denoising config: the authors' design "
                                  "(3 layers, 4 blocks, F=10, batch 6, crop 64)",
                               f"python -m benchmarks.search_step --preset paper-denoise --threads {_threads(r)} "
                               "--iters 3 --warmup 1 --authors-src ~/HiNAS --json benchmarks/results/search_step_denoise.json")
    noted = False  # the `before` note once, under the first table that has the variant
    # ours and the authors' code, interleaved, per thread count (issue 27's table), per machine: the
    # ratio moves with the CPU (the files without a suffix are from an Intel Xeon)
    for suffix, where in (("", ""), ("_epyc", " on an AMD EPYC")):
        time_ratios = []  # (preset, threads, authors' time / ours) of this machine's runs
        for task, preset in (("denoise", "paper-denoise"), ("sr", "paper-sr")):
            for t in (1, 2):
                fname = f"search_step_{task}_t{t}{suffix}.json"
                r = _load(d, fname)
                if not r:
                    continue
                variants = ",".join([r["variant"]] + list(r["variants"]))
                before = (f" --before {BEFORE_DIR}" if "before" in r["variants"] else "")
                title = (f"Thread scaling: search iteration, {preset}, {t} thread(s), ours (default) against the "
                         "authors' code" if not suffix else
                         f"Thread scaling{where}: search iteration, {preset}, {t} thread(s), ours against the authors' code")
                if "authors-code / default" in r.get("ratios", {}):
                    time_ratios.append((preset, t, r["ratios"]["authors-code / default"]["iter_s_median"]))
                out += _search_section(r, title,
                                       f"python -m benchmarks.search_step --preset {preset} --threads {t} --iters 3 "
                                       f"--warmup 1 --variants {variants} --authors-src ~/HiNAS{before} "
                                       f"--json benchmarks/results/{fname}")
                if "before" in r["variants"] and not noted:
                    out += [BEFORE_NOTE, ""]
                    noted = True
        if suffix and time_ratios:
            out += [f"Time ratios{where} (authors' code / ours, each from its own interleaved run): "
                    + "; ".join(f"{p} at {t} thread(s) {q:.2f}x" for p, t, q in time_ratios)
                    + ". The two training runs that share this machine were paused (SIGSTOP) while these ran; "
                    "the load average at start still counts the minute before.", ""]
    r = _load(d, "search_step_sr.json")
    if r:
        out += _search_section(r, "Search iteration, paper SR x4 config: the authors' design "
                                  "(2 layers, 3 blocks, F=8, batch 24, LR crop 64)",
                               f"python -m benchmarks.search_step --preset paper-sr --threads {_threads(r)} --iters 3 "
                               "--warmup 1 --authors-src ~/HiNAS --json benchmarks/results/search_step_sr.json")
    anchor_s = ((_load(d, "search_step_denoise_t1.json") or _load(d, "search_step_denoise.json") or {})
                .get("anchor") or {}).get("iter_s")
    r = _load(d, "profile_step_denoise.json")
    if r:
        conv = r["groups"].get("convolutions (forward + backward)", {}).get("s", 0.0)
        budget = ("" if not anchor_s else
                  f" 3x less time than the authors' {anchor_s:.1f} s iteration above is {anchor_s / 3:.1f} s; "
                  f"with {conv:.1f} s in convolutions, the other {r['total_s'] - conv:.1f} s would have to fall to "
                  f"about {max(0.0, anchor_s / 3 - conv):.1f} s.")
        r2 = _load(d, "profile_step_denoise_t2.json")
        if r2:  # the same groups at 2 threads: what scales and what does not
            g2 = r2["groups"]
            rows = ["| kernels | s, 1 thread | share | s, 2 threads | speed-up |", "|---|---|---|---|---|"] + [
                f"| {g} | {v['s']:.2f} | {100 * v['share']:.0f}% | {g2.get(g, {}).get('s', 0.0):.2f} | "
                f"{v['s'] / max(1e-9, g2.get(g, {}).get('s', 0.0)):.2f}x |" for g, v in r["groups"].items()]
            rows += [f"| all | {r['total_s']:.2f} | 100% | {r2['total_s']:.2f} | {r['total_s'] / r2['total_s']:.2f}x |",
                     "", f"(2 threads: `python -m benchmarks.profile_step --preset {r2['preset']} --threads 2 --json "
                     "benchmarks/results/profile_step_denoise_t2.json`; machine: "
                     f"{_machine(r2['machine'])}.) BatchNorm is what does not scale: torch's channels_last BN "
                     "kernels run slower on 2 threads than on 1 for widths that are not a multiple of 16 (e.g. "
                     "(6, 20, 64, 64): forward + backward 0.9 ms on 1 thread, 2.9 ms on 2), so those run on one "
                     "thread now (`hinas_lib/bn_threads.py`); the convolutions and matrix products scale about "
                     "1.7-1.8x."]
        else:
            rows = ["| kernels | s | share |", "|---|---|---|"] + [
                f"| {g} | {v['s']:.2f} | {100 * v['share']:.0f}% |" for g, v in r["groups"].items()]
        out += ["## Where our search step's time goes (paper denoising config, authors' design)", "",
                f"`python -m benchmarks.profile_step --preset {r['preset']} --threads {_threads(r)} "
                "--json benchmarks/results/profile_step_denoise.json`", "",
                f"One profiled iteration of `default` (torch profiler, kernel self time, "
                f"{r['total_s']:.1f} s in all; the profiler adds a little). Machine: {_machine(r['machine'])}.", "",
                "\n".join(rows), "",
                "**What would close the gap to 3x.** The convolutions compute the same arithmetic as the "
                "authors' (the candidate set is theirs, dense dilated 3x3/5x5 included), so they are a floor "
                "for this design on this CPU." + budget + " Tried on 2026-12-07 and not kept, each measured "
                "against the default in one run: `torch.compile` of the whole search step (the `compiled` "
                "variant: slower, and 78 s to compile; compiling the per-edge path instead was slower still, "
                "13 s an iteration after 236 s of compiling); not recomputing the separable ops' convolutions "
                "in backward (`no-recompute`: 9% less time, but 2.15x the peak allocation, 0.59x the authors' "
                "where the goal allows 0.5x); the depthwise convolutions on one input with a channel "
                "multiplier instead of on per-edge copies (no faster with oneDNN's kernels: faster for 4 "
                "edges, slower for 2 or 3); BatchNorm from sums and element-wise ops (2-10x slower than torch's "
                "kernel). Tried on 2026-12-08 (an AMD EPYC) and not kept: the separable ops' grouped 1x1 "
                "convolutions as one batched product per group over strided views of the NHWC rows instead of "
                "one product with the block-diagonal weight (1.9-2.6x faster alone at 20 channels per group, "
                "one thread) left the whole step 1.3% faster (10.62 against 10.76 s at 1 thread, `before` "
                "interleaved), within the noise: in the step the products took 1.9 s either way; and the 5x5 "
                "depthwise weight gradient assembled from four 3x3 ones (oneDNN's 5x5 weight gradient alone is "
                "10-30x slower than its 3x3 one) is slower than oneDNN's joint input-and-weight backward it "
                "would replace: 0.56-0.93x its speed in 11 of 12 search shapes and thread counts (1.09x at 80 "
                "channels, 2 threads), 0.39-0.78x at the retraining's. What is left needs kernels eager PyTorch does not have: BatchNorm and the activation "
                "fused into the convolutions around them, and the depthwise and pointwise convolutions of a "
                "separable op as one kernel (a C++ or Triton extension; the library stays pure PyTorch). On "
                "a GPU the balance differs and is not measured yet (`scripts/gpu_check.sh`).", ""]
    for sw in ("layers", "batch"):
        r = _load(d, f"sweep_{sw}.json")
        if r:
            out += [f"## Cell sharing vs none as the {sw} grow (paper denoising sizes, compact design)", "",
                    f"`python -m benchmarks.search_step --preset paper-denoise --style compact --threads "
                    f"{_threads(r)} --sweep {sw} --json benchmarks/results/sweep_{sw}.json`", "",
                    "(The authors' design always shares one cell per node, so the comparison runs on the compact "
                    "design at the paper's sizes.)", "",
                    f"{r['warmup']} warm-up + {r['iters']} timed iterations per point; ratio = no-sharing / sharing.",
                    "", r["table"], ""]
    r = _load(d, "eval_forward.json")
    if r:
        out += ["## Eval-mode forward of the denoising supernet on a 256x256 grey image", "",
                f"`python -m benchmarks.eval_forward --preset paper-denoise --threads {_threads(r)} "
                "--json benchmarks/results/eval_forward.json`", "",
                "| path | s (median) | vs the quoted anchor (their code, 9 s at 2 threads) |", "|---|---|---|"]
        for k, v in r["paths"].items():
            same = r.get("anchor_s") and _threads(r) == 2  # the anchor was timed at 2 threads
            vs = f"{r['anchor_s'] / v['s_median']:.1f}x faster" if same else "- (not the same thread count)"
            out.append(f"| {k} | {v['s_median']:.3f} | {vs} |")
        out += ["", f"Largest difference between the two paths' outputs: {r['max_abs_diff']:.1e}.", ""]
    for fname in ("restore_speed_s30_f48.json", "restore_speed_12mp_s30.json"):
        out += _restore_section(_load(d, fname), fname)
    out += _onnx_section(_load(d, "restore_speed_onnx_s30.json"), "restore_speed_onnx_s30.json")
    for fname in ("restore_speed.json", "restore_speed_12mp.json"):
        out += _restore_section(_load(d, fname), fname)
    for fname in ("train_step_s30_dw.json", "train_step_s50_dw.json", "train_step_s30.json", "train_step_s50.json"):
        out += _train_step_section(_load(d, fname), fname)
    r = _load(d, "derived.json")
    if r:
        out += ["## Derived networks against classic baselines (CPU, eval mode)", "",
                f"`python -m benchmarks.derived --threads {_threads(r)} --json benchmarks/results/derived.json`",
                "",
                f"HiNAS rows use `{r['genotype']}` at the paper presets' retraining width; the searched zoo "
                "models' own sizes and speeds are in `zoo/RESULTS.md`.", "", r["table"], ""]
    r = _load(d, "distributed_cpu.json")
    if r:
        out += ["## Several processes on a CPU: the README's torchrun example", "",
                "`python -m benchmarks.distributed_cpu --steps 60 --repeats 2 "
                "--json benchmarks/results/distributed_cpu.json`", "",
                f"The `tiny` denoising search shortened to {r['steps']} steps, each variant run {r['repeats']} "
                f"times, taking turns, with `OMP_NUM_THREADS=2` in the environment (as many users have it); "
                f"steps/s from the search's own log. Machine: {_machine(r['machine'])}.", "", r["table"], "",
                "By default the ranks on a CPU keep their own BatchNorm statistics (`HINAS_BN_SYNC=auto` -> "
                "`local`) and share the cores out (one thread each here); `HINAS_BN_SYNC=global` synchronises "
                "BatchNorm so that 2 processes compute exactly what 1 process computes, at the cost of hundreds "
                "of small collectives per step.", ""]
    gpu = d / "gpu_check.md"
    out += ["## GPU", ""]
    if gpu.is_file():
        out += [gpu.read_text(), ""]
    else:
        out += ["Not measured yet: no GPU machine was lent to the sessions that wrote these figures. "
                "`scripts/gpu_check.sh` (under 8 minutes) checks CUDA against CPU, times a paper-config "
                "search iteration in fp32 and bf16 autocast with peak CUDA memory, and runs a few hundred "
                "retraining steps; copy its `gpu_check.md` to `benchmarks/results/` and rerun this report.", ""]
    return "\n".join(out)


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default=str(HERE / "results"))
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = ap.parse_args(argv)
    text = build(Path(args.dir))
    Path(args.out).write_text(text)
    print(f"wrote {args.out}")
    return Path(args.out)


if __name__ == "__main__":
    main()
