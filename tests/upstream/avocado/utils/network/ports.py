"""avocado.utils.network.ports.find_free_port: a port nothing listens on right now."""

from __future__ import annotations

import socket


def find_free_port(
    start_port: int = 1024,
    end_port: int = 65535,
    address: str = "localhost",
    sequent: bool = False,
) -> int | None:
    """A free tcp port on ``address`` (the kernel picks it; None if it cannot)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((socket.gethostbyname(address), 0))
            port: int = sock.getsockname()[1]
    except OSError:
        return None
    return port if start_port <= port <= end_port else None
