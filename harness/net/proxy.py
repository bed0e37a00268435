"""A TCP proxy the harness owns, between a migration's source and destination.

This kernel has no netem qdisc, so what a bad link does to a stream is done here, in
user space: the source migrates to the proxy's port, the proxy forwards to the
destination, and on command it

    cut()                 closes both sides at once (a broken link)
    hold() / release()    stops forwarding without closing (a stalled link)
    corrupt(at, count)    flips ``count`` bytes starting at stream offset ``at``
    delay(seconds)        forwards each chunk that much later
    rate(bytes_per_s)     forwards the source's stream no faster (a slow link)

and counts the bytes it forwarded. It runs in a thread of the test process; the
listener is on loopback (or the address given) and goes away with ``close()``.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType


class FaultProxy:
    def __init__(self, target: tuple[str, int], listen: str = "127.0.0.1") -> None:
        self.target = target
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((listen, 0))
        self._listener.listen(8)
        self.address = (listen, int(self._listener.getsockname()[1]))
        self.forwarded = 0  # bytes source -> destination
        self._corrupt: tuple[int, int] | None = None
        self.corrupted = 0
        self._delay = 0.0
        self._rate = 0.0
        self._open = threading.Event()
        self._open.set()
        self._closed = threading.Event()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self.connections = 0
        threading.Thread(target=self._accept, name="fault-proxy", daemon=True).start()

    @property
    def uri(self) -> str:
        return f"tcp:{self.address[0]}:{self.address[1]}"

    # -- faults ----------------------------------------------------------------------------
    def cut(self) -> None:
        """Close every connection both ways now (what a dead link looks like to both)."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def hold(self) -> None:
        """Stop forwarding (connections stay up, data queues): a stalled link."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def corrupt(self, at: int, count: int = 4) -> None:
        """Flip (xor 0xff) ``count`` bytes of the source's stream from offset ``at``."""
        self._corrupt = (at, at + count)

    def delay(self, seconds: float) -> None:
        self._delay = seconds

    def rate(self, bytes_per_s: float) -> None:
        """Cap the source -> destination stream at ``bytes_per_s`` (0: no cap)."""
        self._rate = bytes_per_s

    # -- plumbing --------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, forward: bool) -> None:
        offset = 0
        start = time.monotonic()
        try:
            while chunk := src.recv(1 << 14 if self._rate and forward else 1 << 16):
                self._open.wait()
                if self._delay:
                    time.sleep(self._delay)  # the fault itself: a slow link
                if forward:
                    chunk = self._flip(chunk, offset)
                    offset += len(chunk)
                    if self._rate:  # the fault itself: a link this fast and no faster
                        time.sleep(max(0.0, start + offset / self._rate - time.monotonic()))
                    self.forwarded += len(chunk)
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            # one side is gone: so is the link. Closing (not just shutting down) makes
            # the kernel reset a peer that still writes, as a real dead link would
            # not leave it blocked on a full buffer nobody reads.
            for s in (dst, src):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def _flip(self, chunk: bytes, offset: int) -> bytes:
        if self._corrupt is None:
            return chunk
        lo, hi = self._corrupt
        if hi <= offset or lo >= offset + len(chunk):
            return chunk
        data = bytearray(chunk)
        for i in range(max(lo, offset), min(hi, offset + len(chunk))):
            data[i - offset] ^= 0xFF
            self.corrupted += 1
        return bytes(data)

    def close(self) -> None:
        self._closed.set()
        self._open.set()
        self._listener.close()
        self.cut()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
