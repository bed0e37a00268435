"""Find processes that outlived their test.

Every child the harness launches carries ``HVLAB_OWNER=<tag>`` in its environment.
Processes keep their environment even after they leave their process group or
daemonize, so scanning /proc for the tag finds leaks that a group kill would miss.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

from harness.errors import LeakError

OWNER_ENV = "HVLAB_OWNER"


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    cmdline: str


def tagged_processes(tag: str | None) -> list[ProcInfo]:
    """Live processes whose environment holds HVLAB_OWNER=<tag> (zombies excluded).

    ``tag=None``: any hvlab owner at all (the end-of-run check).
    """
    needle = f"{OWNER_ENV}={tag}".encode() if tag is not None else None
    prefix = f"{OWNER_ENV}=".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            if needle is not None and needle not in environ:
                continue
            if needle is None and not any(e.startswith(prefix) for e in environ):
                continue
            stat = (entry / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        found.append(ProcInfo(int(entry.name), cmd.strip()))
    return found


def leftover_sockets(tmp: Path) -> list[Path]:
    """Unix sockets under ``tmp``/hvlab-*; entries that vanish while we look are skipped
    (other runs on the machine create and remove theirs all the time)."""
    found: list[Path] = []
    for top in sorted(tmp.glob("hvlab-*")):
        for root, _dirs, files in os.walk(top, onerror=lambda _exc: None):
            for name in files:
                path = Path(root) / name
                try:
                    if path.is_socket():
                        found.append(path)
                except OSError:
                    continue
    return found


def kill_tagged(tag: str) -> list[ProcInfo]:
    """SIGKILL every process with the tag; return what was killed."""
    victims = tagged_processes(tag)
    for proc in victims:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return victims


def check_no_leaks(tag: str, paths: list[Path] | None = None) -> None:
    """Raise LeakError naming every surviving process or leftover socket; clean them up."""
    leaked = kill_tagged(tag)
    stale = [p for p in (paths or []) if p.exists() or p.is_symlink()]
    if not leaked and not stale:
        return
    parts = [f"pid {p.pid} ({p.cmdline[:120]})" for p in leaked]
    parts += [f"socket {p}" for p in stale]
    for p in stale:
        try:
            p.unlink()
        except OSError:
            pass
    raise LeakError(
        f"left behind after teardown: {'; '.join(parts)}",
        {"processes": [p.__dict__ for p in leaked], "paths": [str(p) for p in stale]},
    )
