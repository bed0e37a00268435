"""The live migration stream on the wire, per the profile's ``stream_format``.

Sender and receiver speak in frames (dicts with a ``"t"`` type, see
:mod:`simulator.transport`); a :class:`Wire` carries them:

- :class:`FrameWire` (``HVLAB_FRAMES``): the frames themselves, length-prefixed JSON.
- :class:`StratoWire` (``STRATOVIRT``): StratoVirt's messages (migration/src/protocol.rs
  ``Request {length: u64, status: u16}`` padded to 16 bytes, ``Response {status: u16}``,
  native little-endian), in migration.rs's lock-step order::

      src: Request{Active}                      dst: Response{Ok}
      src: Request{VmConfig, n} + config        dst: Response{Ok|Error}
      src: Request{Memory, n} + pages           dst: Response{Ok}        (each round)
      src: Request{State, 0} + vmstate          dst: Response{Ok|Error}
      src: Request{Complete}                    dst: Response{Ok}
      src: Request{Cancel}                      dst: Response{Ok}        (instead)

  The configuration and the pages are the simulator's own JSON; the vmstate is
  StratoVirt's layout with its 4096-byte header (:mod:`strato_format`), checked by the
  destination as ``check_header`` does. The destination's configuration does not come
  back (the source's model stands in its own twin for it: see ``Outgoing``).
"""

from __future__ import annotations

import asyncio
import enum
import json
import struct
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from simulator import transport
from simulator.migration_io import strato_format as fmt
from simulator.model.host import Host
from simulator.model.profile_kinds import StreamFormat

JSON = dict[str, Any]
_REQUEST = struct.Struct("<QH6x")
_RESPONSE = struct.Struct("<H")
#: migration.rs check_vm_config / recv_vm_memory: "Given 1MB is enough".
_MAX_MESSAGE = 1 << 20


class Trans(enum.IntEnum):
    """protocol.rs TransStatus (repr u16)."""

    ACTIVE = 0
    VM_CONFIG = 1
    MEMORY = 2
    STATE = 3
    COMPLETE = 4
    CANCEL = 5
    OK = 6
    ERROR = 7
    UNKNOWN = 8


class Wire(Protocol):
    """One side of a migration stream, in frames."""

    async def send(self, frame: JSON) -> None: ...

    async def recv(self) -> JSON: ...

    async def begin_pad(self, n: int) -> None:
        """Announce ``n`` bytes of page data the caller then writes raw (the source)."""

    async def end_pad(self) -> None:
        """After those bytes: the answer the format waits for, if any."""


class FrameWire:
    """The simulator's own framing (simulator/transport.py)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, frame: JSON) -> None:
        await transport.send_frame(self.writer, frame)

    async def recv(self) -> JSON:
        return await transport.recv_frame(self.reader)

    async def begin_pad(self, n: int) -> None:
        await self.send({"t": "pad", "n": n})

    async def end_pad(self) -> None:
        pass


class _Strato:
    """StratoVirt's Request/Response messages over one stream; ``host`` writes and
    checks the header."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: Host
    ) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    async def _read(self, n: int) -> bytes:
        try:
            return await self.reader.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            raise transport.StreamClosed(
                "Failed to read migration stream: unexpected end of file"
            ) from exc
        except (ConnectionError, OSError) as exc:
            raise transport.StreamError(f"Failed to read migration stream: {exc}") from exc

    async def _request(
        self, status: Trans, payload: bytes = b"", length: int | None = None
    ) -> None:
        n = len(payload) if length is None else length
        self.writer.write(_REQUEST.pack(n, status) + payload)
        await self.writer.drain()

    async def _respond(self, status: Trans) -> None:
        self.writer.write(_RESPONSE.pack(status))
        await self.writer.drain()

    async def _response(self) -> Trans:
        (status,) = _RESPONSE.unpack(await self._read(_RESPONSE.size))
        return _trans(status)

    async def _expect_ok(self) -> None:
        if await self._response() is not Trans.OK:
            raise transport.StreamError("Response error")  # error.rs ResponseErr

    async def _next_request(self) -> tuple[Trans, int]:
        length, status = _REQUEST.unpack(await self._read(_REQUEST.size))
        return _trans(status), int(length)

    async def _json(self, length: int, what: str) -> Any:
        if length > _MAX_MESSAGE:
            raise transport.StreamError(f"Source {what} size is too large")
        try:
            return json.loads(await self._read(length))
        except ValueError as exc:
            raise transport.StreamError(f"malformed {what} in the migration stream") from exc


def _trans(status: int) -> Trans:
    return Trans(status) if status in {t.value for t in Trans} else Trans.UNKNOWN


