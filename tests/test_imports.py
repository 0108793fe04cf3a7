"""The architecture's one-way rules, read from the source with ``ast`` (nothing is imported):

- no import cycle among tickcast's modules, counting every import: module-level, function-local and
  ``TYPE_CHECKING`` ones, and the package ``__init__`` that importing a submodule runs first;
- ``models/`` (``tickcast.models``) never imports the service or the migrations."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The installed package names of the repository's folders (pyproject.toml's package-dir).
PACKAGES = {
    "tickcast": REPO / "service" / "_tickcast",
    "tickcast.service": REPO / "service",
    "tickcast.models": REPO / "models",
    "tickcast.migrations": REPO / "migrations",
}


def modules(packages: dict[str, Path]) -> dict[str, Path]:
    """Every module of tickcast by its dotted name."""
    found = {}
    for package, folder in packages.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("").parts
            if any(part.startswith("_") and part != "__init__" for part in rel[:-1]) or (
                package == "tickcast.service" and rel and rel[0] == "_tickcast"
            ):
                continue  # service/_tickcast is the package "tickcast", listed on its own
            parts = list(rel[:-1]) if rel[-1] == "__init__" else list(rel)
            found[".".join([package, *parts])] = path
    return found


def _resolve(name: str, known: set[str]) -> str | None:
    """The module ``name`` refers to (a module, or the module defining that attribute)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _with_parents(name: str, known: set[str]) -> set[str]:
    """Importing ``a.b.c`` runs ``a`` and ``a.b`` (their ``__init__``) first."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & known


def import_graph(packages: dict[str, Path] = PACKAGES) -> dict[str, set[str]]:
    """module -> the modules importing it runs (explicitly, and the packages above them)."""
    mods = modules(packages)
    known = set(mods)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        own = _with_parents(name, known)  # already running when this module runs
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    module = f"{base}.{node.module}" if node.module else base
                else:
                    module = node.module or ""
                candidates = [f"{module}.{alias.name}" for alias in node.names]
                targets |= _with_parents(module, known) - own  # ``from X import ...`` runs X first
            else:
                continue
            for candidate in candidates:
                target = _resolve(candidate, known) if candidate.startswith("tickcast") else None
                if target is not None:  # the module imported, or the one whose attribute is read
                    targets |= {target} | (_with_parents(target, known) - own)
        graph[name] = targets - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_every_kind_of_import(tmp_path):
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "def f():\n    from .c import g\n",  # function-local
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .sub.d import X\n",
        "sub/__init__.py": "from ..a import thing\n",  # runs whenever pkg.sub.d is imported
        "sub/d.py": "import os\n",
        "sub/e.py": "from . import d\nfrom .. import a\n",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    graph = import_graph({"tickcast.x": root})
    assert graph["tickcast.x.a"] == {"tickcast.x.b"}
    assert graph["tickcast.x.b"] == {"tickcast.x.c"}
    assert graph["tickcast.x.c"] == {"tickcast.x.sub", "tickcast.x.sub.d"}
    assert graph["tickcast.x.sub"] == {"tickcast.x.a"}
    assert graph["tickcast.x.sub.e"] == {"tickcast.x.sub.d", "tickcast.x.a"}
    assert cycles(graph) == [["tickcast.x.a", "tickcast.x.b", "tickcast.x.c", "tickcast.x.sub"]]


def test_the_real_graph_is_read():
    graph = import_graph()
    assert "tickcast.service.run.plan" in graph["tickcast.service.run.cycle"]  # module level
    assert "tickcast.service.run.cycle" in graph["tickcast.service.cli"]  # function-local
    assert "tickcast.service.run" in graph["tickcast.service.cli"]  # the package a submodule import runs


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles among tickcast's modules:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_cycle_detection_finds_a_planted_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", ["tickcast.service", "tickcast.migrations"])
def test_models_never_import_the_service(name):
    graph = import_graph()
    offenders = {m: sorted(t for t in targets if t.startswith(name)) for m, targets in graph.items()}
    offenders = {m: t for m, t in offenders.items() if m.startswith("tickcast.models") and t}
    assert not offenders, offenders


def test_test_modules_take_helpers_from_tests_support_only():
    """A helper used by several test files lives in tests/support/ (or tests/reliability/scenario.py),
    never in another test module: importing a test module runs its fixtures and tests' imports."""
    offenders = []
    for path in (REPO / "tests").rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1].startswith("test_"):
                offenders.append(f"{path.relative_to(REPO)}: from {'.' * node.level}{node.module}")
    assert not offenders, offenders
