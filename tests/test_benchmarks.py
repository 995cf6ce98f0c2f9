"""The benchmark scripts run and report what they promise (at toy size; the figures
themselves live in benchmarks/RESULTS.md, never in assertions on time)."""
import json
from pathlib import Path

import pytest

from benchmarks import report, search_step


@pytest.mark.slow
def test_search_step_writes_the_documented_json(tmp_path):
    out = tmp_path / "search_step_denoise.json"
    res = search_step.main(["--preset", "tiny", "--threads", "1", "--iters", "1", "--warmup", "0",
                            "--variants", "default,no-sharing,checkpoint", "--json", str(out)])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(res))
    assert saved["variant"] == "default" and saved["iter_s_median"] > 0 and saved["peak_mem_mib"] > 0
    assert set(saved["variants"]) == {"no-sharing", "checkpoint"}
    # memory is measured, not assumed: checkpointing keeps fewer activations, no-sharing more
    assert saved["variants"]["checkpoint"]["peak_mem_mib"] < saved["peak_mem_mib"]
    assert saved["variants"]["no-sharing"]["peak_mem_mib"] > saved["peak_mem_mib"]
    # no-sharing has one cell per incoming path: more weights for the same space
    assert saved["variants"]["no-sharing"]["weight_params"] > saved["variants"]["checkpoint"]["weight_params"]
    assert "no-sharing / default" in saved["ratios"]
    # the roofline: the default step's useful multiply-adds per second, below a matmul's rate
    roof = saved["roofline"]
    assert roof["forward_macs"] > 0 and roof["useful_macs_per_iter"] == 5 * roof["forward_macs"]
    assert 0 < roof["useful_gmac_s"] < roof["matmul_gmac_s"]

    page = report.build(tmp_path)
    assert "Search iteration, paper denoising config" in page and "| default |" in page
    assert "**Roofline** (`default`)" in page
    assert "no GPU machine was lent" in page  # no gpu_check.md in the folder


def test_thread_scaling_sections_per_machine(tmp_path):
    """The committed thread-scaling files (Intel Xeon, and the same commands on an AMD EPYC) each give
    a section with its own command; the EPYC block ends with its ratios, read from those files."""
    import shutil
    results = Path(report.__file__).parent / "results"
    for name in ("search_step_denoise_t1.json", "search_step_sr_t2_epyc.json", "search_step_denoise_t1_epyc.json"):
        shutil.copy(results / name, tmp_path / name)
    page = report.build(tmp_path)
    assert "## Thread scaling: search iteration, paper-denoise, 1 thread(s), ours (default) against" in page
    assert "## Thread scaling on an AMD EPYC: search iteration, paper-sr, 2 thread(s), ours against" in page
    assert "--json benchmarks/results/search_step_sr_t2_epyc.json`" in page
    sr = json.loads((tmp_path / "search_step_sr_t2_epyc.json").read_text())
    q = sr["ratios"]["authors-code / default"]["iter_s_median"]
    assert (f"Time ratios on an AMD EPYC (authors' code / ours, each from its own interleaved run): paper-denoise "
            f"at 1 thread(s) ") in page and f"paper-sr at 2 thread(s) {q:.2f}x." in page


@pytest.mark.slow
def test_before_times_another_checkout_side_by_side(tmp_path):
    # another checkout of the project (here a copy of this one): its own worker runs its own code
    import shutil
    from pathlib import Path
    root = Path(search_step.__file__).resolve().parents[1]
    other = tmp_path / "other"
    for part in ("hinas_lib", "benchmarks"):
        shutil.copytree(root / part, other / part, ignore=shutil.ignore_patterns("state", "results", "__pycache__"))
    res = search_step.main(["--preset", "tiny", "--threads", "1", "--iters", "1", "--warmup", "0",
                            "--variants", "default,before", "--before", str(other)])
    assert res["variants"]["before"]["iter_s_median"] > 0
    assert res["variants"]["before"]["peak_mem_mib"] == pytest.approx(res["peak_mem_mib"], rel=0.05)  # same code
    assert "before / default" in res["ratios"]
    with pytest.raises(SystemExit, match="needs --before DIR"):
        search_step.main(["--preset", "tiny", "--variants", "default,before", "--before", str(tmp_path / "nowhere")])


