"""The QMP wire per profile: the :class:`Dialect` a server speaks and QEMU's JSON-stream
framing (:class:`JsonSplitter`). StratoVirt reads one value per read and needs no splitter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simulator.model import Profile
from simulator.model.profiles import EventOrder, QmpFraming

#: QEMU's json-streamer limits (qobject/json-streamer.c MAX_TOKEN_SIZE, MAX_NESTING).
QEMU_MAX_MESSAGE = 64 << 20
QEMU_MAX_NESTING = 1024
#: StratoVirt machine_manager/src/socket.rs: "The socket message is too long."
STRATO_MAX_MESSAGE = 8192


@dataclass(frozen=True)
class Dialect:
    """What one QMP server speaks: the profile's wire fields plus the process's rate limit."""

    greeting: Mapping[str, Any]
    negotiation_required: bool
    event_first: bool
    stream_framing: bool  # QEMU: JSON stream; StratoVirt: one value per read
    max_message: int
    string_ids_only: bool
    rate_limit: int  # commands per second, 0 = unlimited
    deferred: frozenset[str] = frozenset()  # commands whose events follow the reply anyway

    @classmethod
    def of(cls, profile: Profile, rate_limit: int) -> Dialect:
        stream = profile.qmp_framing is QmpFraming.JSON_STREAM
        return cls(
            greeting=profile.greeting,
            negotiation_required=profile.qmp_negotiation,
            event_first=profile.event_order is EventOrder.EVENT_FIRST,
            deferred=profile.qmp_deferred_events,
            stream_framing=stream,
            max_message=QEMU_MAX_MESSAGE if stream else STRATO_MAX_MESSAGE,
            string_ids_only=not stream,  # StratoVirt's serde-typed requests (the per-read wire)
            rate_limit=rate_limit,
        )


class JsonSplitter:
    """QEMU's json-streamer in miniature: cut a byte stream into top-level JSON values."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buf = bytearray()
        self.depth = 0
        self.in_str = False
        self.esc = False
        self.scalar = False

    def feed(self, data: bytes) -> list[bytes | str]:
        """Complete messages (bytes) or error texts (str) found so far."""
        out: list[bytes | str] = []
        for b in data:
            c = chr(b)
            if self.depth == 0 and not self.in_str and not self.scalar:
                if c.isspace():
                    continue
                if c in "]}":
                    out.append("JSON parse error, expecting value")
                    continue
            self.buf.append(b)
            if len(self.buf) > self.limit:
                out.append("JSON parse error, token too large")
                self._reset()
                continue
            if self.in_str:
                if self.esc:
                    self.esc = False
                elif c == "\\":
                    self.esc = True
                elif c == '"':
                    self.in_str = False
                    if self.depth == 0:
                        out.append(bytes(self.buf))
                        self._reset()
                continue
            if c == '"':
                self.in_str = True
            elif c in "{[":
                self.depth += 1
                if self.depth > QEMU_MAX_NESTING:
                    out.append("JSON parse error, nesting too deep")
                    self._reset()
            elif c in "}]":
                self.depth -= 1
                if self.depth == 0:
                    out.append(bytes(self.buf))
                    self._reset()
            elif self.depth == 0:
                if c.isspace():
                    self.buf.pop()
                    out.append(bytes(self.buf))
                    self._reset()
                else:
                    self.scalar = True
        return out

    def _reset(self) -> None:
        self.buf = bytearray()
        self.depth = 0
        self.in_str = self.esc = self.scalar = False
