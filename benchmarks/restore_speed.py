"""``restore`` speed against this machine's limit: a zoo model on a large grey photograph.

    python -m benchmarks.restore_speed --threads 1 2 --json benchmarks/results/restore_speed.json

Each (variant, threads) point runs in its own fresh process (the allocator setting is per
process), the variants taking turns, so the ratios come from one run on the same machine state:

* ``before``: the trained network as loaded, glibc's default allocator behaviour (what
  ``restore`` did until the inference copy);
* ``eager`` (``--variants before,eager,after``): the eager inference copy,
  ``inference_copy(net, plan=False)`` (BatchNorm folded, NHWC) with
  :func:`hinas_lib.deploy.keep_freed_memory` (what ``restore`` ran before the planned pass);
* ``after``: what ``restore`` runs now, :func:`hinas_lib.deploy.inference_copy`: for the compact
  design the planned forward pass of :mod:`hinas_lib.inference_plan` (fused oneDNN primitives);
* ``previous`` (with ``--previous DIR``, another checkout of this project, e.g.
  ``git worktree add /tmp/previous REV``): ``after`` as that checkout's code runs it, so a change
  to the planned pass is measured against the code before it in the same run;
* ``compiled`` (``--variants before,after,compiled``): ``eager`` run through ``torch.compile``
  (Inductor, freezing on), its compile time counted in the wall time; "again" times the same
  image a second time in the process (compiled: nothing left to compile). Not what ``restore``
  runs: measured, not kept (benchmarks/RESULTS.md).
* ``onnxruntime`` (needs ``pip install onnxruntime onnxscript``): ``eager`` exported to ONNX
  (torch's dynamo exporter, tile height and width dynamic) and run by ONNX Runtime's CPU provider
  at the same thread count, tile by tile; the export (a one-off step) is timed apart
  (``export_s``), not in the wall time. Not what ``restore`` runs: measured, not kept.

Each process also times a 2048 x 2048 float32 matmul at the same thread count just before:
the *roofline* line, useful MACs per second of the restore (the network's MACs on the image,
tile context not counted) as a fraction of the matmul's MACs per second.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, resource, sys, time
variant, threads, model, w, h, tile = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
import torch
torch.set_num_threads(threads)
from benchmarks.common import matmul_gmac_s
from benchmarks.derived import count_macs
try:
    from benchmarks.derived import count_executed_macs
except ImportError:  # an older checkout run as "previous"
    count_executed_macs = None
from hinas_lib.deploy import inference_copy, keep_freed_memory
from hinas_lib.inference import tiled_forward
from hinas_lib.model_files import load_model
net, cfg, _ = load_model(model, "cpu")
net.eval()
macs_px = count_macs(net, torch.rand(1, cfg.task.channels, 64, 64)) / 64 ** 2  # the same for every variant
overlap = None
export_s = None
if variant in ("eager", "after", "compiled", "onnxruntime"):
    keep_freed_memory()
    net = inference_copy(net, plan=variant == "after")
if variant == "compiled":  # Inductor with freezing (weights constant: prepacked, fused with activations)
    from hinas_lib.inference import receptive_radius
    overlap = receptive_radius(net, cfg.task.channels)  # on the eager copy: the probe needs gradients
    net = torch.compile(net, options={"freezing": True})
if variant == "onnxruntime":
    import os, tempfile
    import onnxruntime as ort
    from hinas_lib.inference import receptive_radius
    overlap = receptive_radius(net, cfg.task.channels)
    net = net.to(memory_format=torch.contiguous_format)  # ONNX is NCHW
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "net.onnx")
        dims = {2: torch.export.Dim("h", min=8, max=1 << 15), 3: torch.export.Dim("w", min=8, max=1 << 15)}
        torch.onnx.export(net, (torch.rand(1, cfg.task.channels, 64, 64),), path, dynamo=True,
                          input_names=["x"], output_names=["y"], dynamic_shapes=(dims,), verbose=False)
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    export_s = time.perf_counter() - t0
    net = lambda t: torch.from_numpy(sess.run(None, {"x": t.contiguous().numpy()})[0])
probe = torch.rand(1, cfg.task.channels, 64, 64)
executed_px = (count_executed_macs(net, probe) / 64 ** 2  # what this path runs (a plan composes some convs)
               if count_executed_macs and variant not in ("compiled", "onnxruntime") else None)
matmul = matmul_gmac_s()
x = torch.rand(1, cfg.task.channels, h, w, generator=torch.Generator().manual_seed(0))
with torch.no_grad():
    if variant != "compiled":  # (compiling for that shape would be wasted: its compile time is counted)
        tiled_forward(net, x[..., :96, :96], tile=tile, overlap=overlap)  # oneDNN primitives, receptive radius
    r0 = resource.getrusage(resource.RUSAGE_SELF); t0 = time.perf_counter()
    y = tiled_forward(net, x, tile=tile, overlap=overlap)
    wall = time.perf_counter() - t0; r1 = resource.getrusage(resource.RUSAGE_SELF)
    t1 = time.perf_counter()
    tiled_forward(net, x, tile=tile, overlap=overlap)  # again: compiled, no compile time
    again = time.perf_counter() - t1
print(json.dumps({"variant": variant, "threads": threads, "wall_s": wall, "again_s": again, "export_s": export_s,
                  "user_s": r1.ru_utime - r0.ru_utime,
                  "sys_s": r1.ru_stime - r0.ru_stime, "max_rss_mib": r1.ru_maxrss / 1024,
                  "macs_per_px": macs_px, "executed_macs_per_px": executed_px, "useful_gmac_s": macs_px * w * h / wall / 1e9,
                  "useful_gmac_s_again": macs_px * w * h / again / 1e9,
                  "matmul_gmac_s": matmul, "checksum": float(y.double().mean())}))
"""


