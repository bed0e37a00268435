"""A VM process under test: launch, QMP, console, graceful-then-hard shutdown.

Every Machine runs in its own session and process group, carries the owner tag of the
test that made it (see leaks.py), and cleans up on every path: ``shutdown`` is
idempotent and ``__exit__`` always calls it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from harness.console import Console
from harness.errors import LaunchError
from harness.guest import GuestImage
from harness.leaks import OWNER_ENV
from harness.qmp import QMPSession
from harness.spec import VMSpec
from harness.targets.base import RunPaths, Target
from harness.waits import scaled, wait_for


def private_dir(prefix: str = "hvlab-") -> Path:
    """A 0700 directory under /tmp (short enough for AF_UNIX socket paths)."""
    return Path(tempfile.mkdtemp(prefix=prefix))


class Machine:
    def __init__(
        self, target: Target, spec: VMSpec, image: GuestImage, name: str, logs: Path, owner: str
    ) -> None:
        self.target = target
        self.spec = spec
        self.image = image
        self.name = name
        self.owner = owner
        logs.mkdir(parents=True, exist_ok=True)
        self.paths = RunPaths(private_dir(f"hvlab-{name[:12]}-"), logs)
        if spec.incoming is not None and "{dir}" in spec.incoming:
            spec = dataclasses.replace(
                spec, incoming=spec.incoming.replace("{dir}", str(self.paths.dir))
            )
            self.spec = spec
        self.argv = target.argv(spec, self.paths, image)
        self._proc: subprocess.Popen[bytes] | None = None
        self._qmp: QMPSession | None = None
        self._console: Console | None = None
        self._down = False
        self.greeting: dict[str, object] = {}

    # -- launch ---------------------------------------------------------------------------
    def launch(
        self, boot_timeout: float = 120.0, wait_guest: bool = True, restored: bool = False
    ) -> Machine:
        """Start the process, connect QMP and console; wait for the guest shell.

        ``restored``: the VM comes from a saved running guest (-incoming), so there is no
        boot to wait for: wait until it runs, then for the shell to answer.
        """
        env = dict(os.environ)
        env[OWNER_ENV] = self.owner
        out = self.paths.stdout.open("wb")
        err = self.paths.stderr.open("wb")
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise LaunchError(
                f"{self.name}: cannot start {self.argv[0]}: {exc}", {"argv": self.argv}
            ) from exc
        finally:
            out.close()
            err.close()
        wait_for(self._socket_or_exit, 30.0, f"{self.name}'s QMP socket")
        self._check_alive("starting")
        # StratoVirt's QMP does not greet while an incoming migration is pending
        # (machine_manager runs QMP on the main loop): connect on first use instead.
        if self.spec.incoming is None or "qmp-during-incoming" in self.target.capabilities:
            self.connect_qmp()
        if "console" in self.target.capabilities:
            self._console = Console(self.paths.serial, self.paths.serial_log, self.name)
            booting = not self.spec.start_paused and self.spec.incoming is None
            if wait_guest and booting:
                self._console.wait_ready(boot_timeout)
            elif restored:
                wait_for(
                    lambda: self.qmp.execute("query-status")["status"] == "running",
                    60.0,
                    f"{self.name} to run after its restore",
                )
                self._console.sync(boot_timeout)
        return self

    def connect_qmp(self, timeout: float = 60.0) -> QMPSession:
        """Open the QMP session (greeting + negotiation) if not open yet."""
        if self._qmp is None:
            session = QMPSession(self.name, self.paths.transcript)
            try:
                self.greeting = session.connect(self.paths.qmp, timeout)
            except Exception:
                session.close()
                self._check_alive("connecting QMP")
                raise
            self._qmp = session
        return self._qmp

    def _socket_or_exit(self) -> bool:
        assert self._proc is not None
        return self.paths.qmp.exists() or self._proc.poll() is not None

    def _check_alive(self, during: str) -> None:
        assert self._proc is not None
        code = self._proc.poll()
        if code is not None:
            raise LaunchError(
                f"{self.name}: {self.argv[0]} exited with {code} while {during}: "
                f"{self.stderr_tail(1) or 'no error output'}",
                {"argv": self.argv, "exit_code": code, "stderr": self.stderr_tail(20)},
            )

    # -- access ---------------------------------------------------------------------------
    @property
    def qmp(self) -> QMPSession:
        if self._proc is None:
            raise LaunchError(f"{self.name}: not launched")
        return self._qmp if self._qmp is not None else self.connect_qmp()

    @property
    def console(self) -> Console:
        if self._console is None:
            raise LaunchError(f"{self.name}: no console (not launched or not supported)")
        return self._console

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise LaunchError(f"{self.name}: not launched")
        return self._proc.pid

    def exit_code(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit by itself; return its exit code."""
        assert self._proc is not None
        return (
            wait_for(self._proc.poll, timeout, f"{self.name} to exit")
            if self._proc.poll() is None
            else self._proc.returncode
        )

    def stderr_tail(self, lines: int = 10) -> str:
        try:
            text = self.paths.stderr.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    # -- teardown -------------------------------------------------------------------------
    def shutdown(self, timeout: float = 10.0) -> None:
        """Graceful (QMP quit) then SIGTERM then SIGKILL to the group; idempotent."""
        if self._down:
            return
        self._down = True
        proc = self._proc
        try:
            if proc is not None and proc.poll() is None and self._qmp is not None:
                try:
                    self._qmp.execute("quit", timeout=5.0)
                except Exception:
                    pass
                self._reap(proc, timeout)
            if proc is not None:
                for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
                    if proc.poll() is not None:
                        break
                    self._signal_group(proc, sig)
                    self._reap(proc, grace)
                # anything else left in the group (helpers the VM spawned)
                self._signal_group(proc, signal.SIGKILL)
        finally:
            for closer in (self._console, self._qmp):
                if closer is not None:
                    try:
                        closer.close()
                    except Exception:
                        pass
            shutil.rmtree(self.paths.dir, ignore_errors=True)

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    @staticmethod
    def _reap(proc: subprocess.Popen[bytes], timeout: float) -> None:
        try:
            proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            pass

    def __enter__(self) -> Machine:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()
