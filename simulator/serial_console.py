"""The guest's serial console: its chardev socket clients, stdio, the chardev's logfile.

Bounded both ways, as a real serial line is: what the guest prints waits in the socket's
buffer for the client to read it, and once :data:`OUTPUT_LIMIT` bytes wait, the guest's
console is *blocked* (its shell waits before it prints more: a guest writing to a tty
whose 16550 FIFO cannot drain blocks, and QEMU's chardev stops taking output it cannot
write); typed lines the guest has not read yet are held up to :data:`INPUT_LIMIT`, after
which the socket is not read (QEMU's chardev asks ``can_read`` of the serial device and
stops reading a full one). A client that types and never reads costs a fixed amount of
memory, however long it stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable
from typing import BinaryIO

from simulator.cmdline import Serial

#: Bytes of output waiting for a client before the guest's console blocks.
OUTPUT_LIMIT = 64 * 1024
#: Output beyond this (a single command's flood) is dropped, not held.
HARD_LIMIT = 16 * OUTPUT_LIMIT
#: Typed lines held for the guest before the socket is no longer read.
INPUT_LIMIT = 64
#: A partial line longer than this is discarded (a tty's line buffer is 4095 bytes).
LINE_LIMIT = 65536
#: Seconds between two looks at a full input queue.
POLL_S = 0.01


class SerialConsole:
    """One serial port: its clients (one at a time), stdio or nothing, and a logfile."""

    def __init__(self, serial: Serial, on_input: Callable[[], None]) -> None:
        self.serial = serial
        self.on_input = on_input  # a line arrived: let the guest read it
        self.clients: list[asyncio.StreamWriter] = []
        self.lines: list[str] = []  # typed lines the guest has not read yet
        self.dropped = 0  # output bytes dropped past HARD_LIMIT
        self._log: BinaryIO | None = None

    def open_log(self) -> None:
        if self.serial.logfile:
            fd = os.open(self.serial.logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._log = os.fdopen(fd, "ab")

    @property
    def has_reader(self) -> bool:
        """Someone takes the output (a client or the logfile)."""
        return bool(self.clients) or self._log is not None

    @property
    def blocked(self) -> bool:
        """Output waits for a client that does not read: the guest cannot print now."""
        return any(_pending(w) > OUTPUT_LIMIT for w in self.clients)

    def write(self, text: str) -> None:
        data = text.encode()
        if self._log is not None:
            self._log.write(data)
            self._log.flush()
        if self.serial.kind == "stdio":
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        for w in list(self.clients):
            if w.is_closing():
                self.clients.remove(w)
            elif _pending(w) + len(data) > HARD_LIMIT:
                self.dropped += len(data)
            else:
                w.write(data)

    def next_line(self) -> str | None:
        return self.lines.pop(0) if self.lines else None

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one chardev client; a later one replaces it (one client at a time)."""
        for old in self.clients:
            old.close()
        self.clients = [writer]
        buf = b""
        try:
            while True:
                while len(self.lines) >= INPUT_LIMIT and not writer.is_closing():
                    await asyncio.sleep(POLL_S)  # the guest reads no more for now
                chunk = await reader.read(4096)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self.lines.append(line.decode(errors="replace").rstrip("\r"))
                if len(buf) > LINE_LIMIT:
                    buf = b""
                self.on_input()
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            # the process is ending (asyncio.run cancels what is left): end quietly;
            # Python 3.11's StreamReaderProtocol callback would print a cancelled
            # client task's CancelledError as a traceback on stderr
            pass
        finally:
            if writer in self.clients:
                self.clients.remove(writer)
            writer.close()

    def close(self) -> None:
        for w in self.clients:
            w.close()
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None


def _pending(writer: asyncio.StreamWriter) -> int:
    return int(writer.transport.get_write_buffer_size())
