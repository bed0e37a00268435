"""The serial console client (harness/console.py) against a chardev-like unix socket
served by a real shell: what a hypervisor does with its serial port, minus the guest.

The server here stands in for the hypervisor's chardev, which is not what is tested.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

from harness.console import Console
from harness.guest import READY_MARK


def _chardev(path: Path, log: Path, before_shell: float) -> threading.Thread:
    """Accept one client; ``before_shell`` seconds later the "guest" prints the ready
    marker to the log only (as a hypervisor does for what the guest printed before its
    main loop took the connection), then a shell serves the socket."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        server.close()
        time.sleep(before_shell)
        log.write_text(f"{READY_MARK}: booted\n")
        with conn:
            subprocess.run(
                ["sh"], stdin=conn.fileno(), stdout=conn.fileno(), stderr=subprocess.STDOUT
            )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_ready_marker_that_reached_only_the_log(tmp_path: Path) -> None:
    """The guest printed its ready marker after we connected but before the hypervisor
    took the connection: it is in the log, never on the socket.

    1. wait_ready returns (it reads the log again while it waits) well before its
       timeout, and the shell then answers a command.
    """
    sock, log = tmp_path / "serial.sock", tmp_path / "serial.log"
    server = _chardev(sock, log, before_shell=0.5)
    console = Console(sock, log, name="fake")
    try:
        started = time.monotonic()
        console.wait_ready(timeout=10)
        assert time.monotonic() - started < 5
        assert console.run("echo hello") == (0, "hello")
    finally:
        console.close()
    server.join(timeout=5)
    assert not server.is_alive()
