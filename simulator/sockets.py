"""The process's sockets: private unix or loopback tcp listeners, and outgoing connects."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable

from simulator.cmdline_values import Endpoint

#: What an asyncio server calls for each accepted connection.
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def listen(ep: Endpoint, handler: Handler) -> asyncio.Server:
    """A private (0600) unix socket or a loopback tcp listener."""
    if ep.kind == "unix":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(ep.path)
        old = os.umask(0o177)
        try:
            return await asyncio.start_unix_server(handler, path=ep.path)
        finally:
            os.umask(old)
    return await asyncio.start_server(handler, host=ep.host, port=ep.port)


async def connect(ep: Endpoint) -> socket.socket:
    """A kernel connect with no timeout of its own (neither product sets one)."""
    fam = socket.AF_UNIX if ep.kind == "unix" else socket.AF_INET
    sock = socket.socket(fam, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(
            sock, ep.path if ep.kind == "unix" else (ep.host, ep.port)
        )
    except BaseException:
        sock.close()
        raise
    return sock


def os_error_text(exc: OSError) -> str:
    """Rust's io::Error display: ``No such file or directory (os error 2)``."""
    return f"{exc.strerror or exc} (os error {exc.errno or 0})"
