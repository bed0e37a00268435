"""Find processes that outlived their test, and what runs that died left behind.

Every child the harness launches carries ``HVLAB_OWNER=<run>/<tag>`` in its environment.
Processes keep their environment even after they leave their process group or
daemonize, so scanning /proc for the tag finds leaks that a group kill would miss.

``<run>`` names the run: ``<pid>.<start time>`` of the process that started it (hvlab
run, pytest, or ``make test``'s shell), inherited by every worker and child through
``HVLAB_RUN``. A run is over when that process is gone (the start time tells a reused
pid apart), so what it left can be told from what a run still going owns: two runs on
one machine never count each other's processes as leaks, and the next start reaps what
a killed run left (harness/reap.py). Folders a run makes carry its tag in
``.hvlab-owner``.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass
from pathlib import Path

from harness.errors import LeakError

_RUN = re.compile(r"[0-9]+\.[0-9]+")

OWNER_ENV = "HVLAB_OWNER"
RUN_ENV = "HVLAB_RUN"
OWNER_FILE = ".hvlab-owner"
#: where namespace labs keep their folders (harness/lab/netlab.py); a lab's folder holds
#: its full owner tag in LAB_OWNER_FILE
LAB_ROOT = Path("/run/hvlab")
LAB_OWNER_FILE = ".hvlab-lab-owner"
#: the owner of a lab process whose lab folder is gone: a run tag of no live process,
#: so ``hvlab leaks --reap`` takes it
ORPHAN_LAB = "0.0/lab-orphan"
_LAB_PATH = re.compile(re.escape(str(LAB_ROOT)) + r"/(lab-[A-Za-z0-9_-]+)/")


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    cmdline: str
    owner: str = ""


def process_start(pid: int) -> str | None:
    """The process's start time (clock ticks after boot), or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def run_of_pid(pid: int) -> str:
    start = process_start(pid)
    if start is None:
        raise LeakError(f"no process {pid} to own a run")
    return f"{pid}.{start}"


def run_tag() -> str:
    """This run's tag (made from this process if no parent started the run)."""
    tag = os.environ.get(RUN_ENV, "")
    if not _RUN.fullmatch(tag):
        tag = run_of_pid(os.getpid())
        os.environ[RUN_ENV] = tag
    return tag


def owner_tag(local: str) -> str:
    """An owner tag of this run: ``<run>/<local>``."""
    return f"{run_tag()}/{local}"


def run_alive(run: str) -> bool:
    if not _RUN.fullmatch(run):
        return True  # not a run tag: nobody can tell, so leave it alone
    pid, start = run.split(".")
    return process_start(int(pid)) == start


def run_of(owner: str) -> str:
    return owner.split("/", 1)[0]


def hvlab_processes() -> list[ProcInfo]:
    """Every live process with an hvlab owner tag (zombies excluded), with the tag."""
    prefix = f"{OWNER_ENV}=".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            tag = next((e[len(prefix) :] for e in environ if e.startswith(prefix)), None)
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            owner = tag.decode(errors="replace") if tag is not None else _lab_owner(cmd)
            if owner is None:
                continue
            stat = (entry / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue
        except (OSError, IndexError):
            continue
        found.append(ProcInfo(int(entry.name), cmd.strip(), owner))
    return found


def _lab_owner(cmdline: str) -> str | None:
    """The owner of a process that names a lab folder on its command line. A lab's sshd
    rewrites its title over its environment (OpenSSH setproctitle: "sshd: ... [listener]
    ..."), so its tag is gone from /proc/PID/environ; its config path names the lab."""
    found = _LAB_PATH.search(cmdline)
    if found is None:
        return None
    try:
        return (LAB_ROOT / found.group(1) / LAB_OWNER_FILE).read_text().strip() or ORPHAN_LAB
    except OSError:
        return ORPHAN_LAB


def tagged_processes(tag: str | None) -> list[ProcInfo]:
    """Live processes whose owner tag is ``tag`` (None: any hvlab owner at all)."""
    return [p for p in hvlab_processes() if tag is None or p.owner == tag]


def run_processes(run: str) -> list[ProcInfo]:
    """Live processes of run ``run`` (whatever their tag within it)."""
    return [p for p in hvlab_processes() if run_of(p.owner) == run]


def leftover_sockets(tmp: Path, run: str | None = None) -> list[Path]:
    """Unix sockets under ``tmp``/hvlab-* (of folders of run ``run`` if given); entries
    that vanish while we look are skipped (other runs create and remove theirs)."""
    found: list[Path] = []
    for top in sorted(tmp.glob("hvlab-*")):
        if run is not None:
            try:
                if (top / OWNER_FILE).read_text().strip() != run:
                    continue
            except OSError:
                continue
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


if __name__ == "__main__":  # the run tag of a process: make test's shell names its run
    import sys

    print(run_of_pid(int(sys.argv[1])))
