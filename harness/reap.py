"""What runs that died left behind, found by their run tag (see leaks.py), and its removal.

A run killed with SIGKILL cannot clean up: its hypervisors keep running (they are in
sessions of their own), their run folders with sockets and guest memory stay in /tmp,
its namespace lab or test network stays up. Everything carries the run's tag, so once
the run's process is gone its leftovers are told from a live run's and removed:
``hvlab leaks --reap``, and every ``hvlab run`` / pytest session at its start.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from harness.lab.netlab import PREFIX, lab_namespaces
from harness.leaks import LAB_ROOT, OWNER_FILE, ProcInfo, hvlab_processes, run_alive, run_of

TMP = Path("/tmp")


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
