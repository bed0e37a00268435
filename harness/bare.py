"""A hypervisor launched bare, as QEMU's own tests launch it, and an idle migration.

Bare: no kernel and no disk, so the firmware finds nothing to boot and idles (QEMU's
avocado migration tests launch exactly this: ``-nodefaults`` and the default machine).
Nearly all of its RAM was never written, so a migration is mostly zero pages: the
cheapest thing a hypervisor can migrate, and a sharp check that a simulator starts its
guest memory as a real one does. Real QEMU and the simulator are launched the same way.
"""

from __future__ import annotations

import contextlib
import signal
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import LaunchError
from harness.leaks import check_no_leaks, kill_tagged, owner_tag
from harness.qmp import QMPSession
from harness.runner import LOCAL, Process
from harness.waits import wait_for

#: What QEMUMachine adds to every command line (python/qemu/machine/machine.py).
BARE_ARGS = ("-display", "none", "-vga", "none", "-nodefaults")


@dataclass(frozen=True)
class IdleMigration:
    """One idle migration seen from the source."""

    query: dict[str, Any]  # the source's final query-migrate
    wall_s: float  # migrate sent -> completed seen on the source (polled)
    destination_status: str  # the destination's query-status afterwards

    @property
    def transferred(self) -> int:
        return int(self.query["ram"]["transferred"])

    @property
    def total_time_ms(self) -> int:
        """The hypervisor's own ``total-time``."""
        return int(self.query["total-time"])


@contextlib.contextmanager
def bare(
    binary: Sequence[str], run_dir: Path, name: str, owner: str, extra: Sequence[str] = ()
) -> Iterator[QMPSession]:
    """A bare hypervisor with a QMP session; quit (or killed) when the block ends."""
    sock = run_dir / f"{name}.qmp"
    argv = [*binary, *BARE_ARGS, *extra, "-qmp", f"unix:{sock},server=on,wait=off"]
    proc: Process = LOCAL.spawn(argv, owner, run_dir / f"{name}.stdout", run_dir / f"{name}.stderr")
    qmp = QMPSession(name)
    try:
        wait_for(lambda: sock.exists() or proc.poll() is not None or None, 30, f"{name} QMP")
        if proc.poll() is not None:
            err = (run_dir / f"{name}.stderr").read_text(errors="replace").strip()
            raise LaunchError(f"{name} exited at start ({proc.poll()}): {err}", {"argv": argv})
        qmp.connect(sock)
        yield qmp
        with contextlib.suppress(Exception):
            qmp.execute("quit", timeout=10)
    finally:
        qmp.close()
        if proc.wait(10) is None:
            proc.signal_group(signal.SIGKILL)
            proc.wait(10)


def idle_migration(
    binary: Sequence[str], run_dir: Path, extra: Sequence[str] = ()
) -> IdleMigration:
    """Migrate a bare, idle guest between two processes of ``binary`` over a unix socket."""
    owner = owner_tag(f"bare-{uuid.uuid4().hex[:12]}")
    uri = f"unix:{run_dir / 'migration.sock'}"
    try:
        result = _migrate(binary, run_dir, extra, owner, uri)
    except BaseException:
        kill_tagged(owner)
        raise
    check_no_leaks(owner)
    return result


def _migrate(
    binary: Sequence[str], run_dir: Path, extra: Sequence[str], owner: str, uri: str
) -> IdleMigration:
    with (
        bare(binary, run_dir, "dst", owner, [*extra, "-incoming", uri]) as dst,
        bare(binary, run_dir, "src", owner, extra) as src,
    ):
        start = time.monotonic()
        src.execute("migrate", {"uri": uri})

        def ended() -> dict[str, Any] | None:
            info: dict[str, Any] = src.execute("query-migrate")
            return info if info.get("status") in ("completed", "failed") else None

        query = wait_for(ended, 60, "the migration to end", interval=0.002)
        wall = time.monotonic() - start
        wait_for(
            lambda: dst.execute("query-migrate").get("status") == "completed" or None,
            30,
            "the destination to complete",
        )
        status = str(dst.execute("query-status")["status"])
    return IdleMigration(query, wall, status)