def test_unknown_variant_is_refused():
    with pytest.raises(SystemExit, match="unknown variant"):
        search_step.main(["--preset", "tiny", "--variants", "default,turbo"])


@pytest.mark.slow
def test_gpu_check_runs_its_cpu_smoke_path(tmp_path, monkeypatch):
    import torch
    if torch.cuda.is_available():
        pytest.skip("on a CUDA machine this is the real (minutes-long) check")
    from benchmarks import gpu_check
    monkeypatch.setenv("OUT", str(tmp_path))
    assert gpu_check.main([]) == 0
    text = (tmp_path / "gpu_check.md").read_text()
    assert "CUDA is not available" in text and "Retraining (smoke)" in text


def test_profile_step_accounts_for_the_whole_iteration(tmp_path):
    from benchmarks import profile_step
    out = tmp_path / "profile_step_denoise.json"
    profile_step.main(["--preset", "tiny", "--threads", "1", "--json", str(out)])
    saved = json.loads(out.read_text())
    shares = [g["share"] for g in saved["groups"].values()]
    assert sum(shares) == pytest.approx(1.0)
    assert sum(g["s"] for g in saved["groups"].values()) == pytest.approx(saved["total_s"])
    assert "convolutions (forward + backward)" in saved["groups"]
    assert profile_step.group_of("aten::native_batch_norm_backward").startswith("BatchNorm")
    assert profile_step.group_of("aten::mkldnn_convolution").startswith("convolutions")
    page = report.build(tmp_path)
    assert "Where our search step's time goes" in page and "What would close the gap" in page


def test_goal_is_judged_only_against_a_side_by_side_run():
    fake = {"ratios": {"authors-code / default": {"iter_s_median": 2.2, "peak_mem_mib": 3.63}}}
    line = " ".join(report._goal(fake))
    assert "time 2.20x less (not met)" in line and "0.28x theirs (met)" in line
    fake["ratios"]["authors-code / default"] = {"iter_s_median": 3.1, "peak_mem_mib": 1.5}
    line = " ".join(report._goal(fake))
    assert "3.10x less (met)" in line and "0.67x theirs (not met)" in line
    assert report._goal({"ratios": {"checkpoint / default": {"iter_s_median": 1.2}}}) == []


def test_restore_speed_runs_its_workers_and_the_variants_agree(tmp_path):
    """benchmarks.restore_speed: each variant in its own process on a zoo model, tiled, with the
    matmul it is compared to; the eager copy and the planned pass give the same image."""
    from benchmarks import restore_speed
    out = tmp_path / "restore_speed.json"
    res = restore_speed.main(["--model", "denoise-s50", "--size", "96x80", "--tile", "48", "--threads", "1",
                              "--variants", "eager,after", "--json", str(out)])
    assert json.loads(out.read_text())["outputs_agree"] and res["outputs_agree"]
    assert [p["variant"] for p in res["points"]] == ["eager", "after"]
    for p in res["points"]:
        assert p["macs_per_px"] > 100_000 and 0 < p["useful_gmac_s"] < p["matmul_gmac_s"]
    # the eager copy runs the network's multiply-adds; the plan fewer (leaf blocks and the
    # projection composed into convs), counted through its fused primitives
    eager, after = res["points"]
    assert eager["executed_macs_per_px"] == pytest.approx(eager["macs_per_px"])
    assert 0.5 * after["macs_per_px"] < after["executed_macs_per_px"] < 0.95 * after["macs_per_px"]
    page = report.build(tmp_path)
    assert "`restore` of a 96x80 grey photograph with `denoise-s50`" in page and "--tile 48" in page


