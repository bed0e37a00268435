"""Launch simulator processes for self-tests: private run dir, own session, always reaped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

OWNER_ENV = "HVLAB_OWNER"


class SimProc:
    """One ``python -m simulator`` process with its QMP and serial sockets in ``run_dir``."""

    def __init__(
        self,
        name: str,
        run_dir: Path,
        profile: str,
        extra: list[str],
        machine: str = "q35",
        memory: str = "1024",
        owner: str = "hvlab-selftest",
    ) -> None:
        self.name = name
        self.qmp = run_dir / f"{name}-qmp.sock"
        self.serial = run_dir / f"{name}-serial.sock"
        self.log = run_dir / f"{name}-serial.log"
        self.stderr_path = run_dir / f"{name}-stderr.log"
        self.argv = [
            sys.executable,
            "-m",
            "simulator",
            "--profile",
            profile,
            "-machine",
            machine,
            "-smp",
            "2",
            "-m",
            memory,
            "-kernel",
            "/nonexistent/vmlinuz",
            "-initrd",
            "/nonexistent/initrd",
            "-qmp",
            f"unix:{self.qmp},server,nowait",
            "-chardev",
            f"socket,id=serial0,path={self.serial},server,nowait,logfile={self.log}",
            "-serial",
            "chardev:serial0",
            *extra,
        ]
        env = dict(os.environ, **{OWNER_ENV: owner})
        with self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while not self.qmp.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start: {self.stderr()}")
            time.sleep(0.02)

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace").strip()
        except OSError:
            return ""

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)

    def __enter__(self) -> SimProc:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.kill()


def private_dir() -> Path:
    """A 0700 directory under /tmp (short enough for AF_UNIX paths)."""
    return Path(tempfile.mkdtemp(prefix="hvsim-"))
