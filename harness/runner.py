"""Where a hypervisor process runs: the host decides how a command starts and how its
sockets are reached. ``LOCAL`` runs on this machine; lab hosts reached over SSH
implement the same protocol (harness/lab/).

Every process a runner starts gets its own session and process group and carries the
owner tag (``HVLAB_OWNER``, see leaks.py), so a group kill and a /proc scan find it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Protocol

from harness.errors import LaunchError
from harness.leaks import (
    OWNER_ENV,
    OWNER_FILE,
    ProcInfo,
    kill_tagged,
    run_tag,
    tagged_processes,
)


def private_dir(prefix: str = "hvlab-") -> Path:
    """A 0700 directory under /tmp (short enough for AF_UNIX socket paths), marked with
    this run's tag so that what a killed run left can be found and reaped."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    (path / OWNER_FILE).write_text(run_tag())
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (for hypervisors that cannot bind :0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Process(Protocol):
    """A started hypervisor process, wherever it runs."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if still running after ``timeout`` seconds."""

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the process group (the hypervisor and what it spawned)."""

    def close(self) -> None:
        """Let go of the process (it has exited or been killed)."""


class Runner(Protocol):
    """A host that runs hypervisors."""

    @property
    def name(self) -> str: ...

    @property
    def address(self) -> str:
        """Where a migration stream reaches this host (its lab-link address)."""

    def free_port(self) -> int:
        """A TCP port free on ``address`` a moment ago."""

    def stage(self, local: Path) -> Path:
        """``local`` (a guest image) as a path on the host, copied there if needed."""

    def read_text(self, path: Path) -> str:
        """A host-side file's text ("" if it cannot be read)."""

    def fetch(self, remote: Path, local: Path) -> None:
        """Copy a host-side file into a local one (logs into artifacts)."""

    def simulator_command(self) -> list[str]:
        """The argv prefix that runs hvlab's simulator on the host."""

    def tagged(self, owner: str | None) -> list[ProcInfo]:
        """Processes on the host tagged with ``owner`` (None: any hvlab owner)."""

    def kill_tagged(self, owner: str) -> list[ProcInfo]: ...

    def drop_socket(self, path: Path) -> None:
        """Forget what ``local_socket(path)`` set up (a forward), if anything."""

    def spawn(self, argv: list[str], owner: str, stdout: Path, stderr: Path) -> Process:
        """Start ``argv`` in its own session with the owner tag; output into the files."""

    def private_dir(self, prefix: str) -> Path:
        """A fresh 0700 directory on the host for sockets and run files."""

    def remove_tree(self, path: Path) -> None: ...

    def exists(self, path: Path) -> bool: ...

    def local_socket(self, path: Path) -> Path:
        """A local path through which the host's unix socket ``path`` is reached."""


class LocalProcess:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc

    @property
    def pid(self) -> int:
        return self._proc.pid

    def poll(self) -> int | None:
        return self._proc.poll()

    def wait(self, timeout: float) -> int | None:
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self._proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        pass


class LocalRunner:
    """This machine."""

    name = "localhost"

    def spawn(self, argv: list[str], owner: str, stdout: Path, stderr: Path) -> LocalProcess:
        env = dict(os.environ)
        env[OWNER_ENV] = owner
        with stdout.open("wb") as out, stderr.open("wb") as err:
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=env,
                    start_new_session=True,
                )
            except OSError as exc:
                raise LaunchError(f"cannot start {argv[0]}: {exc}", {"argv": argv}) from exc
        return LocalProcess(proc)

    def private_dir(self, prefix: str) -> Path:
        return private_dir(prefix)

    def remove_tree(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def exists(self, path: Path) -> bool:
        return path.exists()

    def local_socket(self, path: Path) -> Path:
        return path

    def drop_socket(self, path: Path) -> None:
        pass

    @property
    def address(self) -> str:
        return "127.0.0.1"

    def free_port(self) -> int:
        return free_port(self.address)

    def stage(self, local: Path) -> Path:
        return local

    def read_text(self, path: Path) -> str:
        try:
            return path.read_text(errors="replace")
        except OSError:
            return ""

    def fetch(self, remote: Path, local: Path) -> None:
        if remote != local:
            shutil.copyfile(remote, local)

    def simulator_command(self) -> list[str]:
        return [sys.executable, "-m", "simulator"]

    def tagged(self, owner: str | None) -> list[ProcInfo]:
        return tagged_processes(owner)

    def kill_tagged(self, owner: str) -> list[ProcInfo]:
        return kill_tagged(owner)


LOCAL = LocalRunner()
