"""The import graph of harness/ and simulator/: no cycles, and the report is one-way.

Built from the source with the ast module (nothing is imported): every ``import`` and
``from ... import`` anywhere in a module, function-level ones included, but not those
under ``if TYPE_CHECKING:`` (they never run).
"""

from __future__ import annotations

import ast

from importgraph import ROOT as REPO
from importgraph import cycles, import_graph

PACKAGES = ("harness", "simulator")

# The report pipeline in layers: a module may import only from layers before its own.
REPORT_LAYERS = [
    {"results"},
    {"catalog", "compare", "artifacts", "plots", "record", "merge"},
    {"hookspecs", "page"},
    {"overview", "detail"},
    {"html"},
    {"writer"},
]


def full_graph() -> dict[str, set[str]]:
    """Both packages' runtime import graphs in one (they never import each other's
    modules in a cycle: the simulator does not import the harness at all)."""
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        graph.update(import_graph(package))
    return graph


def test_graph_sees_imports() -> None:
    """The graph is built from real imports (a check that cannot fail is no check).

    1. The plugin imports the report's writer; the writer imports the HTML renderer.
    2. A function-level import counts: cli_run imports the writer inside a command.
    3. A TYPE_CHECKING import does not count (simulator.model.vm -> world).
    """
    graph = full_graph()
    assert "harness.report.writer" in graph["harness.pytest_plugin"]
    assert "harness.report.html" in graph["harness.report.writer"]
    assert "harness.report.writer" in graph["harness.cli_run"]
    assert "simulator.model.world" not in graph["simulator.model.vm"]
    assert "simulator.model.vm" in graph["simulator.model.world"]


def test_harness_has_no_import_cycles() -> None:
    """No module of harness/ imports itself through others (simulator/: test_layering).

    1. The graph has the harness's edges (the plugin imports the machine factory).
    2. There is no cycle.
    """
    graph = import_graph("harness")
    assert "harness.fixtures" in graph["harness.pytest_plugin"]
    assert cycles(graph) == []


def test_report_is_a_one_way_pipeline() -> None:
    """harness/report flows from the results model to the HTML writer, never back.

    1. Each report module imports only report modules of earlier layers (results.py and
       the catalog know nothing of HTML; only the writer calls the renderer).
    2. Every report module is in a layer.
    3. Nothing in harness/ imports the suites (the catalog arrives through a hook).
    """
    graph = import_graph("harness")
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
