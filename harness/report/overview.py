"""The run's index.html: status, summary per target, the behaviour-catalog matrix,
failures, skip reasons, every test, host facts and versions.

This module prepares plain data; ``templates/index.html`` turns it into the page.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.report.catalog import Entry, Matrix
from harness.report.page import render
from harness.report.results import OUTCOMES, TestResult, interruption, summarize


@dataclass
class Link:
    href: str
    title: str
    text: str = ""


@dataclass
class CellView:
    outcome: str
    label: str  # the badge text
    title: str  # the tooltip: expectation, note, deciding test
    links: list[Link] = field(default_factory=list)  # the deciding test first, then +N


@dataclass
class RowView:
    id: str
    claim: str
    cells: list[CellView]


def _when(ts: object) -> str:
    if not isinstance(ts, int | float):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _summary(results: list[TestResult], targets: list[str]) -> list[dict[str, Any]]:
    counts = summarize(results)
    rows = []
    for target in [*targets, *(t for t in counts if t not in targets)]:
        c = counts.get(target, dict.fromkeys(OUTCOMES, 0))
        counts_row = [(o, c[o]) for o in OUTCOMES]
        rows.append({"target": target, "counts": counts_row, "total": sum(c.values())})
    return rows


def _matrix(
    matrix: Matrix, catalog: Mapping[str, Entry], results: list[TestResult], pages: list[str]
) -> list[RowView]:
    rows = []
    for cid in matrix.ids:
        e = catalog.get(cid)
        cells = []
        for target in matrix.targets:
            cell = matrix.cells[(cid, target)]
            expect = f"expected: {cell.expectation}" if cell.expectation else "not in the catalog"
            if e is not None and e.note(target):
                expect += f" ({e.note(target)})"
            mark = " ⚠" if cell.unexpected else ""
            label = {"diverged": "diverges"}.get(cell.outcome, cell.outcome) + mark
            if not cell.tests:
                cells.append(CellView(cell.outcome, label, expect))
                continue
            first = cell.tests[0]
            links = [Link(pages[first], f"{results[first].name}; {expect}", label)]
            links += [
                Link(pages[i], results[i].name, f"+{n}")
                for n, i in enumerate(cell.tests[1:], start=1)
            ]
            cells.append(CellView(cell.outcome, label, expect, links))
        rows.append(RowView(cid, e.claim if e else "", cells))
    return rows


def _problems(results: list[TestResult], pages: list[str]) -> list[dict[str, str]]:
    return [
        {
            "href": pages[i],
            "nodeid": r.nodeid,
            "outcome": r.outcome,
            "last": (r.message.strip().splitlines() or [""])[-1][:200],
        }
        for i, r in enumerate(results)
        if r.outcome in ("failed", "error")
    ]


def _skips(results: list[TestResult]) -> list[tuple[str, str, int]]:
    reasons: dict[tuple[str, str], int] = {}
    for r in results:
        if r.outcome == "skipped":
            key = (r.target or "-", r.message)
            reasons[key] = reasons.get(key, 0) + 1
    return [(t, m, n) for (t, m), n in sorted(reasons.items())]


def _hosts(meta: Mapping[str, Any]) -> list[list[str]]:
    hosts = meta.get("hosts") or {}
    rows: list[list[str]] = []
    for name, f in sorted(hosts.items() if isinstance(hosts, dict) else []):
        if not isinstance(f, dict):
            continue
        kvm = "works" if f.get("kvm_works") else "no"
        if f.get("kvm_detail"):
            kvm += f" ({f['kvm_detail']})"
        tools = f.get("tools") or {}
        have = (
            ", ".join(k for k, v in sorted(tools.items()) if v) if isinstance(tools, dict) else ""
        )
        row = [f.get("arch", ""), f.get("kernel", ""), kvm, f.get("hugepages_total", ""), have]
        rows.append([str(name), *(str(x) for x in row)])
    return rows


def _versions(meta: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    hosts = meta.get("hosts") or {}
    for name, f in sorted(hosts.items() if isinstance(hosts, dict) else []):
        if not isinstance(f, dict):
            continue
        qemu = f.get("qemu") or {}
        for arch, version in sorted(qemu.items() if isinstance(qemu, dict) else []):
            rows.append((f"QEMU ({arch})", str(version), str(name)))
        rows.append(("StratoVirt", str(f.get("stratovirt") or "absent"), str(name)))
        rows.append(("libvirt", str(f.get("libvirt") or "absent"), str(name)))
        rows.append(("kernel", str(f.get("kernel") or "-"), str(name)))
    return rows


def render_index(
    meta: Mapping[str, Any],
    results: list[TestResult],
    targets: list[str],
    matrix: Matrix,
    catalog: Mapping[str, Entry],
    pages: list[str],
    orphans: list[str],
) -> str:
    duration = meta.get("duration")
    src = meta.get("hvlab") or {}
    return render(
        "index.html",
        run_id=str(meta.get("run_id", "")),
        started=_when(meta.get("started")),
        took=f", took {duration:.0f} s" if isinstance(duration, int | float) else "",
        finished="finished" in meta,
        interrupted=interruption(meta),
        failed=sum(r.outcome in ("failed", "error") for r in results),
        results=results,
        pages=pages,
        orphans=orphans,
        summary=_summary(results, targets),
        outcome_headers=["passed", "failed", "error", "diverges from docs", "skipped"],
        has_ids=bool(matrix.ids),
        targets=matrix.targets,
        matrix=_matrix(matrix, catalog, results, pages),
        problems=_problems(results, pages),
        skips=_skips(results),
        hosts=_hosts(meta),
        versions=_versions(meta),
        hvlab=src if isinstance(src, dict) else {},
        html_error=str(meta.get("html_error") or ""),
    )
