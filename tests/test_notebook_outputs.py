"""The committed notebooks, read as files (nothing is run): the results they
show must be HiNAS beating its baseline, with where the numbers come from, and
they must be saved in the normalised form that opens clean in JupyterLab."""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
RESULTS_TAG = "results-table"      # the cell's tag; its first line also says "# RESULTS TABLE"
# the notebooks whose results tables are checked, and the baseline each must beat
TABLES = {"05_derive_and_retrain.ipynb": "NLM", "06_super_resolution.ipynb": "bicubic"}


def load(name):
    return json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))


def cell_text(cell):
    return "".join("".join(o.get("text", "")) for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def results_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code" and RESULTS_TAG in c.get("metadata", {}).get("tags", [])]


def parse_tables(text):
    """Every evaluate.format_table in ``text``: a list of {column label: mean PSNR}."""
    tables, labels = [], None
    for line in text.splitlines():
        if "PSNR/SSIM" in line and line.startswith("image"):
            labels = re.findall(r"(\S+) PSNR/SSIM", line)
        elif labels and line.startswith("MEAN"):
            psnr = [float(a) for a, _ in re.findall(r"([\d.]+) / ([\d.]+)", line)]
            assert len(psnr) == len(labels), line
            tables.append(dict(zip(labels, psnr)))
            labels = None
    return tables


def test_parser_reads_a_format_table():
    text = ("image                          noisy PSNR/SSIM         NLM PSNR/SSIM       HiNAS PSNR/SSIM\n"
            "-------\n"
            "camera                          19.24 / 0.3195        27.07 / 0.7239        28.00 / 0.7755\n"
            "MEAN                            19.22 / 0.3102        27.23 / 0.7718        28.43 / 0.8257\n")
    assert parse_tables(text) == [{"noisy": 19.22, "NLM": 27.23, "HiNAS": 28.43}]


@pytest.mark.parametrize("name,baseline", sorted(TABLES.items()))
def test_committed_results_show_hinas_above_its_baseline_with_provenance(name, baseline):
    cells = results_cells(load(name))
    assert cells, f"{name}: no cell tagged {RESULTS_TAG!r}"
    for cell in cells:
        assert "".join(cell["source"]).startswith("# RESULTS TABLE"), "the tagged cell says what it is"
        text = cell_text(cell)
        assert "shipped model (zoo/" in text and ("CPU-minutes" in text or "CPU-hours" in text), \
            f"{name}: no provenance line in\n{text}"
        tables = parse_tables(text)
        assert tables, f"{name}: no results table in the tagged cell's output:\n{text}"
        for t in tables:
            assert baseline in t and "HiNAS" in t, t
            for other, value in t.items():
                if other != "HiNAS":
                    assert t["HiNAS"] > value, f"{name}: HiNAS {t['HiNAS']} dB is not above {other} {value} dB"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("0*.ipynb")), ids=lambda p: p.name)
def test_committed_notebooks_are_normalised(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert "widgets" not in nb["metadata"], "saved widget state: run scripts/normalize_notebooks.py"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    # the full language_info ipykernel reports: a shorter one makes JupyterLab mark the notebook unsaved
    assert nb["metadata"]["language_info"].get("codemirror_mode") == {"name": "ipython", "version": 3}
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    for c in code:
        for o in c["outputs"]:
            assert o["output_type"] != "error", f"{path.name}: an error output was committed"
            assert "application/vnd.jupyter.widget-view+json" not in o.get("data", {})
    md = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "## Summary" in md and "## Exercises" in md, f"{path.name}: every notebook ends with Summary and Exercises"


# JupyterLab breaks a longer output line anywhere, mid-word or mid-number: a 1400 px window
# with the file browser open shows about 120 columns (checked in headless Chromium)
MAX_OUTPUT_LINE = 110


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("0*.ipynb")), ids=lambda p: p.name)
def test_committed_output_lines_fit_a_1400_px_window(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    long = []
    for i, cell in enumerate(nb["cells"]):
        for o in cell.get("outputs", []):
            text = o.get("text") or o.get("data", {}).get("text/plain", "")
            long += [f"cell {i}: {line[:80]}... ({len(line)} characters)"
                     for line in "".join(text).splitlines() if len(line) > MAX_OUTPUT_LINE]
    assert not long, f"{path.name}: output lines longer than {MAX_OUTPUT_LINE}:\n" + "\n".join(long)


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("0*.ipynb")), ids=lambda p: p.name)
def test_every_exercise_builds_a_function_that_a_check_runs(path):
    """Exercises build: each numbered exercise has a `my_*` stub the learner fills in and an
    `exercises.check_*` call that runs it; the committed outputs show every check saying
    "not answered yet" for the stubs (a check a stub passed could not fail)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    start = next(i for i, c in enumerate(cells) if "## Exercises" in "".join(c["source"]))
    end = next(i for i, c in enumerate(cells) if "".join(c["source"]).startswith("## Quiz"))
    text = "".join(cells[start]["source"]).split("## Exercises", 1)[1]
    items = re.findall(r"^(\d+)\. \*\*", text, re.M)
    assert len(items) >= 2 and items == [str(k) for k in range(1, len(items) + 1)], items
    code = [c for c in cells[start + 1:end] if c["cell_type"] == "code"]
    source = "\n".join("".join(c["source"]) for c in code)
    stubs = re.findall(r"^def (my_\w+)\(", source, re.M)
    checked = re.findall(r"^exercises\.check_\w+\((my_\w+)", source, re.M)
    assert sorted(stubs) == sorted(checked) and len(checked) == len(items), (stubs, checked, items)
    assert not any("answer_" in "".join(c["source"]) for c in cells if c["cell_type"] == "code"), \
        "a number-answer exercise is left"
    printed = [line for c in code if "exercises.check_" in "".join(c["source"])
               for o in c["outputs"] for line in "".join(o.get("text", "")).splitlines()]
    assert printed == ["not answered yet"] * len(checked), printed
