"""Which TCP connections a local process holds (from /proc), e.g. migration channels.

QEMU's multifd opens one socket per channel besides the main stream
(migration/multifd.c multifd_new_send_channel_async), all to the destination's listening
port: counting the source's established connections to that port counts the channels.
"""

from __future__ import annotations

import os
from pathlib import Path

_ESTABLISHED = "01"


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


def established_to(pid: int, port: int) -> int:
    """How many established TCP connections process ``pid`` has to remote ``port``."""
    mine = _socket_inodes(pid)
    count = 0
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if state == _ESTABLISHED and int(remote.rsplit(":", 1)[1], 16) == port:
                count += inode in mine
    return count