def run_point(variant: str, threads: int, model: str, size, tile: int, previous=None) -> Dict:
    from benchmarks.common import run_worker
    # previous: this worker's ``after`` on the other checkout's library (its own benchmarks.common)
    root = Path(previous) if variant == "previous" else ROOT
    p = run_worker(WORKER, ["after" if variant == "previous" else variant, threads, model, size[0], size[1], tile],
                   threads, root, variant)
    return {**p, "variant": variant}


def table(points: List[Dict]) -> str:
    lines = ["| threads | variant | wall s | user s | system s | max RSS MiB | useful G MAC/s | K MAC/px run "
             "| matmul G MAC/s | fraction of matmul | the same image again in the process: s, fraction |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        again = (f"{p['again_s']:.2f}, {p['useful_gmac_s_again'] / p['matmul_gmac_s']:.2f}" if "again_s" in p else "-")
        run = f"{p['executed_macs_per_px'] / 1000:.0f}" if p.get("executed_macs_per_px") else "-"
        lines.append(f"| {p['threads']} | {p['variant']} | {p['wall_s']:.2f} | {p['user_s']:.2f} | {p['sys_s']:.2f} | "
                     f"{p['max_rss_mib']:.0f} | {p['useful_gmac_s']:.1f} | {run} | {p['matmul_gmac_s']:.1f} | "
                     f"{p['useful_gmac_s'] / p['matmul_gmac_s']:.2f} | {again} |")
    return "\n".join(lines)


def wall(points: List[Dict], threads: int, variant: str, key: str = "wall_s") -> float:
    """A variant's time at a thread count, summed over the repeats (``key``: ``wall_s`` or ``again_s``)."""
    return sum(p[key] for p in points if p["threads"] == threads and p["variant"] == variant)


def _version(package: str) -> str:
    from importlib.metadata import version
    return version(package)


def main(argv=None) -> Dict:
    from benchmarks.common import machine_info, report_and_save, revision
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="denoise-s30", help="a zoo name or a model.pt")
    ap.add_argument("--size", default="1600x1200", help="WxH of the (synthetic) grey photograph")
    ap.add_argument("--tile", type=int, default=512, help="restore's default tile")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--variants", default="before,after",
                    help="comma-separated: before, eager, previous, after (what restore runs), "
                         "compiled (eager + torch.compile), onnxruntime (eager exported to ONNX, run by ONNX Runtime)")
    ap.add_argument("--previous", default=None, metavar="DIR",
                    help="another checkout of this project: adds the previous variant (its restore path)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    variants = a.variants.split(",")
    unknown = set(variants) - {"before", "eager", "previous", "after", "compiled", "onnxruntime"}
    if unknown:
        ap.error(f"--variants: unknown {', '.join(sorted(unknown))}")
    if "onnxruntime" in variants:
        import importlib.util
        missing = [m for m in ("onnxruntime", "onnxscript") if importlib.util.find_spec(m) is None]
        if missing:
            ap.error(f"the onnxruntime variant needs {' and '.join(missing)}: pip install onnxruntime onnxscript")
    if "previous" in variants and not (a.previous and (Path(a.previous) / "hinas_lib").is_dir()):
        ap.error("the previous variant needs --previous DIR, a checkout of this project")
    try:
        size = tuple(int(v) for v in a.size.lower().split("x"))
        assert len(size) == 2 and min(size) > 0
    except (ValueError, AssertionError):
        ap.error(f"--size: expected WxH, e.g. 1600x1200, got {a.size!r}")
    from hinas_lib.zoo import resolve_model
    model = str(resolve_model(a.model))
    machine = machine_info(max(a.threads))  # the load before the runs
    points = []
    for _ in range(a.repeats):
        for t in a.threads:
            for v in variants:
                p = run_point(v, t, model, size, a.tile, a.previous)
                print(json.dumps(p), flush=True)
                points.append(p)
    same = {round(p["checksum"], 5) for p in points}
    res = {"machine": machine, "model": a.model, "size": list(size), "tile": a.tile,
           **({"previous": revision(a.previous)} if a.previous else {}),
           **({"onnxruntime": _version("onnxruntime")} if "onnxruntime" in variants else {}),
           "points": points, "table": table(points),
           "ratios": {str(t): {f"{v} / after wall": wall(points, t, v) / wall(points, t, "after")
                               for v in variants if v != "after" and wall(points, t, "after")}
                      for t in a.threads},
           "outputs_agree": len(same) == 1}
    return report_and_save(res, a.json)


if __name__ == "__main__":
    main()
