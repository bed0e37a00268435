"""A thin asyncio QMP server speaking one profile's dialect over a unix or tcp socket.

Dialect differences come from :class:`~simulator.qmp_wire.Dialect` (built from the
model's ``Profile``): greeting shape, whether ``qmp_capabilities`` must come first (QEMU)
or is optional and answered without ``id`` (StratoVirt), framing (QEMU: a JSON stream;
StratoVirt: each read is one JSON value, at most 8 KiB), string-only ids, error texts,
event-before/after-reply order and a 100/s leak bucket (StratoVirt). One client at a
time; a later client waits for its greeting until the first leaves. Bad input never kills
it: every message gets an error reply, an abrupt disconnect just ends that session.

Out of band (QEMU monitor/qmp.c, qapi/qmp-dispatch.c): with the "oob" capability
negotiated, ``exec-oob`` of a command that allows it (migrate-recover, migrate-pause) is
answered at once by the monitor's own thread; in-band commands wait in order while the
process's main loop is blocked (``blocked``: a post-copy destination waiting for pages).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from simulator import qmp_schema
from simulator.model.errors import ErrorClass, QmpError
from simulator.qmp_wire import Dialect, JsonSplitter

JSON = dict[str, Any]
#: The process's command hook: (command, arguments) -> (reply or QmpError, events). The
#: reply may be a future of (reply, events): the session then waits for it.
Executor = Callable[[str, JSON], tuple[Any, list[tuple[str, JSON]]]]
#: qapi: the commands with allow-oob
OOB_COMMANDS = frozenset({"migrate-recover", "migrate-pause", "x-oob-test"})
Inband = asyncio.Queue[bytes | str]
#: Wall seconds between two looks at a blocked main loop.
BLOCKED_POLL_S = 0.01


def _plain(obj: Any) -> Any:
    """Mapping proxies -> dicts, for json.dumps."""
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _serde_parse_error(exc: json.JSONDecodeError) -> str:
    msg = {"Expecting value": "expected value", "Extra data": "trailing characters"}.get(
        exc.msg, exc.msg[:1].lower() + exc.msg[1:]
    )
    return f"{msg} at line {exc.lineno} column {exc.colno}"


class QmpServer:
    """Serves one VM's QMP socket."""

    def __init__(self, dialect: Dialect, execute: Executor, ready: asyncio.Event) -> None:
        self.dialect = dialect
        self.execute = execute
        self.ready = ready  # greeting withheld until set (StratoVirt incoming)
        self._lock = asyncio.Lock()
        self._writer: asyncio.StreamWriter | None = None
        self._negotiated = False
        self._oob = False
        self._bucket: list[float] = []
        self.closing = False
        self.blocked: Callable[[], bool] = lambda: False  # the main loop waits (in-band)

    # ------------------------------------------------------------------ output
    def _send(self, writer: asyncio.StreamWriter, msg: Any) -> None:
        if writer.is_closing():
            return
        data = json.dumps(_plain(msg), separators=(", ", ": ")).encode() + b"\r\n"
        writer.write(data)

    def emit(self, name: str, data: JSON) -> None:
        """Send an event to the connected client (dropped when none, as both products do)."""
        w = self._writer
        if w is None or (self.dialect.negotiation_required and not self._negotiated):
            return
        now = time.time()
        sec = int(now)
        ts = {"seconds": sec, "microseconds": int((now - sec) * 1e6)}
        self._send(w, {"event": name, "data": data, "timestamp": ts})

    async def drain(self) -> None:
        w = self._writer
        if w is not None and not w.is_closing():
            with contextlib.suppress(ConnectionError, OSError):
                await w.drain()

    async def close_client(self) -> None:
        w = self._writer
        if w is not None:
            await self.drain()
            w.close()
            with contextlib.suppress(ConnectionError, OSError):
                await w.wait_closed()

    # ------------------------------------------------------------------ sessions
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with self._lock:
                await self.ready.wait()
                if self.closing:
                    return
                self._writer, self._negotiated, self._bucket = writer, False, []
                self._oob = False
                try:
                    await self._session(reader, writer)
                finally:
                    self._writer = None
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except Exception as exc:  # never die on a client: report and drop the session
            print(f"simulator: QMP session error: {exc!r}", file=sys.stderr, flush=True)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._send(writer, self.dialect.greeting)
        await writer.drain()
        splitter = JsonSplitter(self.dialect.max_message)
        inband: Inband = asyncio.Queue()
        worker = asyncio.get_running_loop().create_task(self._inband(writer, inband))
        try:
            while not self.closing and not worker.done():
                chunk = await reader.read(65536)
                if not chunk:
                    if not self.blocked():
                        await inband.join()  # what came before the end is still answered
                    return
                if self.dialect.stream_framing:
                    items = splitter.feed(chunk)
                else:
                    items = [self._strato_frame(chunk)]
                for item in items:
                    if item == b"":
                        continue
                    if isinstance(item, bytes) and self._oob and _is_oob(item):
                        await self._message(writer, item)  # the monitor thread: at once
                        await writer.drain()
                    else:
                        inband.put_nowait(item)
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    async def _inband(
        self, writer: asyncio.StreamWriter, queue: asyncio.Queue[bytes | str]
    ) -> None:
        """In-band messages in order, each once the main loop runs."""
        while not self.closing:
            item = await queue.get()
            try:
                while self.blocked() and not self.closing:
                    await asyncio.sleep(BLOCKED_POLL_S)
                if isinstance(item, str):
                    self._send(writer, QmpError(ErrorClass.GENERIC_ERROR, item).to_qmp())
                else:
                    await self._message(writer, item)
                await writer.drain()
            finally:
                queue.task_done()

    def _strato_frame(self, chunk: bytes) -> bytes | str:
        if len(chunk) > self.dialect.max_message:
            return "The socket message is too long."
        return chunk.strip()

    def _throttled(self) -> bool:
        limit = self.dialect.rate_limit
        if not limit:
            return False
        now = time.monotonic()
        self._bucket = [t for t in self._bucket if now - t < 1.0]
        if len(self._bucket) >= limit:
            return True
        self._bucket.append(now)
        return False

    # ------------------------------------------------------------------ one message
    async def _message(self, writer: asyncio.StreamWriter, raw: bytes) -> None:
        strato = not self.dialect.stream_framing
        if self._throttled():
            desc = f"More than {self.dialect.rate_limit} requests received during 1 second"
            self._send(writer, {"error": {"class": "OperationThrottled", "desc": desc}})
            return
        try:
            msg = json.loads(raw.decode("utf-8", errors="strict"))
        except UnicodeDecodeError:
            self._send(
                writer,
                QmpError(
                    ErrorClass.GENERIC_ERROR, "JSON parse error, invalid UTF-8 sequence in string"
                ).to_qmp(),
            )
            return
        except json.JSONDecodeError as exc:
            desc = _serde_parse_error(exc) if strato else "JSON parse error, invalid token"
            self._send(writer, QmpError(ErrorClass.GENERIC_ERROR, desc).to_qmp())
            return
        except RecursionError:
            self._send(
                writer,
                QmpError(ErrorClass.GENERIC_ERROR, "JSON parse error, nesting too deep").to_qmp(),
            )
            return
        err, cmd, args, mid, has_id = self._validate(msg)
        if err is not None:
            out = QmpError(
                ErrorClass.GENERIC_ERROR if not isinstance(err, QmpError) else err.cls,
                err if isinstance(err, str) else err.desc,
            ).to_qmp()
            if has_id and not (self.dialect.string_ids_only and not isinstance(mid, str)):
                out["id"] = mid
            self._send(writer, out)
            return
        reply, events = self._run(cmd, args)
        if isinstance(reply, asyncio.Future):
            # A handler that blocks its main loop (StratoVirt's synchronous connect): this
            # session answers nothing else until it is done; the process runs on.
            try:
                reply, more = await reply
            except Exception as exc:
                print(f"simulator: {cmd} raised {exc!r}", file=sys.stderr, flush=True)
                reply, more = QmpError(ErrorClass.GENERIC_ERROR, f"internal error: {exc}"), []
            events = list(events) + list(more)
        out = reply.to_qmp() if isinstance(reply, QmpError) else {"return": reply}
        if has_id and not (strato and cmd == "qmp_capabilities"):
            out["id"] = mid
        if self.dialect.event_first and cmd not in self.dialect.deferred:
            for name, data in events:
                self.emit(name, data)
            self._send(writer, out)
        else:
            self._send(writer, out)
            for name, data in events:
                self.emit(name, data)

    def _validate(self, msg: Any) -> tuple[str | QmpError | None, str, JSON, Any, bool]:
        strato = not self.dialect.stream_framing
        if not isinstance(msg, dict):
            text = (
                f"invalid type: {qmp_schema._serde_type(msg)}, expected internally tagged enum"
                if strato
                else "QMP input must be a JSON object"
            )
            return text, "", {}, None, False
        has_id, mid = "id" in msg, msg.get("id")
        if self.dialect.string_ids_only and has_id and not isinstance(mid, str):
            return (
                f"invalid type: {qmp_schema._serde_type(mid)}, expected a string",
                "",
                {},
                mid,
                True,
            )
        for key in msg:
            if key not in ("execute", "arguments", "id") and not (key == "exec-oob" and self._oob):
                text = (
                    f"unknown field `{key}`, expected `execute`, `arguments` or `id`"
                    if strato
                    else f"QMP input member '{key}' is unexpected"
                )
                return text, "", {}, mid, has_id
        cmd = msg.get("execute", msg.get("exec-oob"))
        if cmd is None:
            return (
                "missing field `execute`" if strato else "QMP input lacks member 'execute'",
                "",
                {},
                mid,
                has_id,
            )
        if not isinstance(cmd, str):
            return (
                f"invalid type: {qmp_schema._serde_type(cmd)}, expected a string"
                if strato
                else "QMP input member 'execute' must be a string",
                "",
                {},
                mid,
                has_id,
            )
        args = msg.get("arguments", {})
        if not isinstance(args, dict):
            return (
                f"invalid type: {qmp_schema._serde_type(args)}, expected a map"
                if strato
                else "QMP input member 'arguments' must be an object",
                cmd,
                {},
                mid,
                has_id,
            )
        if "exec-oob" in msg and cmd not in OOB_COMMANDS:
            return f"The command {cmd} does not support OOB", cmd, args, mid, has_id
        if self.dialect.negotiation_required:
            if cmd == "qmp_capabilities" and self._negotiated:
                return (
                    QmpError(
                        ErrorClass.COMMAND_NOT_FOUND,
                        "Capabilities negotiation is already complete, command ignored",
                    ),
                    cmd,
                    args,
                    mid,
                    has_id,
                )
            if cmd != "qmp_capabilities" and not self._negotiated:
                return (
                    QmpError(
                        ErrorClass.COMMAND_NOT_FOUND,
                        "Expecting capabilities negotiation with 'qmp_capabilities'",
                    ),
                    cmd,
                    args,
                    mid,
                    has_id,
                )
        bad = qmp_schema.check(cmd, args, strato)
        if bad is not None:
            return bad, cmd, args, mid, has_id
        return None, cmd, args, mid, has_id

    def _run(self, cmd: str, args: JSON) -> tuple[Any, list[tuple[str, JSON]]]:
        if cmd == "qmp_capabilities":
            enable = args.get("enable", [])
            if self.dialect.negotiation_required:
                bad = [c for c in enable if c != "oob"]
                if bad:
                    return QmpError(
                        ErrorClass.GENERIC_ERROR,
                        f"Parameter 'enable' does not accept value '{bad[0]}'",
                    ), []
                self._negotiated = True
                self._oob = "oob" in enable
            return {}, []
        try:
            return self.execute(cmd, args)
        except Exception as exc:  # a model bug must not take the server down
            print(f"simulator: {cmd} raised {exc!r}", file=sys.stderr, flush=True)
            return QmpError(ErrorClass.GENERIC_ERROR, f"internal error: {exc}"), []


def _is_oob(raw: bytes) -> bool:
    """An ``exec-oob`` request (anything else, a bad one included, goes in band)."""
    if b"exec-oob" not in raw:
        return False
    try:
        msg = json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return isinstance(msg, dict) and "exec-oob" in msg
