"""What this host can do without any migration: bytes between two local processes.

QEMU's migration stream between two local processes is a loopback TCP socket: the rate
at which one process can push pages through it to another that copies them into memory
bounds how fast stop-and-copy runs once the rate limit is lifted. Measured here with a
sender writing 32 KiB buffers (QEMUFile's IO_BUF_SIZE) and a receiver copying them into
already-touched memory; the median of a few rounds is the host's ``nic_bandwidth``.
The kernel's socket buffer limits (tcp_wmem and tcp_rmem maxima) say how much a
migration socket can hold: a post-copy page request waits behind that much.
(What a page costs the first time it lands is calibrated on the idle configuration.)
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from pathlib import Path

CHUNK = 32 * 1024
TOTAL = 96 << 20


def _round() -> float:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    got = [0]

    def receive() -> None:
        conn, _ = server.accept()
        with conn:
            sink = bytearray(1 << 20)
            view = memoryview(sink)
            while got[0] < TOTAL:
                n = conn.recv_into(view[: min(len(view), TOTAL - got[0])])
                if n == 0:
                    return
                got[0] += n

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    payload = b"\x5a" * CHUNK
    with socket.create_connection(("127.0.0.1", port)) as out:
        start = time.perf_counter()
        sent = 0
        while sent < TOTAL:
            out.sendall(payload)
            sent += CHUNK
        thread.join(timeout=60)
        took = time.perf_counter() - start
    server.close()
    return TOTAL / took


def loopback_bandwidth(rounds: int = 3) -> float:
    """Bytes/s one local process moves to another over loopback TCP (median)."""
    return float(statistics.median(_round() for _ in range(rounds)))


def socket_buffers() -> int:
    """Bytes one loopback TCP connection can queue: the send plus receive maxima."""
    total = 0
    for name in ("tcp_wmem", "tcp_rmem"):
        total += int(Path(f"/proc/sys/net/ipv4/{name}").read_text().split()[2])
    return total


def probe() -> dict[str, float]:
    return {"loopback_bandwidth": loopback_bandwidth(), "socket_buffer_bytes": socket_buffers()}
