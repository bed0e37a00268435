"""What runs that died left behind, found by their run tag (see leaks.py), and its removal.

A run killed with SIGKILL cannot clean up: its hypervisors keep running (they are in
sessions of their own), their run folders with sockets and guest memory stay in /tmp,
its namespace lab or test network stays up. Everything carries the run's tag, so once
the run's process is gone its leftovers are told from a live run's and removed:
``hvlab leaks --reap``, and every ``hvlab run`` / pytest session at its start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.lab.netlab import PREFIX, lab_namespaces
from harness.leaks import LAB_ROOT, OWNER_FILE, ProcInfo, hvlab_processes, run_alive, run_of

TMP = Path("/tmp")
#: one reaper at a time on the machine (flock); a process that inherited a holder's
#: descriptor (its number in LOCK_FD_ENV) reaps under that holder's lock
LOCK_FILE = Path("/run/lock/hvlab-reap.lock")
LOCK_FD_ENV = "HVLAB_REAP_LOCK_FD"


@dataclass
class Leftovers:
    processes: list[ProcInfo] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    labs: list[Path] = field(default_factory=list)  # /run/hvlab entries (labs, test nets)
    namespaces: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return (
            [f"process {p.pid} of run {run_of(p.owner)}: {p.cmdline[:120]}" for p in self.processes]
            + [f"folder {f}" for f in self.folders]
            + [f"lab {lab}" for lab in self.labs]
            + [f"network namespace {n}" for n in self.namespaces]
        )

    def __bool__(self) -> bool:
        return bool(self.processes or self.folders or self.labs or self.namespaces)


def _owner(path: Path) -> str | None:
    marker = path / OWNER_FILE if path.is_dir() else path
    try:
        return marker.read_text().strip() or None
    except OSError:
        return None


def _tag_of(entry: Path) -> str:
    """The namespace tag of a lab folder (lab-<tag>-xxxx) or a test net marker (net-<tag>)."""
    return entry.name.split("-")[1] if "-" in entry.name else ""


def find(run: str | None = None, tmp: Path = TMP) -> Leftovers:
    """Leftovers of run ``run``, or (None) of every run that is no longer alive."""

    def mine(owner: str | None) -> bool:
        if owner is None:
            return False
        return run_of(owner) == run if run is not None else not run_alive(run_of(owner))

    out = Leftovers()
    out.processes = [p for p in hvlab_processes() if mine(p.owner)]
    for top in sorted(tmp.glob("hvlab-*")):
        if top.is_dir() and mine(_owner(top)):
            out.folders.append(top)
    if LAB_ROOT.is_dir():
        for entry in sorted(LAB_ROOT.iterdir()):
            if mine(_owner(entry)):
                out.labs.append(entry)
    tags = {_tag_of(e) for e in out.labs}
    out.namespaces = [n for n in lab_namespaces() if n[len(PREFIX) :].split("-")[0] in tags]
    return out


@contextlib.contextmanager
def reaper_lock(timeout: float = 60.0) -> Iterator[int | None]:
    """Hold the machine's reaper lock; yields its descriptor, or None if another
    reaper held it for ``timeout`` seconds (the caller then leaves the reaping to it).

    A descriptor named by HVLAB_REAP_LOCK_FD and inherited from the holder is the same
    open file description, so flock on it succeeds at once: the holder's child reaps,
    every other process waits. The lock file itself is the usual empty /run/lock file.
    """
    path = lock_path()
    inherited = os.environ.get(LOCK_FD_ENV, "")
    if inherited.isdigit() and _is_lock_file(int(inherited), path):
        try:
            fcntl.flock(int(inherited), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass  # no longer the holder's lock: take it as everybody does
        else:
            yield int(inherited)
            return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    yield None
                    return
                time.sleep(0.1)
        yield fd
    finally:
        os.close(fd)


def lock_path() -> Path:
    return LOCK_FILE if LOCK_FILE.parent.is_dir() else TMP / LOCK_FILE.name


def _is_lock_file(fd: int, path: Path) -> bool:
    """The descriptor is open on the lock file (an inherited variable may name a number
    that is some other file in this process)."""
    try:
        mine, there = os.fstat(fd), path.stat()
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def reap(found: Leftovers) -> None:
    """Remove what ``find`` found: processes killed first, then their files."""
    for p in found.processes:
        try:
            import os

            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for name in found.namespaces:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    for path in [*found.folders, *found.labs]:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
