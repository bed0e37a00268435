"""One page per test: docstring, outcome, catalog claims, and per VM its migration plot,
QMP transcript and console log, with links to the raw files."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from harness.report.artifacts import (
    Transcript,
    VMArtifacts,
    read_log,
    read_transcript,
    vm_artifacts,
)
from harness.report.catalog import Entry
from harness.report.page import badge, esc, href, page, table
from harness.report.plots import read_migration
from harness.report.results import TestResult

PAGES = "tests"  # folder of the test pages, relative to the run folder
UP = "../"  # from a test page back to the run folder


def _fmt_msg(msg: object) -> str:
    text = json.dumps(msg, ensure_ascii=False)
    if len(text) > 110:
        text = json.dumps(msg, ensure_ascii=False, indent=2)
    return text


def render_transcript(tr: Transcript) -> str:
    if not tr.messages:
        return '<p class="muted">The transcript is empty.</p>'
    t0 = next((m.t for m in tr.messages if m.t is not None), None)
    rows = []
    arrows = {
        "send": "&rarr; sent",
        "recv": "&larr; reply",
        "event": "&larr; event",
        "raw": "? torn",
    }
    for i, m in enumerate(tr.messages):
        if tr.omitted and i == len(tr.messages) // 2:
            rows.append(
                f'<tr><td colspan="3" class="muted">&hellip; {tr.omitted} messages '
                "left out; see the raw file &hellip;</td></tr>"
            )
        cls = m.direction
        if isinstance(m.msg, dict) and "error" in m.msg:
            cls += " qmperr"
        when = f"+{m.t - t0:.3f}" if m.t is not None and t0 is not None else ""
        body = esc(_fmt_msg(m.msg)) if not m.raw else f"(not JSON) {esc(m.raw)}"
        rows.append(
            f'<tr class="{cls}"><td class="num">{when}</td>'
            f'<td class="dir">{arrows[m.direction]}</td><td><pre>{body}</pre></td></tr>'
        )
    note = f'<p class="muted">{tr.bad_lines} line(s) were not JSON.</p>' if tr.bad_lines else ""
    return (
        '<table class="qmp"><thead><tr><th class="num">t (s)</th><th>dir</th>'
        "<th>message</th></tr></thead><tbody>\n" + "\n".join(rows) + "</tbody></table>" + note
    )


def _log_section(vm: VMArtifacts, name: str, title: str, always: bool) -> str:
    if name not in vm.files:
        return f'<h4>{esc(title)}</h4><p class="muted">No {esc(name)}.</p>' if always else ""
    log = read_log(vm.dir / name)
    if log is None:
        return ""
    if not log.text.strip() and not always:
        return ""
    link = href(f"{UP}{vm.rel}/{name}")
    note = (
        f'<p class="muted">Showing the last {len(log.text):,} of {log.total:,} characters; '
        f'<a href="{link}">the whole file</a>.</p>'
        if log.shown_from
        else ""
    )
    text = esc(log.text) if log.text.strip() else '<span class="muted">(empty)</span>'
    return (
        f'<h4>{esc(title)} <a class="muted" href="{link}">{esc(name)}</a></h4>'
        f'{note}<pre class="log">{text}</pre>'
    )


def _vm_section(vm: VMArtifacts, plots: Mapping[str, str]) -> str:
    parts = [f'<h3 id="vm-{esc(vm.name)}">VM {esc(vm.name)}</h3>']
    files = " · ".join(f'<a href="{href(f"{UP}{vm.rel}/{f}")}">{esc(f)}</a>' for f in vm.files)
    parts.append(f'<p class="muted">Files: {files or "none"}</p>')
    if "migration.json" in vm.files:
        data = read_migration(vm.dir / "migration.json")
        parts.append("<h4>Migration</h4>")
        if vm.name in plots:
            parts.append(
                f'<img class="plot" src="{href(UP + plots[vm.name])}" '
                f'alt="migration of {esc(vm.name)}: remaining, transferred, dirty rate, throttle">'
            )
        else:
            parts.append('<p class="muted">No samples to plot.</p>')
        facts = {
            k: v
            for k, v in (data or {}).items()
            if k not in ("samples", "status_history", "history")
            and (v is None or isinstance(v, str | int | float | bool))
        }
        if facts:
            parts.append(
                '<dl class="kv">'
                + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts.items())
                + "</dl>"
            )
        history = (data or {}).get("status_history") or []
        if history:
            items = [
                s if isinstance(s, str) else json.dumps(s, ensure_ascii=False) for s in history
            ]
            parts.append("<p>Status history: " + " &rarr; ".join(esc(s) for s in items) + "</p>")
    if "qmp.jsonl" in vm.files:
        tr = read_transcript(vm.dir / "qmp.jsonl")
        if tr is not None:
            link = href(f"{UP}{vm.rel}/qmp.jsonl")
            parts.append(
                f'<h4>QMP transcript <a class="muted" href="{link}">qmp.jsonl</a></h4>'
                + render_transcript(tr)
            )
    parts.append(_log_section(vm, "serial.log", "Console", always=True))
    parts.append(_log_section(vm, "stderr.log", "Hypervisor stderr", always=False))
    parts.append(_log_section(vm, "stdout.log", "Hypervisor stdout", always=False))
    return "\n".join(parts)


def render_test_page(
    run_dir: Path,
    result: TestResult,
    catalog: Mapping[str, Entry],
    plots: Mapping[str, str],
    run_id: str,
) -> str:
    """The HTML page of one result; ``plots`` maps vm name -> PNG path (run-relative)."""
    r = result
    head = [
        f"<h1>{esc(r.name)}</h1>",
        f'<p class="muted">{esc(r.nodeid)}</p>',
        '<dl class="kv">',
        f"<dt>Outcome</dt><dd>{badge(r.outcome)}</dd>",
        f"<dt>Target</dt><dd>{esc(r.target or '-')}</dd>",
        f"<dt>Duration</dt><dd>{r.duration:.2f} s</dd>",
        "</dl>",
    ]
    body = ["\n".join(head)]
    if r.message:
        title = "Skip reason" if r.outcome == "skipped" else "Message"
        body.append(f"<h2>{title}</h2><pre>{esc(r.message)}</pre>")
    body.append("<h2>What it verifies</h2>")
    body.append(
        f'<pre class="doc">{esc(r.doc)}</pre>' if r.doc else '<p class="muted">No docstring.</p>'
    )
    if r.catalog:
        rows = []
        for cid in r.catalog:
            e = catalog.get(cid)
            if e is None:
                rows.append([esc(cid), '<span class="muted">not in the catalog</span>', "", ""])
                continue
            where = esc(" § ".join(x for x in (e.source, e.section) if x))
            expect = e.expectation(r.target) if r.target else ""
            note = e.note(r.target) if r.target else e.evidence
            why = f'<br><span class="muted">{esc(note)}</span>' if note else ""
            rows.append([esc(cid), esc(e.claim), where, f"{esc(expect or '-')}{why}"])
        body.append("<h2>Behaviour catalog</h2>")
        body.append(table(["id", "claim", "document", f"expected on {esc(r.target or '-')}"], rows))
    vms = vm_artifacts(run_dir, r.artifacts)
    body.append("<h2>Virtual machines</h2>")
    if vms:
        body.extend(_vm_section(vm, plots) for vm in vms)
    else:
        body.append('<p class="muted">This test left no VM artifacts.</p>')
    crumbs = f'<a href="{UP}index.html">run {esc(run_id)}</a> / {esc(r.name)}'
    return page(f"{r.name} — hvlab {run_id}", "\n".join(body), crumbs=crumbs)
