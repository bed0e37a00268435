"""The QMP session's pure helpers: subdict matching and the event log's waits."""

from __future__ import annotations

import threading

import pytest

from harness.errors import QMPTimeout
from harness.qmp import EventLog, subdict_match


def test_subdict_match() -> None:
    """Event data matches when it contains the expected keys and values.

    1. An empty expectation matches anything.
    2. Nested mappings match as subsets; extra keys are ignored.
    3. A different value, a missing key or a non-mapping where a mapping is expected
       does not match.
    """
    data = {"device": "drive-0", "path": "/machine/peripheral/drive-0", "x": {"a": 1, "b": 2}}
    assert subdict_match({}, data)
    assert subdict_match({"device": "drive-0", "x": {"a": 1}}, data)
    assert not subdict_match({"device": "drive-1"}, data)
    assert not subdict_match({"missing": 1}, data)
    assert not subdict_match({"device": {"a": 1}}, data)


def test_event_log_waits_from_a_mark() -> None:
    """Waits see events that arrive later, and only those after the mark.

    1. An event delivered from another thread ends the wait with that event.
    2. An event before the mark is not returned for a wait from the mark.
    3. A wait for an event that never comes raises QMPTimeout naming it.
    """
    log = EventLog()
    log.append({"event": "STOP", "data": {}})
    mark = log.mark()
    timer = threading.Timer(0.05, log.append, args=({"event": "STOP", "data": {"n": 2}},))
    timer.start()
    try:
        got = log.wait("STOP", None, since=mark, timeout=5)
    finally:
        timer.join()
    assert got["data"] == {"n": 2}
    with pytest.raises(QMPTimeout, match="RESUME"):
        log.wait("RESUME", None, since=0, timeout=0.1)
