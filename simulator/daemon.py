"""``-daemonize`` and ``-pidfile``: the process detaches as the products do.

StratoVirt util/src/daemonize.rs: fork (the parent exits), setsid, fork again, stdio to
/dev/null, then the pid file (0600, the pid without a newline), removed again at exit
(src/main.rs TempCleaner). QEMU os-posix.c os_daemonize: the same double fork, but the
first parent waits until the daemon has set itself up and exits with its status. The
simulator's parent waits too, until the daemon's sockets exist: a launcher that copes
with either product (polling for the socket) copes with it, and one that only waits for
the parent to exit finds the sockets there.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def detach() -> Callable[[bool], None]:
    """Detach; return, in the daemon, the call that tells the waiting parent the outcome.

    The original process never returns from here: it exits 0 once the daemon reports
    its sockets open, 1 if the daemon failed (or died) first.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    if os.fork() > 0:
        os.close(write_end)
        word = os.read(read_end, 1)
        os._exit(0 if word == b"1" else 1)
    os.close(read_end)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)

    def report(ok: bool) -> None:
        try:
            os.write(write_end, b"1" if ok else b"0")
            os.close(write_end)
        except OSError:
            pass  # reported already, or the parent is gone

    return report


def write_pidfile(path: str) -> None:
    """The pid, without a newline, in a private file (util/src/daemonize.rs)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
