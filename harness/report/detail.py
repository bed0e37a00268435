"""One page per test: docstring, outcome, failure context, catalog claims, and per VM its
migration plot, QMP transcript and console log, with links to the raw files.

This module prepares plain data; ``templates/test.html`` turns it into the page.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.report.artifacts import (
    Transcript,
    VMArtifacts,
    read_log,
    read_transcript,
    vm_artifacts,
)
from harness.report.catalog import Entry
from harness.report.page import render
from harness.report.plots import read_migration
from harness.report.results import TestResult

PAGES = "tests"  # folder of the test pages, relative to the run folder
UP = "../"  # from a test page back to the run folder

# HarnessError context keys in the order a reader wants them, with their labels.
CONTEXT_LABELS = {
    "error": "Error",
    "phase": "Migration phase",
    "argv": "Command line",
    "exit_code": "Exit code",
    "stderr": "Hypervisor stderr (last lines)",
    "console_tail": "Console (last lines)",
    "sent": "QMP sent",
    "received": "QMP received",
}


@dataclass
class ContextItem:
    key: str
    label: str
    text: str
    block: bool  # multi-line: shown as preformatted text


@dataclass
class QMPRow:
    when: str
    direction: str
    css: str
    text: str
    raw: bool


@dataclass
class LogView:
    name: str
    title: str
    link: str
    text: str
    total: int
    shown_from: int
    missing: bool = False  # the file is absent (said so for the console)


@dataclass
class VMView:
    name: str
    files: list[tuple[str, str]]  # (file name, link)
    migration: bool = False
    plot: str = ""
    facts: list[tuple[str, str]] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    transcript: list[QMPRow] | None = None
    transcript_link: str = ""
    omitted: int = 0
    bad_lines: int = 0
    logs: list[LogView] = field(default_factory=list)
    wire: list[tuple[str, str]] = field(default_factory=list)  # network summary


def _fmt_msg(msg: object) -> str:
    """JSON on one line, or indented when that line would be long."""
    text = json.dumps(msg, ensure_ascii=False, default=str)
    if len(text) > 110:
        text = json.dumps(msg, ensure_ascii=False, indent=2, default=str)
    return text


def context_items(context: Mapping[str, Any]) -> list[ContextItem]:
    """A failure's context as labelled text: known keys first, argv as a shell line."""
    keys = [k for k in CONTEXT_LABELS if k in context]
    keys += [k for k in context if k not in CONTEXT_LABELS]
    items = []
    for key in keys:
        value = context[key]
        if key == "argv" and isinstance(value, list):
            text = shlex.join(str(a) for a in value)
        elif isinstance(value, str):
            text = value
        else:
            text = _fmt_msg(value)
        label = CONTEXT_LABELS.get(key, key.replace("_", " "))
        items.append(ContextItem(key, label, text, "\n" in text or len(text) > 100))
    return items


def _transcript_rows(tr: Transcript) -> list[QMPRow]:
    t0 = next((m.t for m in tr.messages if m.t is not None), None)
    rows = []
    for m in tr.messages:
        css = m.direction
        if isinstance(m.msg, dict) and "error" in m.msg:
            css += " qmperr"
        when = f"+{m.t - t0:.3f}" if m.t is not None and t0 is not None else ""
        text = _fmt_msg(m.msg) if not m.raw else m.raw
        rows.append(QMPRow(when, m.direction, css, text, bool(m.raw)))
    return rows


def _log(vm: VMArtifacts, name: str, title: str, always: bool) -> LogView | None:
    if name not in vm.files:
        return LogView(name, title, "", "", 0, 0, missing=True) if always else None
    log = read_log(vm.dir / name)
    if log is None or (not log.text.strip() and not always):
        return None
    link = f"{UP}{vm.rel}/{name}"
    return LogView(name, title, link, log.text, log.total, log.shown_from)


def _vm_view(vm: VMArtifacts, plots: Mapping[str, str]) -> VMView:
    view = VMView(vm.name, [(f, f"{UP}{vm.rel}/{f}") for f in vm.files])
    if "migration.json" in vm.files:
        data = read_migration(vm.dir / "migration.json") or {}
        view.migration = True
        view.plot = UP + plots[vm.name] if vm.name in plots else ""
        view.facts = [
            (k, str(v))
            for k, v in data.items()
            if k not in ("samples", "status_history", "history")
            and (v is None or isinstance(v, str | int | float | bool))
        ]
        view.history = [
            s if isinstance(s, str) else json.dumps(s, ensure_ascii=False)
            for s in data.get("status_history") or []
        ]
    if "summary.json" in vm.files:  # a network probe's summary (harness/net/wire.py)
        try:
            summary = json.loads((vm.dir / "summary.json").read_text())
        except (OSError, ValueError):
            summary = {}
        view.wire = [
            (k, json.dumps(v) if isinstance(v, list) else str(v)) for k, v in summary.items()
        ]
        view.plot = UP + plots[vm.name] if vm.name in plots else view.plot
    if "qmp.jsonl" in vm.files:
        tr = read_transcript(vm.dir / "qmp.jsonl")
        if tr is not None:
            view.transcript = _transcript_rows(tr)
            view.transcript_link = f"{UP}{vm.rel}/qmp.jsonl"
            view.omitted, view.bad_lines = tr.omitted, tr.bad_lines
    for name, title, always in (
        ("serial.log", "Console", True),
        ("stderr.log", "Hypervisor stderr", False),
        ("stdout.log", "Hypervisor stdout", False),
    ):
        log = _log(vm, name, title, always)
        if log is not None:
            view.logs.append(log)
    return view


def _claims(r: TestResult, catalog: Mapping[str, Entry]) -> list[dict[str, str]]:
    rows = []
    for cid in r.catalog:
        e = catalog.get(cid)
        if e is None:
            rows.append({"id": cid, "known": ""})
            continue
        rows.append(
            {
                "id": cid,
                "known": "yes",
                "claim": e.claim,
                "where": " § ".join(x for x in (e.source, e.section) if x),
                "expect": (e.expectation(r.target) if r.target else "") or "-",
                "note": e.note(r.target) if r.target else e.evidence,
            }
        )
    return rows


def render_test_page(
    run_dir: Path,
    result: TestResult,
    catalog: Mapping[str, Entry],
    plots: Mapping[str, str],
    run_id: str,
) -> str:
    """The HTML page of one result; ``plots`` maps vm name -> PNG path (run-relative)."""
    return render(
        "test.html",
        r=result,
        run_id=run_id,
        up=UP,
        context=context_items(result.context),
        claims=_claims(result, catalog),
        vms=[_vm_view(vm, plots) for vm in vm_artifacts(run_dir, result.artifacts)],
    )
