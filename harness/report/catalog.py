"""The behaviour catalog as the report sees it, and the ids x targets matrix.

The suites own the catalog (``suites/catalog.py``: claims with ``id, source, section,
claim/text, expectations/expect`` and an ``expectation(id, target)`` resolver). They hand
it to the pytest plugin through the ``pytest_hvlab_catalog`` hook as a
:class:`CatalogSource`; the plugin resolves it for the run's targets and writes
``catalog.json`` into the run folder before any test runs. The report reads only that
file, so rebuilding an old run shows the catalog it ran against. Without it the matrix
is built from the ids the tests name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.report.results import TestResult

SNAPSHOT = "catalog.json"

# Which outcome a cell shows when several tests cover it: the worst one.
_SEVERITY = {"failed": 0, "error": 1, "diverged": 2, "passed": 3, "skipped": 4}


@dataclass(frozen=True)
class Entry:
    id: str
    source: str = ""
    section: str = ""
    claim: str = ""
    expectations: dict[str, str] = field(default_factory=dict)  # target or prefix -> verdict
    evidence: str = ""
    notes: dict[str, str] = field(default_factory=dict)  # target or prefix -> evidence

    @staticmethod
    def _lookup(table: Mapping[str, str], target: str) -> str:
        best, best_len = "", -1
        for key, value in table.items():
            if (target == key or target.startswith(key)) and len(key) > best_len:
                best, best_len = str(value), len(key)
        return best

    def expectation(self, target: str) -> str:
        """The expectation for ``target``: the longest matching name-or-prefix key."""
        return self._lookup(self.expectations, target)

    def note(self, target: str) -> str:
        """Why the expectation is what it is on ``target`` (upstream evidence, n/a reason)."""
        return self._lookup(self.notes, target) or self.evidence

    @classmethod
    def from_any(
        cls,
        key: str,
        obj: Any,
        targets: Sequence[str] = (),
        expect: Callable[[str, str], Any] | None = None,
    ) -> Entry:
        """From a snapshot dict, or a catalog claim object of either known shape.

        ``expect(id, target)``, when the catalog module has one, resolves the verdict
        per target (families, fallbacks); it is evaluated for ``targets``.
        """

        def get(name: str) -> Any:
            if isinstance(obj, Mapping):
                return obj.get(name)
            return getattr(obj, name, None)

        cid = str(get("id") or key)
        raw = dict(get("expectations") or get("expect") or {})
        expectations = {str(k): _verdict(v) for k, v in raw.items()}
        notes = {str(k): str(getattr(v, "evidence", "") or "") for k, v in raw.items()}
        notes.update({str(k): str(v) for k, v in dict(get("notes") or {}).items()})
        if expect is not None:
            for target in targets:
                try:
                    found = expect(cid, target)
                except LookupError:
                    continue
                expectations[target] = _verdict(found)
                notes[target] = str(getattr(found, "evidence", "") or "")
        evidence = get("evidence")
        return cls(
            id=cid,
            source=str(get("source") or ""),
            section=str(get("section") or ""),
            claim=str(get("claim") or get("text") or ""),
            expectations=expectations,
            evidence=evidence if isinstance(evidence, str) else "",
            notes={k: v for k, v in notes.items() if v},
        )


def _verdict(value: Any) -> str:
    """An expectation: a string, an Enum of strings, or an object with such a .verdict."""
    value = getattr(value, "verdict", value)
    return str(getattr(value, "value", value))


@dataclass(frozen=True)
class CatalogSource:
    """A catalog as the suites define it: ``claims`` maps id -> claim object (or dict);
    ``expectation(id, target)``, when given, resolves a claim's verdict on a target."""

    claims: Mapping[str, Any]
    expectation: Callable[[str, str], Any] | None = None

    def entries(self, targets: Iterable[str] = ()) -> dict[str, Entry]:
        """Every claim as an :class:`Entry`, its expectation resolved for ``targets``."""
        names = list(dict.fromkeys(targets))
        return {
            str(k): Entry.from_any(str(k), v, names, self.expectation)
            for k, v in self.claims.items()
        }


def write_catalog(run_dir: Path, entries: Mapping[str, Entry]) -> Path:
    """Write ``catalog.json`` (atomically: parallel workers may write it too)."""
    path = run_dir / SNAPSHOT
    tmp = path.with_name(f".{SNAPSHOT}.{os.getpid()}.tmp")
    tmp.write_text(
        json.dumps({k: asdict(v) for k, v in entries.items()}, indent=2, ensure_ascii=False),
        encoding="utf-8",
    )
    tmp.replace(path)
    return path


def load_catalog(run_dir: Path) -> dict[str, Entry]:
    """The run's ``catalog.json``; empty when the run has none (or it is unreadable)."""
    try:
        data = json.loads((run_dir / SNAPSHOT).read_text(encoding="utf-8"))
        return {str(k): Entry.from_any(str(k), v) for k, v in dict(data).items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


@dataclass
class Cell:
    outcome: str  # a result outcome, or "not covered" / "n/a"
    expectation: str  # "holds" | "diverges" | "n/a" | "" (no catalog entry)
    tests: list[int]  # indexes into the run's results, worst first

    @property
    def unexpected(self) -> bool:
        """The observed behaviour is not what the catalog expects on this target."""
        return (self.expectation == "diverges" and self.outcome == "passed") or (
            self.expectation == "holds" and self.outcome == "diverged"
        )


@dataclass
class Matrix:
    ids: list[str]
    targets: list[str]
    cells: dict[tuple[str, str], Cell]


def ordered_targets(meta: Mapping[str, Any], results: list[TestResult]) -> list[str]:
    targets = [str(t) for t in meta.get("targets") or []]
    extra = sorted({r.target for r in results if r.target and r.target not in targets})
    return targets + extra


def build_matrix(
    catalog: Mapping[str, Entry], results: list[TestResult], targets: list[str]
) -> Matrix:
    named = sorted({cid for r in results for cid in r.catalog if cid not in catalog})
    ids = [*catalog, *named]
    by_cell: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(results):
        for cid in r.catalog:
            by_cell.setdefault((cid, r.target), []).append(i)
    cells: dict[tuple[str, str], Cell] = {}
    for cid in ids:
        entry = catalog.get(cid)
        for target in targets:
            expectation = entry.expectation(target) if entry else ""
            idx = sorted(
                by_cell.get((cid, target), []),
                key=lambda i: _SEVERITY.get(results[i].outcome, -1),
            )
            if idx:
                outcome = results[idx[0]].outcome
                if expectation == "n/a" and all(results[i].outcome == "skipped" for i in idx):
                    outcome = "n/a"  # the suites skip what the catalog says does not apply
            else:
                outcome = "n/a" if expectation == "n/a" else "not covered"
            cells[(cid, target)] = Cell(outcome, expectation, idx)
    return Matrix(ids, targets, cells)
