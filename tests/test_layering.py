"""Layering of the import packages, read from the source with ast (nothing is imported).

The simulator models a hypervisor host and must run without the harness that drives
real ones; within a package, modules import in one direction (no cycles).
"""

from __future__ import annotations

from pathlib import Path

from importgraph import cycles, import_graph, imports, modules


def test_simulator_never_imports_harness() -> None:
    """The simulator stands alone.

    1. The simulator package has modules to check (the walk found them).
    2. No module under simulator/ imports harness, anywhere in the file (module level,
       inside a function, or for type checking only).
    """
    known = modules("simulator")
    assert "simulator.process" in known and "simulator.model.vm" in known
    bad = [
        f"{imp.module}:{imp.line} imports {imp.target}"
        for mod, path in known.items()
        for imp in imports(mod, path)
        if imp.target == "harness" or imp.target.startswith("harness.")
    ]
    assert bad == []


def test_simulator_has_no_import_cycles() -> None:
    """Modules of the simulator import in one direction.

    1. The graph has the simulator's edges (``__main__`` imports ``process``).
    2. No two simulator modules import each other, directly or through others
       (imports under ``if TYPE_CHECKING:`` left out: they never run).
    """
    graph = import_graph("simulator")
    assert "simulator.process" in graph["simulator.__main__"]
    assert cycles(graph) == []


def test_import_reader_sees_every_import(tmp_path: Path) -> None:
    """What the checks read.

    1. Imports inside functions are found, relative ones made absolute.
    2. Imports under ``if TYPE_CHECKING:`` are found and marked as such.
    """
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "mod.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import os\n"
        "if TYPE_CHECKING:\n"
        "    from pkg.other import Thing\n"
        "def f() -> None:\n"
        "    from . import sibling\n"
        "    import harness.machine\n"
    )
    found = [(i.target, i.type_checking) for i in imports("pkg.mod", pkg / "mod.py")]
    assert ("pkg.sibling", False) in found and ("harness.machine", False) in found
    assert ("pkg.other.Thing", True) in found and ("os", False) in found


def test_cycle_finder_finds_cycles() -> None:
    """The checker itself can fail.

    1. A three-module loop is reported once, as one sorted component.
    2. A chain without a loop reports nothing.
    """
    loop = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(loop) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
