"""A synchronous QMP session on top of the ``qemu.qmp`` library.

``qemu.qmp`` does the protocol (greeting, negotiation, ids, framing); this adds what
tests need: a blocking facade with a per-call timeout (scaled), event listeners with
subdict matching, and a JSONL transcript of every message in both directions.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
import time
from collections.abc import Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, TextIO

from qemu.qmp import ExecuteError, Message, QMPClient
from qemu.qmp.error import ProtocolError
from qemu.qmp.models import Greeting
from qemu.qmp.qmp_client import GreetingError

from harness.errors import HarnessError, QMPCommandError, QMPTimeout
from harness.waits import scaled

JSON = dict[str, Any]


def subdict_match(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    """True when every key of ``expected`` is in ``actual`` with a matching value.

    Nested mappings match recursively (a subset), other values must be equal.
    """
    for key, want in expected.items():
        if key not in actual:
            return False
        have = actual[key]
        if isinstance(want, Mapping):
            if not isinstance(have, Mapping) or not subdict_match(want, have):
                return False
        elif have != want:
            return False
    return True


class _Transcript:
    """Append-only JSONL log: one object per message, direction and wall time."""

    def __init__(self, path: Path | None) -> None:
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")

    def write(self, direction: str, message: object) -> None:
        if self._file is None:
            return
        line = json.dumps({"t": round(time.time(), 6), "dir": direction, "msg": message})
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class _RecordingClient(QMPClient):
    """QMPClient that records every message it sends and receives, and takes events
    that arrive before the greeting (see :meth:`_get_greeting`)."""

    #: Events accepted ahead of the greeting before the server is declared not QMP.
    MAX_EARLY_EVENTS = 64

    def __init__(self, name: str, transcript: _Transcript) -> None:
        super().__init__(name)
        self._transcript = transcript
        self.first_message: JSON | None = None  # the greeting, as received
        self.received: list[JSON] = []  # every message, in arrival order
        self.early_events: list[Message] = []

    async def _get_greeting(self) -> Greeting:
        """Read the greeting, keeping any event sent ahead of it.

        QEMU 7.2 can send an event before its greeting. A QMP monitor that never had a
        session has no command table yet (monitor/qmp.c sets it when CHR_EVENT_OPENED
        arrives), monitor_qapi_event_emit (monitor/monitor.c) sends events to every
        monitor whose table is not the negotiation one, and the socket chardev counts
        the client as connected before it runs the OPENED handler
        (chardev/char-socket.c tcp_chr_connect, in the monitor's own thread). An event
        the main thread emits in between (MIGRATION "setup" of a VM started with
        -incoming) is written first. Seen once in a CI run restoring a snapshot."""
        for _ in range(self.MAX_EARLY_EVENTS + 1):
            msg = await self._recv()
            if "event" in msg and "QMP" not in msg:
                self.early_events.append(msg)
                continue
            try:
                greeting = Greeting(msg)
            except (ProtocolError, KeyError, TypeError) as err:
                raise GreetingError("Did not understand Greeting", err) from err
            self.first_message = dict(msg)
            return greeting
        raise GreetingError(
            f"no greeting after {self.MAX_EARLY_EVENTS} events",
            ProtocolError("events only"),
        )

    async def _establish_session(self) -> None:
        await super()._establish_session()
        # Nothing has run in between: the reader starts at our next await, so these
        # stay ahead of every later event.
        early, self.early_events = self.early_events, []
        for msg in early:
            await self._event_dispatch(msg)

    async def _do_recv(self) -> Message:
        msg = await super()._do_recv()
        raw = dict(msg)
        self.received.append(raw)
        self._transcript.write("recv", raw)
        return msg

    def _do_send(self, msg: Message) -> None:
        self._transcript.write("send", dict(msg))
        super()._do_send(msg)


class EventLog:
    """Every event since the session opened, so a wait never misses an early event."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._events: list[JSON] = []

    def append(self, event: JSON) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    def snapshot(self) -> list[JSON]:
        with self._cond:
            return list(self._events)

    def mark(self) -> int:
        """A position: waits from here ignore events seen before."""
        with self._cond:
            return len(self._events)

    def wait(self, name: str, match: Mapping[str, Any] | None, since: int, timeout: float) -> JSON:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self._events[since:]:
                    if event.get("event") == name and subdict_match(
                        match or {}, event.get("data", {})
                    ):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise QMPTimeout(
                        f"event {name} {dict(match or {})} not received within {timeout:.1f}s",
                        {"events": self._events[-20:]},
                    )
                self._cond.wait(left)


class QMPSession:
    """Blocking QMP session; the asyncio loop runs in a private thread."""

    def __init__(self, name: str, transcript: Path | None = None) -> None:
        self.name = name
        self._transcript = _Transcript(transcript)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"qmp-{name}", daemon=True
        )
        self._loop.set_exception_handler(self._loop_exception)
        self._thread.start()
        self._client = _RecordingClient(name, self._transcript)
        self.events = EventLog()
        self._pump: concurrent.futures.Future[None] | None = None
        self._closed = False

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """A hypervisor that exits (quit, crash) ends the stream: expected, not news."""
        exc = context.get("exception")
        if isinstance(exc, (EOFError, ConnectionError)):
            return
        loop.default_exception_handler(context)

    def _call(self, coro: Any, timeout: float, what: str) -> Any:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise QMPTimeout(f"{self.name}: {what} did not answer within {timeout:.1f}s") from None

    def connect(self, socket_path: Path, timeout: float = 10.0) -> JSON:
        """Connect, read the greeting and negotiate capabilities; return the greeting."""
        try:
            self._call(self._client.connect(str(socket_path)), scaled(timeout), "connect")
        except QMPTimeout:
            raise
        except Exception as exc:
            raise HarnessError(f"{self.name}: QMP connect to {socket_path} failed: {exc}") from exc
        self._pump = asyncio.run_coroutine_threadsafe(self._pump_events(), self._loop)
        return dict(self._client.first_message or {})

    async def _pump_events(self) -> None:
        async for event in self._client.events:
            self.events.append(dict(event))

    def execute(
        self,
        command: str,
        arguments: Mapping[str, Any] | None = None,
        timeout: float = 30.0,
        oob: bool = False,
    ) -> Any:
        """Run a command and return its ``return`` value; errors raise QMPCommandError.

        ``oob``: as ``exec-oob``, answered by the monitor's own thread even while the
        main loop is blocked (a post-copy destination waiting for pages: migrate-recover
        is allowed out of band, qapi/migration.json)."""
        args = dict(arguments) if arguments else None
        try:
            call = self._client.execute(command, args, oob=oob)
            return self._call(call, scaled(timeout), command)
        except ExecuteError as exc:
            err = exc.error.error
            raise QMPCommandError(
                f"{self.name}: {command} failed: {err.class_}: {err.desc}",
                err.class_,
                err.desc,
                {"sent": dict(exc.sent), "received": dict(exc.received)},
            ) from exc
        except QMPTimeout:
            raise
        except Exception as exc:
            raise HarnessError(
                f"{self.name}: {command} failed: {type(exc).__name__}: {exc}",
                {"sent": {"execute": command, "arguments": args}},
            ) from exc

    def execute_raw(self, message: Mapping[str, Any], timeout: float = 30.0) -> JSON:
        """Send ``message`` as it is (any members, any types: a malformed request) and
        return the whole reply, ``return`` or ``error``, without its ``id``."""
        try:
            reply = self._call(self._client._raw(dict(message)), scaled(timeout), "raw message")
        except QMPTimeout:
            raise
        except Exception as exc:
            raise HarnessError(
                f"{self.name}: raw message failed: {type(exc).__name__}: {exc}",
                {"sent": dict(message)},
            ) from exc
        out = dict(reply)
        out.pop("id", None)
        return out

    def received(self) -> list[JSON]:
        """Every message received so far (greeting, replies, events) in arrival order."""
        return list(self._client.received)

    def wait_event(
        self,
        name: str,
        match: Mapping[str, Any] | None = None,
        since: int = 0,
        timeout: float = 30.0,
    ) -> JSON:
        """The one event-wait helper: first event ``name`` whose data contains ``match``."""
        return self.events.wait(name, match, since, scaled(timeout))

    def close(self) -> None:
        """Idempotent: disconnect and stop the private loop."""
        if self._closed:
            return
        self._closed = True
        if self._pump is not None:
            self._pump.cancel()
        try:
            self._call(self._client.disconnect(), 5.0, "disconnect")
        except Exception:
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._loop.close()
        self._transcript.close()
