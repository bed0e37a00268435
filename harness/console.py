"""The guest serial console, driven with pexpect over the hypervisor's chardev socket.

The hypervisor exposes the serial port as a unix socket (server) and also logs every
byte to a file, so nothing printed before we connect is lost from the log. A thread
reads the socket all the time into a pipe that pexpect reads: Arm's PL011 writes each
byte with qemu_chr_fe_write_all (hw/char/pl011.c pl011_write), so once a socket nobody
reads is full the vCPU thread waits in qemu_chr_write holding the iothread lock, and the
monitor stops too (seen here: a guest Oops printed on an aarch64 destination while the
test waited on QMP). The 16550 (hw/char/serial.c) retries from a watch instead. ``run``
wraps a command between markers that only the command's *output* can contain (the
markers are split by quotes in what is typed), so echo and prompts never confuse it.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pexpect
import pexpect.fdpexpect

from harness.errors import ConsoleError
from harness.guest import PROMPT, READY_MARK
from harness.waits import scaled

#: what the pump may hold for pexpect before it waits (the kernel's default
#: /proc/sys/fs/pipe-max-size, so an unprivileged user gets it too)
PIPE_BYTES = 1 << 20
#: how long one wait on the console lasts before the log is read again (wait_ready)
READY_POLL_S = 1.0


class Console:
    def __init__(
        self,
        socket_path: Path,
        log_path: Path | None = None,
        name: str = "console",
        read_log: Callable[[], str] | None = None,
    ) -> None:
        """``read_log`` reads the hypervisor's serial log where it is not a local file
        (a hypervisor on a lab host); by default ``log_path`` is read."""
        self.name = name
        self.log_path = log_path
        self._read_log = read_log
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.connect(str(socket_path))
        except OSError as exc:
            self._sock.close()
            raise ConsoleError(
                f"{name}: cannot connect to serial socket {socket_path}: {exc}"
            ) from exc
        read_end, write_end = os.pipe()
        try:
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # the default 64 KiB pipe still drains the socket
        self._pump = threading.Thread(
            target=self._drain, args=(write_end,), name=f"{name}-serial", daemon=True
        )
        self._pump.start()
        self._child = pexpect.fdpexpect.fdspawn(
            read_end, encoding="utf-8", codec_errors="replace", timeout=30
        )
        self._seq = itertools.count(1)
        self._closed = False

    def _drain(self, write_end: int) -> None:
        """Copy what the guest prints from the socket to pexpect's pipe until the
        hypervisor closes the socket or ``close`` shuts it down."""
        try:
            while data := self._sock.recv(65536):
                view = memoryview(data)
                while view:
                    view = view[os.write(write_end, view) :]
        except OSError:
            pass  # the socket was shut down, or the reader closed the pipe
        finally:
            os.close(write_end)  # pexpect then sees EOF

    def tail(self, lines: int = 20) -> str:
        """The last lines the guest printed (from the hypervisor's serial log)."""
        if self._read_log is not None:
            text = self._read_log()
        elif self.log_path is None or not self.log_path.exists():
            return ""
        else:
            text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until the guest's init has started the console shell.

        The marker may reach the log only: the hypervisor takes our connection in its
        main loop, so what the guest prints between our connect and that accept goes
        to the logfile alone. The log is read again between short waits on the console.
        """
        logged = self.log_path is not None or self._read_log is not None
        deadline = time.monotonic() + scaled(timeout)
        while not (logged and READY_MARK in self.tail(200)):
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConsoleError(
                    f"{self.name}: timed out after {scaled(timeout):.0f}s waiting for "
                    "the guest to boot",
                    {"console_tail": self.tail()},
                )
            try:
                self._child.expect(READY_MARK, timeout=min(READY_POLL_S, left))
                break
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                raise ConsoleError(
                    f"{self.name}: serial console closed while waiting for the guest to boot",
                    {"console_tail": self.tail()},
                ) from None
        self.sync(timeout)

    def sync(self, timeout: float = 30.0) -> None:
        """Make sure a shell is answering (sends a no-op command)."""
        status, _ = self.run("true", timeout=timeout)
        if status != 0:
            raise ConsoleError(f"{self.name}: shell answered 'true' with status {status}")

    def _expect(self, pattern: str, timeout: float, what: str) -> re.Match[str]:
        try:
            self._child.expect(pattern, timeout=scaled(timeout))
        except pexpect.TIMEOUT:
            raise ConsoleError(
                f"{self.name}: timed out after {scaled(timeout):.0f}s waiting for {what}",
                {"console_tail": self.tail()},
            ) from None
        except pexpect.EOF:
            raise ConsoleError(
                f"{self.name}: serial console closed while waiting for {what}",
                {"console_tail": self.tail()},
            ) from None
        match = self._child.match
        assert isinstance(match, re.Match)
        return match

    def run(self, command: str, timeout: float = 30.0) -> tuple[int, str]:
        """Run a shell command in the guest; return (exit status, output)."""
        n = next(self._seq)
        begin, end = f"@@B{n}@@", f"@@E{n}@@"
        typed_begin = f"@@'B{n}'@@"
        typed_end = f"@@'E{n}'@@"
        line = f"echo {typed_begin}; {command}; echo {typed_end}$?@@\n"
        try:
            self._sock.sendall(line.encode())
        except OSError as exc:
            raise ConsoleError(f"{self.name}: cannot type '{command}': {exc}") from exc
        self._expect(re.escape(begin) + r"\r?\n", timeout, f"start of '{command}'")
        match = self._expect(re.escape(end) + r"(\d+)@@", timeout, f"end of '{command}'")
        output = (self._child.before or "").replace("\r\n", "\n").replace("\r", "")
        return int(match.group(1)), output.strip("\n")

    def expect(self, pattern: str, timeout: float, what: str) -> re.Match[str]:
        """Wait until the guest prints ``pattern`` (a regex); the match."""
        return self._expect(pattern, timeout, what)

    def read_available(self, timeout: float) -> str:
        """What the guest printed, waiting at most ``timeout`` seconds for the first
        byte; "" if nothing came (for readers that timestamp lines as they arrive)."""
        try:
            return str(self._child.read_nonblocking(65536, timeout=timeout))
        except pexpect.TIMEOUT:
            return ""
        except pexpect.EOF:
            raise ConsoleError(f"{self.name}: serial console closed") from None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # ends the pump's recv
        except OSError:
            pass
        try:
            self._child.close()  # the pipe's read end: a pump blocked on it ends too
        except OSError:
            pass
        self._pump.join(timeout=5)
        self._sock.close()

    @staticmethod
    def prompt() -> str:
        return PROMPT
