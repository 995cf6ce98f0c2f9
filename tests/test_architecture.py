"""The library's shape: its import graph has no cycle, nothing imports upwards by the
back door (a function-local import), the task is asked rather than tested by name,
and the cell the course teaches stays readable."""
from __future__ import annotations

import ast
import re
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "hinas_lib"

# function-local imports that are allowed, and why (none of them dodges a cycle)
LOCAL_IMPORTS_ALLOWED = {
    ("course", "widgets"): "ipywidgets is an optional extra",
    ("liveplot", "widgets"): "ipywidgets is an optional extra",
    ("__main__", "cli"): "Ctrl-C while torch imports must not print a traceback",
}


def _imports():
    """module -> (top-level library imports, function-local library imports); a subpackage
    (``tasks/``) is one module, the imports of all its files together."""
    mods = {p.stem: [p] for p in PKG.glob("*.py")}
    mods.update({d.name: sorted(d.glob("*.py")) for d in PKG.iterdir() if (d / "__init__.py").is_file()})
    out = {}
    for name, paths in mods.items():
        top, local = set(), set()
        for path in paths:
            up = 1 if path.parent == PKG else 2  # the relative level that names the library
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.level == up:
                    targets = [node.module] if node.module else [a.name for a in node.names]
                    for t in targets:
                        t = t.split(".")[0]
                        if t in mods and t != name:
                            (local if node.col_offset > 0 else top).add(t)
        out[name] = (top, local)
    return out


def test_the_import_graph_has_no_cycle():
    graph = {m: top | local for m, (top, local) in _imports().items()}
    state = {}

    def visit(m, stack):
        state[m] = "open"
        for n in sorted(graph[m]):
            assert state.get(n) != "open", f"import cycle: {' -> '.join(stack + [m, n])}"
            if n not in state:
                visit(n, stack + [m])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_no_function_local_imports_but_the_listed_ones():
    found = {(m, t) for m, (_, local) in _imports().items() for t in local}
    assert found <= set(LOCAL_IMPORTS_ALLOWED), sorted(found - set(LOCAL_IMPORTS_ALLOWED))


def test_the_task_is_an_object_not_a_name_tested_everywhere():
    pattern = re.compile(r"""task(?:\.task)?\s*[!=]=\s*["']|["'](?:denoise|sr)["']\s*[!=]=""")
    hits = [(p.name, i + 1) for p in PKG.glob("*.py") if p.name != "tasks.py"
            for i, line in enumerate(p.read_text().splitlines()) if pattern.search(line)]
    assert len(hits) <= 3, hits


def test_the_teaching_cell_is_short_and_the_fast_path_lives_elsewhere():
    text = (PKG / "cells.py").read_text()
    assert len(text.splitlines()) <= 250
    assert "_ConvsBN" not in text and "PERF" not in text


def test_no_module_level_perf_switch():
    for p in PKG.glob("*.py"):
        tree = ast.parse(p.read_text())
        for node in tree.body:
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    assert not (isinstance(t, ast.Name) and t.id in ("PERF", "PERF_OPTIONS")), p.name


# the README's layers: engines compute and write run files; front ends draw, talk and teach
ENGINE_MODULES = {"runfiles", "designs", "runs", "engine", "schedules", "validation", "inference", "search", "train",
                  "evaluate", "distributed", "supernet", "supernet_base", "network", "model_files", "authors", "cells",
                  "fused", "derive", "genotype", "config", "tasks", "data", "splits", "datasets", "streams",
                  "checkpoint", "runtime"}
FRONT_ENDS = {"viz", "graphs", "plots", "history", "widgets", "liveplot", "explorers", "course", "fastmode", "text",
              "provenance", "ablation", "cli", "demo", "describe", "profiling", "exercises"}


def test_engines_never_import_front_ends():
    """A figure, a widget or a message is the front end's: the engines hand it hooks
    (e.g. ``Searcher(write_figures=viz.write_search_figures)``) instead of importing it."""
    imports = _imports()
    assert ENGINE_MODULES <= set(imports), sorted(ENGINE_MODULES - set(imports))
    assert FRONT_ENDS <= set(imports), sorted(FRONT_ENDS - set(imports))
    found = {(m, t) for m in ENGINE_MODULES for t in imports[m][0] | imports[m][1] if t in FRONT_ENDS}
    assert not found, sorted(found)


def test_the_design_is_looked_up_not_tested_by_name():
    """Only the two classes that refuse to be built for another design name one."""
    pattern = re.compile(r"""style\s*[!=]=\s*["']|["'](?:authors|compact)["']\s*[!=]=\s*\S*style""")
    hits = [(p.name, i + 1) for p in PKG.glob("*.py") if p.name != "designs.py"
            for i, line in enumerate(p.read_text().splitlines()) if pattern.search(line)]
    assert {name for name, _ in hits} <= {"network.py", "supernet.py"} and len(hits) <= 2, hits


def test_viz_only_re_exports():
    """``viz`` is one namespace for notebooks and users; each figure lives in the module of its concept."""
    doc, *rest = ast.parse((PKG / "viz.py").read_text()).body
    assert isinstance(doc, ast.Expr)  # the docstring, which says where each concept lives
    for node in rest:
        if isinstance(node, ast.ImportFrom):
            assert node.module == "__future__" or (node.level == 1 and node.module in {"graphs", "plots", "history"})
        else:
            assert isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["__all__"], node.lineno


def test_every_subpackage_is_listed_for_installation():
    # pyproject lists packages explicitly: a subpackage missing there is absent from a
    # non-editable install (pip install .), though every test here still passes
    import tomllib
    listed = set(tomllib.loads((PKG.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(PKG.parent).parts) for p in PKG.rglob("__init__.py")}
    assert found == listed, (found, listed)
