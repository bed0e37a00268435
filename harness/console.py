"""The guest serial console, driven with pexpect over the hypervisor's chardev socket.

The hypervisor exposes the serial port as a unix socket (server) and also logs every
byte to a file, so nothing printed before we connect is lost from the log. ``run``
wraps a command between markers that only the command's *output* can contain (the
markers are split by quotes in what is typed), so echo and prompts never confuse it.
"""

from __future__ import annotations

import itertools
import re
import socket
from collections.abc import Callable
from pathlib import Path

import pexpect
import pexpect.fdpexpect

from harness.errors import ConsoleError
from harness.guest import PROMPT, READY_MARK
from harness.waits import scaled


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
        self._child = pexpect.fdpexpect.fdspawn(
            self._sock.fileno(), encoding="utf-8", codec_errors="replace", timeout=30
        )
        self._seq = itertools.count(1)
        self._closed = False

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
        """Wait until the guest's init has started the console shell."""
        # The marker may already be in the log if we connected late; poke the shell.
        if READY_MARK in (self.tail(200) if self.log_path else ""):
            self.sync(timeout)
            return
        self._expect(READY_MARK, timeout, "the guest to boot")
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
        self._child.send(line)
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
            self._child.close()  # closes the socket's fd
        except OSError:
            pass
        self._sock.detach()

    @staticmethod
    def prompt() -> str:
        return PROMPT
