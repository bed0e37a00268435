"""The process's sockets: private unix or loopback tcp listeners, and outgoing connects."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable

from simulator.cmdline_values import Endpoint
from simulator.errors import Fatal

#: What an asyncio server calls for each accepted connection.
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def listen(ep: Endpoint, handler: Handler, limit: int = 1 << 16) -> asyncio.Server:
    """A private (0600) unix socket or a loopback tcp listener (``limit``: what its
    streams buffer before they stop reading)."""
    if ep.kind == "unix":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(ep.path)
        old = os.umask(0o177)
        try:
            return await asyncio.start_unix_server(handler, path=ep.path, limit=limit)
        finally:
            os.umask(old)
    return await asyncio.start_server(handler, host=ep.host, port=ep.port, limit=limit)


async def open_chardev(ep: Endpoint, handler: Handler) -> asyncio.Server | asyncio.Task[None]:
    """A chardev socket as QEMU opens it at start-up (chardev/char-socket.c).

    ``server``: listen (the server; the caller keeps it). Otherwise one connection is
    served: to the address (a client chardev: the launcher listens; a refused connect
    ends the process, as QEMU's tcp_chr_connect_client_sync does) or on the inherited
    socket ``fd=N`` (a listening one when ``server`` is set too). Raises :class:`Fatal`
    with QEMU's words.
    """
    if ep.kind == "fd":
        try:
            sock = socket.socket(fileno=ep.fd)
        except OSError:
            raise Fatal(f"{ep.label}: File descriptor '{ep.fd}' is not a socket") from None
        sock.setblocking(False)
        if ep.server:
            return await asyncio.start_server(handler, sock=sock)
    elif ep.server:
        return await listen(ep, handler)
    else:
        try:
            sock = await connect(ep)
        except OSError as exc:
            where = ep.path if ep.kind == "unix" else f"{ep.host}:{ep.port}"
            why = exc.strerror or str(exc)
            raise Fatal(f"{ep.label}: Failed to connect to '{where}': {why}") from None
    reader, writer = await asyncio.open_connection(sock=sock)

    async def serve() -> None:
        await handler(reader, writer)

    return asyncio.get_running_loop().create_task(serve())


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
