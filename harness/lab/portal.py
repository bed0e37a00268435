"""A loopback door into a lab namespace: TCP from 127.0.0.1 here to an address there.

The namespace lab's hosts live in network namespaces the tests create; the machine's
own network is never touched (no interface or route is added to it). The controller
reaches a host's sshd through this relay: it listens on 127.0.0.1 in the namespace it
was started in, then enters the lab namespace (setns), so every connection it opens
for a client is made from inside the lab.

    python3 portal.py NETNS CONNECT_ADDR CONNECT_PORT PORT_FILE

Standard library only; linux only.
"""

from __future__ import annotations

import ctypes
import os
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000


def enter_netns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(1 << 16):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass


def _serve(client: socket.socket, address: tuple[str, int]) -> None:
    try:
        upstream = socket.create_connection(address, timeout=10)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        sys.stderr.write("usage: portal.py NETNS CONNECT_ADDR CONNECT_PORT PORT_FILE\n")
        return 2
    netns, addr, port, port_file = argv[0], argv[1], int(argv[2]), argv[3]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    enter_netns(netns)  # from here on, new sockets (and threads) are in the lab
    tmp = port_file + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(str(listener.getsockname()[1]))
    os.replace(tmp, port_file)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_serve, args=(client, (addr, port)), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
