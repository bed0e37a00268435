"""The QMP session: its pure helpers (subdict matching, the event log's waits) and its
client against a monitor that sends events ahead of its greeting."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from pathlib import Path

import pytest

from harness.errors import HarnessError, QMPTimeout
from harness.qmp import EventLog, QMPSession, _RecordingClient, subdict_match


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


def _qmp_server_with_early_event(path: Path, early: list[dict[str, object]]) -> threading.Thread:
    """A QMP server that writes ``early`` events before its greeting, as QEMU 7.2 does
    when its main thread emits an event while the monitor's thread is taking a new
    connection (monitor/qmp.c, chardev/char-socket.c), then answers the negotiation and
    query-status. It stands in for QEMU's monitor; the client is what is tested."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def send(conn: socket.socket, msg: object) -> None:
        conn.sendall(json.dumps(msg).encode() + b"\r\n")

    def serve() -> None:
        conn, _ = server.accept()
        server.close()
        decoder, pending = json.JSONDecoder(), ""
        # the client may close with replies unread (a reset): the end of the session
        with conn, contextlib.suppress(ConnectionResetError, BrokenPipeError):
            for event in early:
                send(conn, event)
            send(conn, {"QMP": {"version": {}, "capabilities": ["oob"]}})
            while chunk := conn.recv(4096):
                pending += chunk.decode()
                while pending.strip():  # requests come without newlines
                    try:
                        request, end = decoder.raw_decode(pending.lstrip())
                    except json.JSONDecodeError:
                        break
                    pending = pending.lstrip()[end:]
                    ident = request.get("id")
                    if request.get("execute") == "query-status":
                        reply = {"status": "inmigrate", "running": False}
                        send(conn, {"return": reply, "id": ident})
                    else:
                        send(conn, {"return": {}, "id": ident})

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_events_ahead_of_the_greeting_are_kept(tmp_path: Path) -> None:
    """A monitor that sends an event before its greeting (QEMU 7.2's race, seen when a
    VM started with -incoming emitted MIGRATION "setup") still gives a session.

    1. connect() returns the greeting, not the event.
    2. The event is in the session's event log, ahead of nothing else, and a wait
       for it finds it.
    3. Commands then work.
    4. A server that sends only events and never a greeting is refused with a
       HarnessError naming it, not a hang.
    """
    early = {"event": "MIGRATION", "data": {"status": "setup"}, "timestamp": {"seconds": 1}}
    sock = tmp_path / "qmp.sock"
    server = _qmp_server_with_early_event(sock, [early])
    session = QMPSession("early", tmp_path / "transcript.jsonl")
    try:
        greeting = session.connect(sock, timeout=10)
        assert "QMP" in greeting
        assert session.events.wait("MIGRATION", {"status": "setup"}, since=0, timeout=5)
        assert session.events.snapshot()[0]["event"] == "MIGRATION"
        assert session.execute("query-status")["status"] == "inmigrate"
    finally:
        session.close()
    server.join(timeout=5)

    flood = tmp_path / "flood.sock"
    _qmp_server_with_early_event(flood, [early] * (_RecordingClient.MAX_EARLY_EVENTS + 1))
    session = QMPSession("flood", None)
    try:
        with pytest.raises(HarnessError, match="no greeting after"):
            session.connect(flood, timeout=10)
    finally:
        session.close()
