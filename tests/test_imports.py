"""The import graph of harness/ and simulator/: no cycles, and the report is one-way.

Built from the source with the ast module (nothing is imported): every ``import`` and
``from ... import`` anywhere in a module, function-level ones included, but not those
under ``if TYPE_CHECKING:`` (they never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "simulator")

# Cycles that exist today, each to be broken by the one who owns it. A new cycle fails
# the test; so does a listed one that is gone (then delete it from here).
KNOWN_CYCLES = {
    # process imports migration_io inside functions and migration_io imports process
    # inside functions (Fatal, listen): one module's job split in two.
    frozenset({"simulator.migration_io", "simulator.process"}),
}

# The report pipeline in layers: a module may import only from layers before its own.
REPORT_LAYERS = [
    {"results"},
    {"catalog", "compare", "artifacts", "plots", "record"},
    {"hookspecs", "page"},
    {"overview", "detail"},
    {"html"},
    {"writer"},
]


def _modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except the bodies of ``if TYPE_CHECKING:`` blocks."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of harness/ and simulator/ it imports at run time."""
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        names: list[str] = []
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([base] if base else [])])
                names += [f"{base}.{a.name}" for a in node.names]
        graph[module] = {r for n in names if (r := resolve(n)) and r != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_graph_sees_imports() -> None:
    """The graph is built from real imports (a check that cannot fail is no check).

    1. The plugin imports the report's writer; the writer imports the HTML renderer.
    2. A function-level import counts: cli imports the writer inside a command.
    3. A TYPE_CHECKING import does not count (simulator.model.vm -> world).
    """
    graph = import_graph()
    assert "harness.report.writer" in graph["harness.pytest_plugin"]
    assert "harness.report.html" in graph["harness.report.writer"]
    assert "harness.report.writer" in graph["harness.cli"]
    assert "simulator.model.world" not in graph["simulator.model.vm"]
    assert "simulator.model.vm" in graph["simulator.model.world"]


def test_no_import_cycles() -> None:
    """No module of harness/ or simulator/ imports itself through others.

    1. Every import cycle is one of KNOWN_CYCLES (none of them in harness/).
    2. Every known cycle still exists (a fixed one is deleted from the list).
    """
    found = set(cycles(import_graph()))
    assert sorted(map(sorted, found - KNOWN_CYCLES)) == []
    assert sorted(map(sorted, KNOWN_CYCLES - found)) == []
    assert not any(m.startswith("harness.") for c in KNOWN_CYCLES for m in c)


def test_report_is_a_one_way_pipeline() -> None:
    """harness/report flows from the results model to the HTML writer, never back.

    1. Each report module imports only report modules of earlier layers (results.py and
       the catalog know nothing of HTML; only the writer calls the renderer).
    2. Every report module is in a layer.
    3. Nothing in harness/ imports the suites (the catalog arrives through a hook).
    """
    graph = import_graph()
    layer = {name: i for i, names in enumerate(REPORT_LAYERS) for name in names}
    report = {m: deps for m, deps in graph.items() if m.startswith("harness.report.")}
    assert sorted(m.rpartition(".")[2] for m in report) == sorted(layer)
    for module, deps in report.items():
        mine = layer[module.rpartition(".")[2]]
        for dep in deps:
            if dep.startswith("harness.report."):
                assert layer[dep.rpartition(".")[2]] < mine, f"{module} imports {dep}"
    for path in (REPO / "harness").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                names.append(getattr(node, "module", None) or "")
                assert not any(n.split(".")[0] == "suites" for n in names), path
