"""Shared fixtures for the conformance suites and the behaviour-catalog wiring.

At collection, each test x target gets its catalog verdicts: NA becomes a skip with the
reason, DIVERGES becomes a strict xfail (reported as "diverged"; an unexpected pass fails,
since the catalog is then out of date). Tests naming no id, and ids no test names, are
listed in the terminal summary. The catalog reaches the report through the
``pytest_hvlab_catalog`` hook (the plugin writes it to the run's catalog.json).

Targets come from the plugin: a hypervisor test takes ``target``, a libvirt test takes
``libvirt_target`` (harness.libvirt.target: libvirt-model and libvirt-9.0); ``--target``
narrows both.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.report.catalog import CatalogSource
from harness.report.record import target_name
from harness.targets.base import Target
from suites.catalog import CATALOG, Expect, Verdict, expectation

_COVERAGE = pytest.StashKey[dict[str, list[str]]]()


def _ids(item: pytest.Item) -> list[str]:
    return [str(a) for m in item.iter_markers("catalog") for a in m.args]


@pytest.hookimpl(optionalhook=True)
def pytest_hvlab_catalog(config: pytest.Config) -> CatalogSource:
    """The catalog, for the run's catalog.json (the report reads nothing else)."""
    return CatalogSource(CATALOG, expectation)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    covered: set[str] = set()
    unnamed: list[str] = []
    unknown: list[str] = []
    for item in items:
        if "suites/" not in item.nodeid:
            continue
        ids = _ids(item)
        if not ids:
            unnamed.append(item.nodeid)
        for cid in ids:
            if cid not in CATALOG:
                unknown.append(f"{item.nodeid}: {cid}")
        covered.update(i for i in ids if i in CATALOG)
        name = target_name(item)
        if not name:
            continue
        verdicts = [(cid, expectation(cid, name)) for cid in ids if cid in CATALOG]
        na = [(cid, e) for cid, e in verdicts if e.verdict is Verdict.NA]
        div = [(cid, e) for cid, e in verdicts if e.verdict is Verdict.DIVERGES]
        if na:
            cid, e = na[0]
            item.add_marker(pytest.mark.skip(reason=f"{cid} n/a on {name}: {e.evidence}"))
        elif div:
            reason = "; ".join(f"{cid} diverges from docs: {e.evidence}" for cid, e in div)
            item.add_marker(pytest.mark.xfail(strict=True, reason=reason))
    if unknown:
        raise pytest.UsageError("tests name unknown catalog ids: " + ", ".join(unknown))
    config.stash[_COVERAGE] = {
        "uncovered": sorted(set(CATALOG) - covered),
        "tests_without_ids": sorted(unnamed),
    }


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    coverage = config.stash.get(_COVERAGE, None)
    if not coverage:
        return
    for key, label in (
        ("uncovered", "catalog ids no collected test covers"),
        ("tests_without_ids", "tests naming no catalog id"),
    ):
        if coverage[key]:
            terminalreporter.write_line(f"{label}: {', '.join(coverage[key])}")


@pytest.fixture
def expect(target: Target) -> Callable[[str], Expect]:
    """The catalog expectation of a claim on this test's target."""

    def lookup(claim_id: str) -> Expect:
        return expectation(claim_id, target.name)

    return lookup
