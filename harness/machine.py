"""A VM process under test: launch, QMP, console, graceful-then-hard shutdown.

The one launcher, for real hypervisors and the simulator alike, on this machine or on a
lab host (the ``Runner`` decides how the command starts and how its sockets are
reached). Every Machine runs in its own session and process group, carries the owner
tag of the test that made it (see leaks.py), and cleans up on every path: ``shutdown``
is idempotent and ``__exit__`` always calls it.
"""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path
from types import TracebackType

from harness.console import Console
from harness.errors import LaunchError
from harness.guest import GuestImage
from harness.qmp import QMPSession
from harness.runner import LOCAL, Process, Runner
from harness.spec import VMSpec
from harness.targets.base import RunPaths, Target
from harness.waits import scaled, wait_for

__all__ = ["Machine"]


class Machine:
    def __init__(
        self,
        target: Target,
        spec: VMSpec,
        image: GuestImage,
        name: str,
        logs: Path,
        owner: str,
        runner: Runner = LOCAL,
        netns: str | None = None,
    ) -> None:
        """``netns``: run the hypervisor in that network namespace of its host (its tap
        devices are created there; its sockets stay where they are)."""
        self.target = target
        self.spec = spec
        self.image = image
        self.name = name
        self.owner = owner
        self.runner = runner
        logs.mkdir(parents=True, exist_ok=True)
        run_dir = runner.private_dir(f"hvlab-{name[:12]}-")
        # a hypervisor on another host writes its serial log there (fetched at shutdown)
        self.paths = RunPaths(run_dir, logs, None if runner is LOCAL else run_dir)
        if spec.incoming is not None and "{dir}" in spec.incoming:
            spec = dataclasses.replace(
                spec, incoming=spec.incoming.replace("{dir}", str(self.paths.dir))
            )
            self.spec = spec
        self.argv = target.argv(spec, self.paths, image, runner)
        if netns is not None:
            self.argv = ["ip", "netns", "exec", netns, *self.argv]
        self._proc: Process | None = None
        self._qmp: QMPSession | None = None
        self._console: Console | None = None
        self._down = False
        self.greeting: dict[str, object] = {}

    # -- launch ---------------------------------------------------------------------------
    def start(self) -> Machine:
        """Start the process and wait until its QMP socket exists; connect nothing."""
        try:
            self._proc = self.runner.spawn(
                self.argv, self.owner, self.paths.stdout, self.paths.stderr
            )
        except LaunchError as exc:
            raise LaunchError(f"{self.name}: {exc}", {"argv": self.argv, **exc.context}) from exc
        wait_for(self._socket_or_exit, 30.0, f"{self.name}'s QMP socket")
        self._check_alive("starting")
        return self

    def launch(
        self, boot_timeout: float = 120.0, wait_guest: bool = True, restored: bool = False
    ) -> Machine:
        """Start the process, connect QMP and console; wait for the guest shell.

        ``restored``: the VM comes from a saved running guest (-incoming), so there is no
        boot to wait for: wait until it runs, then for the shell to answer.
        """
        self.start()
        # StratoVirt's QMP does not greet while an incoming migration is pending
        # (machine_manager runs QMP on the main loop): connect on first use instead.
        if self.spec.incoming is None or self.target.traits.qmp_during_incoming:
            self.connect_qmp()
        self._console = Console(
            self.runner.local_socket(self.paths.serial),
            self.paths.serial_log,
            self.name,
            read_log=lambda: self.runner.read_text(self.paths.serial_log),
        )
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
                self.greeting = session.connect(self.runner.local_socket(self.paths.qmp), timeout)
            except Exception:
                session.close()
                self._check_alive("connecting QMP")
                raise
            self._qmp = session
        return self._qmp

    def _socket_or_exit(self) -> bool:
        assert self._proc is not None
        return self.runner.exists(self.paths.qmp) or self._proc.poll() is not None

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
    def qmp_open(self) -> bool:
        """The QMP session is connected (``qmp`` would otherwise connect first)."""
        return self._qmp is not None

    @property
    def console(self) -> Console:
        if self._console is None:
            raise LaunchError(f"{self.name}: no console (not launched)")
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
        proc = self._proc
        assert proc is not None
        code = proc.poll()
        return code if code is not None else wait_for(proc.poll, timeout, f"{self.name} to exit")

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the hypervisor's process group (faults: SIGKILL, SIGSTOP, ...)."""
        if self._proc is None:
            raise LaunchError(f"{self.name}: not launched")
        self._proc.signal_group(sig)

    def pause(self, timeout: float = 10.0) -> None:
        """``stop`` and wait for its STOP event: the guest is paused once it arrived."""
        mark = self.qmp.events.mark()
        self.qmp.execute("stop")
        self.qmp.wait_event("STOP", since=mark, timeout=timeout)

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
                proc.wait(scaled(timeout))
            if proc is not None:
                for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
                    if proc.poll() is not None:
                        break
                    proc.signal_group(sig)
                    proc.wait(scaled(grace))
                # anything else left in the group (helpers the VM spawned)
                proc.signal_group(signal.SIGKILL)
        finally:
            for closer in (self._console, self._qmp, proc):
                if closer is not None:
                    try:
                        closer.close()
                    except Exception:
                        pass
            if self.paths.host_logs is not None:
                self.runner.fetch(self.paths.serial_log, self.paths.logs / "serial.log")
            for sock in (self.paths.qmp, self.paths.serial):
                self.runner.drop_socket(sock)
            self.runner.remove_tree(self.paths.dir)

    def __enter__(self) -> Machine:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.shutdown()
