"""The import graph of the packages, read from the source with ast (nothing is imported).

Shared by the layering tests (tests/test_layering.py, tests/test_imports.py).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Import:
    """One import statement's target, as written, with where it is."""

    module: str  # the importing module, dotted
    target: str  # the imported module or ``module.name``, dotted and absolute
    line: int
    type_checking: bool  # inside ``if TYPE_CHECKING:`` (never executed)


def modules(package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` under ROOT."""
    out: dict[str, Path] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, guarded: bool) -> Iterator[tuple[ast.AST, bool]]:
    """Every node, with whether it sits under ``if TYPE_CHECKING:`` (function bodies too)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for sub in child.body:
                yield sub, True
                yield from _walk(sub, True)
            for sub in child.orelse:
                yield sub, guarded
                yield from _walk(sub, guarded)
            continue
        yield child, guarded
        yield from _walk(child, guarded)


def imports(module: str, path: Path) -> list[Import]:
    """Every import in one file, module-level or not, made absolute."""
    is_pkg = path.name == "__init__.py"
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    out: list[Import] = []
    for node, guarded in _walk(ast.parse(path.read_text(), str(path)), False):
        if isinstance(node, ast.Import):
            out += [Import(module, a.name, node.lineno, guarded) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                head = base[: len(base) - node.level + 1]
                source = ".".join([*head, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            out += [Import(module, f"{source}.{a.name}", node.lineno, guarded) for a in node.names]
    return out


def _resolve(target: str, known: dict[str, Path]) -> str | None:
    """The longest known module that ``target`` names (``pkg.mod.Class`` -> ``pkg.mod``)."""
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def import_graph(package: str, runtime_only: bool = True) -> dict[str, set[str]]:
    """Module -> modules of the same package it imports.

    ``runtime_only`` leaves out imports under ``if TYPE_CHECKING:``: they are never
    executed, and they are how two classes that refer to each other get annotated.
    Imports inside functions count: they run, and they hide a cycle rather than break it.
    """
    known = modules(package)
    graph: dict[str, set[str]] = {m: set() for m in known}
    for mod, path in known.items():
        for imp in imports(mod, path):
            if runtime_only and imp.type_checking:
                continue
            dep = _resolve(imp.target, known)
            if dep is not None and dep != mod:
                graph[mod].add(dep)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

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
            comp: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)
