#!/usr/bin/env python
"""Execute (optionally) and normalise the course notebooks so that they are
committed with their outputs, open clean in JupyterLab (no "unsaved" marker)
and produce small diffs when regenerated.

What normalising does, and why:

* cell ids ``nbNN-cXX`` by position, execution counts 1, 2, 3, ... over the
  code cells: stable diffs (nbval needs a count on every cell with outputs);
* notebook metadata reduced to the ``python3`` kernelspec and exactly the
  ``language_info`` that ipykernel reports for this Python (JupyterLab writes
  the kernel's language_info into the notebook when the kernel starts, and any
  difference, even a missing ``codemirror_mode``, marks the notebook unsaved);
  cell metadata keeps only ``tags``;
* saved widget state (``metadata.widgets``) dropped, and each widget output
  replaced by a one-line text placeholder: the state holds random model ids
  and would be stale the moment the notebook opens (JupyterLab then marks it
  changed); widgets come alive when the cells run;
* memory addresses (``0x7f...``) in reprs blanked; consecutive stream outputs
  of one name merged (a progress bar's fallback splits them at random).

Usage::

    python scripts/normalize_notebooks.py notebooks/0*.ipynb            # normalise in place
    python scripts/normalize_notebooks.py --execute notebooks/0*.ipynb  # run (fast mode), then normalise
    python scripts/normalize_notebooks.py --check notebooks/0*.ipynb    # exit 1 if any is not normalised

``--execute`` runs each notebook top to bottom in its own folder with
``HINAS_FAST=1`` and ``HINAS_THREADS=1`` unless they are set, and with this
checkout first on ``PYTHONPATH`` (so its ``hinas_lib`` is the one imported).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Dict, List

import nbformat

REPO = Path(__file__).resolve().parent.parent
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
# what ipykernel sends (ipykernel/ipkernel.py language_info), for the Python running this script:
# run the script with the course's environment so that it matches the kernel
LANGUAGE_INFO = {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                 "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                 "pygments_lexer": "ipython3", "version": platform.python_version()}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
PROGRESS_TEXT = "[progress bar: a Jupyter widget, live while the notebook runs]"
WIDGET_TEXT = "[interactive widget: run the notebook to use it]"
ADDRESS = re.compile(r" at 0x[0-9a-f]{6,16}")


def _is_progress_bar(model_id: str, state: Dict) -> bool:
    """tqdm.auto draws an HBox holding a FloatProgress (or IntProgress)."""
    model = state.get(model_id, {})
    children = model.get("state", {}).get("children", [])
    ids = [c.replace("IPY_MODEL_", "") for c in children if isinstance(c, str)]
    return any(state.get(i, {}).get("model_name", "") in ("FloatProgressModel", "IntProgressModel") for i in ids)


def _placeholder(output: Dict, state: Dict) -> Dict:
    view = output["data"][WIDGET_VIEW]
    text = PROGRESS_TEXT if _is_progress_bar(view.get("model_id", ""), state) else WIDGET_TEXT
    return {"output_type": "display_data", "metadata": {}, "data": {"text/plain": text}}


def _clean_text(value):
    if isinstance(value, list):
        value = "".join(value)
    return ADDRESS.sub(" at 0x...", value)


def _clean_outputs(outputs: List[Dict], state: Dict, count: int) -> List[Dict]:
    cleaned: List[Dict] = []
    for out in outputs:
        out = copy.deepcopy(dict(out))
        kind = out.get("output_type")
        if kind in ("display_data", "execute_result"):
            if WIDGET_VIEW in out.get("data", {}):
                out = _placeholder(out, state)
            else:
                if kind == "execute_result":
                    out["execution_count"] = count
                out.pop("transient", None)  # display ids are random
                out["metadata"] = {k: v for k, v in out.get("metadata", {}).items() if k != "transient"}
                if "text/plain" in out.get("data", {}):
                    out["data"]["text/plain"] = _clean_text(out["data"]["text/plain"])
        elif kind == "stream":
            out["text"] = _clean_text(out["text"])
            if cleaned and cleaned[-1].get("output_type") == "stream" and cleaned[-1]["name"] == out["name"]:
                cleaned[-1]["text"] += out["text"]
                continue
        cleaned.append(out)
    return cleaned


def normalise(nb, number: str):
    """Return a normalised copy of notebook ``nb``; ``number`` ("01") prefixes the cell ids."""
    nb = copy.deepcopy(nb)
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata = nbformat.from_dict({"kernelspec": copy.deepcopy(KERNELSPEC),
                                      "language_info": copy.deepcopy(LANGUAGE_INFO)})
    count = 0
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"nb{number}-c{i:02d}"
        tags = cell.get("metadata", {}).get("tags")
        cell["metadata"] = nbformat.from_dict({"tags": list(tags)} if tags else {})
        if cell["cell_type"] == "code":
            count += 1
            cell["execution_count"] = count
            cell["outputs"] = [nbformat.from_dict(o) for o in _clean_outputs(cell.get("outputs", []), state, count)]
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
            if not cell.get("attachments"):
                cell.pop("attachments", None)
    return nb


def _number(path: Path) -> str:
    m = re.match(r"(\d+)", path.name)
    return m.group(1) if m else "00"


def execute(path: Path, timeout: int) -> nbformat.NotebookNode:
    """Run a notebook top to bottom in its folder with a python3 kernel."""
    from nbclient import NotebookClient  # noqa: PLC0415 (only for --execute)

    os.environ.setdefault("HINAS_FAST", "1")
    os.environ.setdefault("HINAS_THREADS", "1")
    # this checkout's library, not whichever one is installed in the environment
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(
        os.pathsep) if p])
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}, store_widget_state=True)
    client.execute()
    return nb


def _text(nb) -> str:
    return nbformat.writes(nb) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("notebooks", nargs="+", type=Path)
    ap.add_argument("--execute", action="store_true", help="run each notebook first (fast mode unless HINAS_FAST=0)")
    ap.add_argument("--check", action="store_true", help="only report notebooks that are not normalised")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per cell with --execute")
    args = ap.parse_args(argv)
    bad = 0
    for path in args.notebooks:
        original = path.read_text(encoding="utf-8")
        if args.execute:
            t0 = time.perf_counter()
            nb = execute(path, args.timeout)
            print(f"{path}: executed in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        else:
            nb = nbformat.reads(original, as_version=4)
        text = _text(normalise(nb, _number(path)))
        errors = [o for c in json.loads(text)["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
        if errors:
            print(f"{path}: has error outputs ({errors[0].get('ename')}: {errors[0].get('evalue')})", file=sys.stderr)
            bad += 1
        if args.check:
            if text != original:
                print(f"{path}: not normalised (run scripts/normalize_notebooks.py on it)", file=sys.stderr)
                bad += 1
        elif text != original:
            path.write_text(text, encoding="utf-8")
            print(f"{path}: written", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
