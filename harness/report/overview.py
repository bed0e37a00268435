"""The run's index.html: status, summary per target, the behaviour-catalog matrix,
failures, skip reasons, every test, host facts and versions."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from harness.report.catalog import Entry, Matrix
from harness.report.page import badge, esc, href, page, table
from harness.report.results import OUTCOMES, TestResult, summarize


def _when(ts: object) -> str:
    if not isinstance(ts, int | float):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _status_banner(meta: Mapping[str, Any], results: list[TestResult], orphans: list[str]) -> str:
    bad = sum(r.outcome in ("failed", "error") for r in results)
    if "finished" not in meta:
        extra = (
            f" {len(orphans)} test(s) had started and left artifacts but no result."
            if orphans
            else ""
        )
        return (
            '<div class="banner warn"><strong>Partial run.</strong> The run ended before it '
            f"finished (interrupted or killed); {len(results)} finished test(s) are shown.{extra}"
            "</div>"
        )
    if bad:
        return f'<div class="banner bad"><strong>{bad} test(s) failed.</strong></div>'
    return '<div class="banner good"><strong>No test failed.</strong></div>'


def _summary(results: list[TestResult], targets: list[str]) -> str:
    counts = summarize(results)
    rows = []
    for target in [*targets, *(t for t in counts if t not in targets)]:
        c = counts.get(target, dict.fromkeys(OUTCOMES, 0))
        cells = [esc(target)]
        for o in OUTCOMES:
            cells.append(badge(o, str(c[o])) if c[o] else '<span class="muted">0</span>')
        cells.append(str(sum(c.values())))
        rows.append(cells)
    headers = ["target", "passed", "failed", "error", "diverges from docs", "skipped", "total"]
    return table(headers, rows, num_from=1)


def _matrix(
    matrix: Matrix, catalog: Mapping[str, Entry], results: list[TestResult], pages: list[str]
) -> str:
    if not matrix.ids:
        return '<p class="muted">No test names a behaviour-catalog id.</p>'
    if not matrix.targets:
        return '<p class="muted">No target ran.</p>'
    head = "".join(f"<th>{esc(t)}</th>" for t in matrix.targets)
    rows = []
    for cid in matrix.ids:
        e = catalog.get(cid)
        title = f' title="{esc(e.claim)}"' if e and e.claim else ""
        claim = f'<br><span class="muted">{esc(e.claim[:120])}</span>' if e and e.claim else ""
        cells = [f"<th{title}>{esc(cid)}{claim}</th>"]
        for target in matrix.targets:
            cell = matrix.cells[(cid, target)]
            expect = f"expected: {cell.expectation}" if cell.expectation else "not in the catalog"
            if e is not None and e.note(target):
                expect += f" ({e.note(target)})"
            mark = " ⚠" if cell.unexpected else ""
            label = badge(cell.outcome, f"{_label(cell.outcome)}{mark}")
            if not cell.tests:
                cells.append(f'<td class="cell" title="{esc(expect)}">{label}</td>')
                continue
            first = cell.tests[0]
            tip = f"{results[first].name}; {expect}"
            more = "".join(
                f' <a href="{href(pages[i])}" title="{esc(results[i].name)}">+{n}</a>'
                for n, i in enumerate(cell.tests[1:], start=1)
            )
            cells.append(
                f'<td class="cell"><a href="{href(pages[first])}" title="{esc(tip)}">{label}</a>'
                f"{more}</td>"
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    legend = (
        '<p class="muted">Each cell links to the test that decides it (the worst outcome '
        "when several tests cover it; +N links the others). ⚠: observed behaviour differs "
        "from the catalog's expectation for that target.</p>"
    )
    return (
        f'<table class="matrix"><thead><tr><th>id</th>{head}</tr></thead><tbody>'
        + "\n".join(rows)
        + "</tbody></table>"
        + legend
    )


def _label(outcome: str) -> str:
    return {"diverged": "diverges"}.get(outcome, outcome)


def _problems(results: list[TestResult], pages: list[str]) -> str:
    rows = []
    for i, r in enumerate(results):
        if r.outcome in ("failed", "error"):
            last = (r.message.strip().splitlines() or [""])[-1][:200]
            rows.append(
                [f'<a href="{href(pages[i])}">{esc(r.nodeid)}</a>', badge(r.outcome), esc(last)]
            )
    if not rows:
        return ""
    return "<h2>Failures</h2>" + table(["test", "outcome", "last line"], rows)


def _skips(results: list[TestResult]) -> str:
    reasons: dict[tuple[str, str], int] = {}
    for r in results:
        if r.outcome == "skipped":
            key = (r.target or "-", r.message)
            reasons[key] = reasons.get(key, 0) + 1
    if not reasons:
        return ""
    rows = [[esc(t), esc(m), str(n)] for (t, m), n in sorted(reasons.items())]
    return "<h2>Skip reasons</h2>" + table(["target", "reason", "tests"], rows, num_from=2)


def _all_tests(results: list[TestResult], pages: list[str]) -> str:
    rows = [
        [
            f'<a href="{href(pages[i])}">{esc(r.name)}</a>',
            esc(r.target or "-"),
            badge(r.outcome),
            esc(", ".join(r.catalog)),
            f"{r.duration:.2f}",
        ]
        for i, r in enumerate(results)
    ]
    if not rows:
        return '<h2>Tests</h2><p class="muted">No test finished.</p>'
    return "<h2>Tests</h2>" + table(["test", "target", "outcome", "catalog", "s"], rows, num_from=4)


def _hosts(meta: Mapping[str, Any]) -> str:
    hosts = meta.get("hosts") or {}
    if not isinstance(hosts, dict) or not hosts:
        return '<h2>Hosts</h2><p class="muted">No host facts recorded.</p>'
    rows = []
    for name, f in sorted(hosts.items()):
        if not isinstance(f, dict):
            continue
        kvm = "works" if f.get("kvm_works") else "no"
        if f.get("kvm_detail"):
            kvm += f" ({f['kvm_detail']})"
        tools = f.get("tools") or {}
        have = (
            ", ".join(k for k, v in sorted(tools.items()) if v) if isinstance(tools, dict) else ""
        )
        rows.append(
            [
                esc(name),
                esc(f.get("arch", "")),
                esc(f.get("kernel", "")),
                esc(kvm),
                esc(f.get("hugepages_total", "")),
                esc(have),
            ]
        )
    headers = ["host", "arch", "kernel", "KVM", "hugepages", "tools"]
    return "<h2>Hosts</h2>" + table(headers, rows)


def _versions(meta: Mapping[str, Any]) -> str:
    rows: list[list[str]] = []
    hosts = meta.get("hosts") or {}
    for name, f in sorted(hosts.items() if isinstance(hosts, dict) else []):
        if not isinstance(f, dict):
            continue
        qemu = f.get("qemu") or {}
        for arch, version in sorted(qemu.items() if isinstance(qemu, dict) else []):
            rows.append([esc(f"QEMU ({arch})"), esc(version), esc(name)])
        rows.append(["StratoVirt", esc(f.get("stratovirt") or "absent"), esc(name)])
        rows.append(["libvirt", esc(f.get("libvirt") or "absent"), esc(name)])
        rows.append(["kernel", esc(f.get("kernel") or "-"), esc(name)])
    src = meta.get("hvlab") or {}
    if isinstance(src, dict):
        sha = src.get("sha") or "unknown"
        dirty = " (uncommitted changes)" if src.get("dirty") else ""
        rows.append(["hvlab", f"<code>{esc(sha)}</code>{esc(dirty)}", ""])
    return "<h2>Versions</h2>" + table(["component", "version", "host"], rows)


def render_index(
    meta: Mapping[str, Any],
    results: list[TestResult],
    targets: list[str],
    matrix: Matrix,
    catalog: Mapping[str, Entry],
    pages: list[str],
    orphans: list[str],
) -> str:
    run_id = str(meta.get("run_id", ""))
    duration = meta.get("duration")
    took = f", took {duration:.0f} s" if isinstance(duration, int | float) else ""
    parts = [
        f"<h1>hvlab run {esc(run_id)}</h1>",
        f'<p class="muted">Started {esc(_when(meta.get("started")))}{esc(took)} · '
        f'<a href="results.json">results.json</a> · <a href="junit.xml">junit.xml</a> · '
        f'<a href="results.jsonl">results.jsonl</a></p>',
        _status_banner(meta, results, orphans),
        "<h2>Summary per target</h2>",
        _summary(results, targets),
        "<h2>Behaviour catalog</h2>",
        _matrix(matrix, catalog, results, pages),
        _problems(results, pages),
        _skips(results),
    ]
    if orphans:
        links = "".join(f'<li><a href="{href(p)}/">{esc(p)}</a></li>' for p in orphans)
        parts.append(f"<h2>Unfinished tests</h2><ul>{links}</ul>")
    parts += [_all_tests(results, pages), _hosts(meta), _versions(meta)]
    if meta.get("html_error"):
        parts.append(f'<p class="muted">Last render error: {esc(meta["html_error"])}</p>')
    return page(f"hvlab run {run_id}", "\n".join(p for p in parts if p))