class StratoSource(_Strato):
    """The source's end (migration.rs send_migration)."""

    _answers = "ack"  # what the next Response answers: the configuration, then the state

    async def send(self, frame: JSON) -> None:
        kind = frame["t"]
        if kind == "hello":
            await self._request(Trans.ACTIVE)
            await self._expect_ok()
            config = json.dumps(frame["config"], separators=(",", ":")).encode()
            await self._request(Trans.VM_CONFIG, config)
        elif kind == "mem":
            await self._request(Trans.MEMORY, json.dumps(frame["ranges"]).encode())
            await self._expect_ok()
        elif kind == "done":  # send_vmstate: Request{State, 0}, then save_vmstate's bytes
            state = {k: v for k, v in frame.items() if k != "t"}
            await self._request(Trans.STATE, fmt.vmstate(self.host, state), length=0)
            self._answers = "ok"
        elif kind == "cancel":
            await self._request(Trans.CANCEL)
            await self._expect_ok()
        else:
            raise transport.StreamError(f"no StratoVirt message for frame {kind!r}")

    async def begin_pad(self, n: int) -> None:
        """send_memory: Request{Memory, len}, the MemBlocks, then the blocks' bytes (which
        the Request's length does not count); the caller writes those bytes."""
        await self._request(Trans.MEMORY, json.dumps({"ranges": [], "data": n}).encode())

    async def end_pad(self) -> None:
        await self._expect_ok()

    async def recv(self) -> JSON:
        ok = await self._response() is Trans.OK
        if self._answers == "ack":
            self._answers = "ok"
            return {"t": "ack", "ok": ok, "error": None if ok else "Response error"}
        if not ok:
            return {"t": "bad", "error": "Response error"}
        await self._request(Trans.COMPLETE)  # complete_migration
        await self._expect_ok()
        return {"t": "ok"}


class StratoDestination(_Strato):
    """The destination's end (migration.rs recv_migration)."""

    _started = False

    async def recv(self) -> JSON:
        while True:
            status, length = await self._next_request()
            if not self._started:
                self._started = True
                if status is not Trans.ACTIVE:
                    await self._respond(Trans.ERROR)
                    raise transport.StreamError(
                        f"Migration status mismatch: source {status.value}, destination Active."
                    )
                await self._respond(Trans.OK)
                status, length = await self._next_request()
                if status is not Trans.VM_CONFIG:
                    await self._respond(Trans.ERROR)
                    raise transport.StreamError(
                        f"Migration status mismatch: source {status.value}, destination VmConfig."
                    )
                return {"t": "hello", "config": await self._json(length, "vm_config")}
            if status is Trans.MEMORY:
                blocks = await self._json(length, "MemBlock config")
                ranges, data = (
                    (blocks.get("ranges", []), int(blocks.get("data", 0)))
                    if isinstance(blocks, dict)
                    else (blocks, 0)
                )
                while data > 0:  # recv_memory: the blocks' bytes
                    chunk = await self.reader.read(min(data, transport.STREAM_LIMIT))
                    if not chunk:
                        raise transport.StreamClosed("migration stream ended in page data")
                    data -= len(chunk)
                await self._respond(Trans.OK)
                return {"t": "mem", "ranges": ranges}
            if status is Trans.STATE:
                return {"t": "done", **await self._vmstate()}
            if status is Trans.CANCEL:
                await self._respond(Trans.OK)
                return {"t": "cancel"}
            # recv_migration: warn!("Unable to distinguish status") and read on

    async def _vmstate(self) -> JSON:
        """recv_vmstate: restore_header + check_header, the descriptors, the instance."""
        try:
            fields = fmt.parse_header(await self._read(fmt.HEADER_LENGTH))
            fmt.check_header(fields, self.host)
        except fmt.HeaderError as exc:
            raise transport.StreamError(str(exc)) from exc
        await self._read(int(fields.get("desc_len", 0)))
        size = fmt.instance_size(await self._read(fmt.INSTANCE_LEN))
        state = await self._json(size, "device state")
        if not isinstance(state, dict):
            raise transport.StreamError("malformed device state in the migration stream")
        return state

    async def begin_pad(self, n: int) -> None:
        raise transport.StreamError("the destination sends no page data")

    async def end_pad(self) -> None:
        pass

    async def send(self, frame: JSON) -> None:
        kind = frame["t"]
        if kind == "ack":
            await self._respond(Trans.OK if frame.get("ok") else Trans.ERROR)
        elif kind == "ok":  # the state is restored; then finish_migration's Complete
            await self._respond(Trans.OK)
            status, _ = await self._next_request()
            if status is Trans.COMPLETE:
                await self._respond(Trans.OK)
        elif kind == "bad":
            await self._respond(Trans.ERROR)
        else:
            raise transport.StreamError(f"no StratoVirt message for frame {kind!r}")


Opener = Callable[[asyncio.StreamReader, asyncio.StreamWriter, Host], Wire]

#: Per stream format: the source's and the destination's end.
_WIRES: Mapping[StreamFormat, tuple[Opener, Opener]] = {
    StreamFormat.HVLAB_FRAMES: (
        lambda r, w, h: FrameWire(r, w),
        lambda r, w, h: FrameWire(r, w),
    ),
    StreamFormat.STRATOVIRT: (StratoSource, StratoDestination),
}


def source_wire(
    form: StreamFormat, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: Host
) -> Wire:
    return _WIRES[form][0](reader, writer, host)


def destination_wire(
    form: StreamFormat, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: Host
) -> Wire:
    return _WIRES[form][1](reader, writer, host)
