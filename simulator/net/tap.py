"""A tap device the simulated NIC sits on, opened as QEMU and StratoVirt open theirs.

QEMU 7.2 net/tap-linux.c tap_open and StratoVirt util/src/tap.rs Tap::new: open
``/dev/net/tun`` and TUNSETIFF with the name given by ``ifname=``; the kernel creates the
interface in the network namespace the process runs in (the harness runs the hypervisor
with ``ip netns exec``) and removes it when the last descriptor closes. No vnet header:
the simulator reads and writes plain Ethernet frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
from collections.abc import Callable

TUN_PATH = "/dev/net/tun"
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFNAMSIZ = 16


class TapError(OSError):
    """The tap could not be opened (``errno``/``strerror`` say why)."""


class Tap:
    """One open tap: frames in through ``on_frame``, out through :meth:`send`."""

    def __init__(self, name: str, fd: int) -> None:
        self.name, self.fd = name, fd
        self.sent = 0
        self.dropped = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def open(cls, name: str) -> Tap:
        if not 0 < len(name.encode()) < IFNAMSIZ:
            raise TapError(22, f"tap name {name!r} is not 1-15 bytes")
        fd = os.open(TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            ifreq = struct.pack("16sH22x", name.encode(), IFF_TAP | IFF_NO_PI)
            fcntl.ioctl(fd, TUNSETIFF, ifreq)
        except OSError as exc:
            os.close(fd)
            raise TapError(exc.errno or 0, exc.strerror or str(exc)) from None
        return cls(name, fd)

    def listen(self, on_frame: Callable[[bytes], None]) -> None:
        """Call ``on_frame`` with every frame the tap delivers (in the running loop)."""
        loop = self._loop = asyncio.get_running_loop()

        def readable() -> None:
            for _ in range(64):  # a burst at a time, then let the loop run
                try:
                    frame = os.read(self.fd, 65536)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError:
                    loop.remove_reader(self.fd)
                    return
                on_frame(frame)

        loop.add_reader(self.fd, readable)

    def send(self, frame: bytes) -> None:
        """Put a frame on the wire; a full queue or a link that is down drops it."""
        try:
            os.write(self.fd, frame)
            self.sent += 1
        except OSError:
            self.dropped += 1

    def close(self) -> None:
        if self.fd < 0:
            return
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.fd)
        os.close(self.fd)
        self.fd = -1