def test_restore_speed_previous_runs_another_checkouts_restore_path(tmp_path):
    from benchmarks import restore_speed
    root = Path(restore_speed.ROOT)
    with pytest.raises(SystemExit):  # the previous variant without a checkout to run it from
        restore_speed.main(["--size", "96x80", "--variants", "previous,after"])
    # this checkout as the "previous" one: the same restore path in another process, same image
    res = restore_speed.main(["--model", "denoise-s50", "--size", "96x80", "--tile", "48", "--threads", "1",
                              "--variants", "previous,after", "--previous", str(root)])
    assert [p["variant"] for p in res["points"]] == ["previous", "after"] and res["outputs_agree"]
    assert res["previous"] and set(res["ratios"]["1"]) == {"previous / after wall"}


def test_restore_speed_refuses_unknown_variants_and_a_missing_onnxruntime(monkeypatch, capsys):
    import importlib.util

    from benchmarks import restore_speed
    with pytest.raises(SystemExit):
        restore_speed.main(["--size", "96x80", "--variants", "after,onnx"])
    assert "unknown onnx" in capsys.readouterr().err
    real = importlib.util.find_spec
    # neither optional package installed (as in CI), then only one of them
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("onnxruntime", "onnxscript") else real(name, *a))
    with pytest.raises(SystemExit):
        restore_speed.main(["--size", "96x80", "--variants", "after,onnxruntime"])
    assert "needs onnxruntime and onnxscript: pip install onnxruntime onnxscript" in capsys.readouterr().err
    found = {"onnxruntime": object(), "onnxscript": None}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: found[name] if name in found else real(name, *a))
    with pytest.raises(SystemExit):
        restore_speed.main(["--size", "96x80", "--variants", "after,onnxruntime"])
    assert "needs onnxscript: pip install onnxruntime onnxscript" in capsys.readouterr().err


def test_restore_speed_onnxruntime_variant_matches_the_planned_pass(tmp_path):
    """The ONNX Runtime variant (optional packages): the network exported at 64x64 runs tiles of other
    sizes through one session (dynamic height and width) and gives restore's image; the page judges
    it per thread count."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from benchmarks import restore_speed
    res = restore_speed.main(["--model", "denoise-s50", "--size", "96x80", "--tile", "48", "--threads", "1",
                              "--variants", "after,onnxruntime"])
    assert res["outputs_agree"] and res["onnxruntime"]
    ort = res["points"][1]
    assert ort["variant"] == "onnxruntime" and ort["export_s"] > 0 and ort["executed_macs_per_px"] is None
    (tmp_path / "restore_speed_onnx_s30.json").write_text(json.dumps(res))
    page = report.build(tmp_path)
    assert "## ONNX Runtime against `restore`: a 96x80 grey photograph with `denoise-s50`" in page
    assert "Against the planned pass it is " in page and " at 1 thread(s)" in page


def test_train_step_times_the_trainers_step_on_this_and_another_checkout(tmp_path):
    from benchmarks import train_step
    root = Path(train_step.ROOT)
    with pytest.raises(SystemExit):
        train_step.main(["--previous", str(tmp_path)])  # not a checkout
    out = tmp_path / "train_step_s50.json"
    res = train_step.main(["--model", "denoise-s50", "--threads", "1", "--steps", "1", "--previous", str(root),
                           "--json", str(out)])
    assert [p["variant"] for p in res["points"]] == ["default", "previous"]
    for p in res["points"]:
        assert p["s_per_step"] > 0 and p["batch"] == 16 and p["crop"] == 48 and p["params"] > 100_000
    assert set(res["ratios"]["1"]) == {"previous / default"} and res["ratios"]["1"]["previous / default"] > 0
    page = report.build(tmp_path)
    assert "## One retraining step of `denoise-s50`" in page and "--previous /tmp/previous" in page
