"""The layers are written down (``.importlinter``) and checked, and the package has no
import cycle, counting the imports made inside functions.

grimp (under import-linter) reads every ``import`` statement of a module, at the top
or inside a function; only imports for type checking are left out, since they never
run. ``.ci/run`` runs ``lint-imports`` too; these tests keep the check in the inner loop.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from helpers import ROOT


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("workerctl", exclude_type_checking_imports=True)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(edges) + 100))
    try:
        for v in sorted(edges):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return found


def test_no_import_cycle_in_the_package(graph):
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert cycles(edges) == []


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import(tmp_path, monkeypatch):
    """The check itself: a cycle closed only by an import inside a function is found."""
    package = tmp_path / "cyclepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def f():\n    from cyclepkg import high\n    return high\n")
    (package / "high.py").write_text("from cyclepkg import low\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    small = grimp.build_graph("cyclepkg", cache_dir=None)
    edges = {m: set(small.find_modules_directly_imported_by(m)) for m in small.modules}
    assert cycles(edges) == [["cyclepkg.high", "cyclepkg.low"]]


def test_function_level_imports_are_in_the_graph(graph):
    """The layers contract counts them: the group imports the plugin manager only
    inside the function that looks up a plugin's command."""
    details = graph.get_import_details(importer="workerctl.cli.root", imported="workerctl.plugins.manager")
    assert details and all(d["line_contents"].startswith("from ") for d in details)


def test_every_module_a_contract_names_exists(graph):
    """import-linter passes a layer that names no module: a module moved without its
    contract would leave the layer unchecked, silently."""
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    layers = config["importlinter:contract:layers"]["layers"].split()
    named = {m for m in layers if m.startswith("workerctl")}
    assert named and all(m in graph.modules for m in named), sorted(named - set(graph.modules))


def test_the_import_contracts_are_kept():
    script = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(script), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
