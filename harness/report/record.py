"""From pytest's reports to :class:`TestResult`: outcome, target, catalog ids, failure context.

The plugin hands every phase report to a :class:`Recorder`; after teardown it gets the
test's one result. A test's target is the value of its ``target`` parameter, or of a
parameter named ``<something>_target`` (another axis, e.g. ``libvirt_target``): any
object with a ``name``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from harness.errors import HarnessError
from harness.report.results import TestResult

CONTEXT_TEXT_LIMIT = 8000  # characters of one context string kept (its tail)
CONTEXT_ITEMS_LIMIT = 200  # items of one context list or dict kept
MESSAGE_LIMIT = 4000  # characters of a failure message kept (its tail)


def target_name(item: pytest.Item) -> str:
    """The name of the test's target axis value, or "" for a test without one."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return ""
    params: Mapping[str, Any] = callspec.params
    keys = [k for k in params if k == "target"] + sorted(k for k in params if k.endswith("_target"))
    for key in keys:
        name = getattr(params[key], "name", None)
        if isinstance(name, str) and name:
            return name
    return ""


def _bounded(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-able data of bounded size (strings keep their tail)."""
    if isinstance(value, str):
        return value[-CONTEXT_TEXT_LIMIT:]
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth > 6:
        return str(value)[-CONTEXT_TEXT_LIMIT:]
    if isinstance(value, Mapping):
        items = list(value.items())[:CONTEXT_ITEMS_LIMIT]
        return {str(k): _bounded(v, depth + 1) for k, v in items}
    if isinstance(value, list | tuple | set | frozenset):
        return [_bounded(v, depth + 1) for v in list(value)[:CONTEXT_ITEMS_LIMIT]]
    try:
        return _bounded(json.loads(json.dumps(value)), depth + 1)
    except (TypeError, ValueError):
        return str(value)[-CONTEXT_TEXT_LIMIT:]


def failure_context(exc: BaseException | None) -> dict[str, Any]:
    """The context of the first HarnessError in ``exc``'s chain (itself, its cause, the
    exception it was raised while handling), with its type under ``error``; else {}."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, HarnessError):
            context = {"error": type(exc).__name__, **exc.context}
            bounded = _bounded(context)
            return bounded if isinstance(bounded, dict) else {}
        exc = exc.__cause__ or exc.__context__
    return {}


def _skip_reason(rep: pytest.TestReport) -> str:
    longrepr = rep.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def outcome_of(phases: Mapping[str, pytest.TestReport]) -> tuple[str, str, str]:
    """(outcome, message, deciding phase) of a test from its setup/call/teardown reports."""
    setup, call, teardown = phases.get("setup"), phases.get("call"), phases.get("teardown")
    outcome, message, phase = "passed", "", ""
    if setup is not None and setup.skipped:
        outcome, message, phase = "skipped", _skip_reason(setup), "setup"
    elif setup is not None and setup.failed:
        outcome, message, phase = "error", setup.longreprtext, "setup"
    elif call is not None and hasattr(call, "wasxfail"):
        # a strict xfail is how the catalog marks "diverges from docs"
        outcome, message, phase = "diverged", str(getattr(call, "wasxfail", "")), "call"
    elif call is not None and call.failed:
        outcome, message, phase = "failed", call.longreprtext, "call"
    elif call is not None and call.skipped:
        outcome, message, phase = "skipped", _skip_reason(call), "call"
    if teardown is not None and teardown.failed and outcome != "failed":
        outcome, message, phase = "error", teardown.longreprtext, "teardown"
    return outcome, message, phase


#: the user property (set by the ``vms`` fixture) naming the hosts a test's VMs ran on
HOSTS_PROPERTY = "hvlab_hosts"


def _hosts(item: pytest.Item) -> list[str]:
    for key, value in item.user_properties:
        if key == HOSTS_PROPERTY and isinstance(value, list):
            return [str(v) for v in value]
    return []


class Recorder:
    """Collects a test's phase reports (and failure contexts) until its teardown."""

    def __init__(self) -> None:
        self._phases: dict[str, dict[str, pytest.TestReport]] = {}
        self._contexts: dict[str, dict[str, dict[str, Any]]] = {}

    def add(
        self, item: pytest.Item, call: pytest.CallInfo[None], rep: pytest.TestReport, artifacts: str
    ) -> TestResult | None:
        """Record one phase; after teardown, return the test's result."""
        self._phases.setdefault(item.nodeid, {})[rep.when] = rep
        if rep.failed and call.excinfo is not None:
            context = failure_context(call.excinfo.value)
            if context:
                self._contexts.setdefault(item.nodeid, {})[rep.when] = context
        if rep.when != "teardown":
            return None
        phases = self._phases.pop(item.nodeid)
        contexts = self._contexts.pop(item.nodeid, {})
        outcome, message, phase = outcome_of(phases)
        ids = [str(a) for mark in item.iter_markers("catalog") for a in mark.args]
        func = getattr(item, "function", None)
        doc = (func.__doc__ or "").strip() if func is not None else ""
        return TestResult(
            nodeid=item.nodeid,
            name=item.name,
            target=target_name(item),
            outcome=outcome,
            duration=round(sum(r.duration for r in phases.values()), 3),
            message=message[-MESSAGE_LIMIT:],
            catalog=ids,
            doc=doc,
            artifacts=artifacts,
            context=contexts.get(phase, {}) if outcome in ("failed", "error") else {},
            hosts=_hosts(item),
        )
