"""The simulated guest shell: what the suites type on the serial console."""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.guest_memory import PageMap
from simulator.guest_shell import PROMPT, GuestShell, GuestState


@dataclass
class FakeGuest:
    blocks: list[str] = field(default_factory=list)
    nics: list[tuple[str, str]] = field(default_factory=lambda: [("lo", "00:00:00:00:00:00")])
    arch: str = "x86_64"
    online_cpus: int = 2
    present_cpus: list[int] = field(default_factory=lambda: [0, 1])
    memory: PageMap = field(default_factory=lambda: PageMap(1024))
    guest: GuestState = field(default_factory=lambda: GuestState(booted=True))

    def block_devices(self) -> list[str]:
        return self.blocks

    def mac_addresses(self) -> list[tuple[str, str]]:
        return self.nics

    def pattern_base(self) -> int:
        return 0


def out(shell: GuestShell, line: str) -> str:
    text = shell.feed_line(line)
    assert text.endswith(PROMPT)
    return text[: -len(PROMPT)].replace("\r\n", "\n")


def test_pipe_grep_and_or_true() -> None:
    guest = FakeGuest(blocks=["vda"])
    shell = GuestShell(guest)
    assert out(shell, "ls /sys/block | grep vd || true") == "vda\n"
    guest.blocks.clear()
    assert out(shell, "ls /sys/block | grep vd || true") == ""
    assert out(shell, "echo $?") == "0\n"


def test_glob_and_stderr_redirect() -> None:
    guest = FakeGuest()
    shell = GuestShell(guest)
    line = "cat /sys/class/net/eth*/address 2>/dev/null || true"
    assert out(shell, line) == ""
    assert "can't open" in out(shell, "cat /sys/class/net/eth*/address")
    guest.nics.append(("eth0", "52:54:00:12:34:56"))
    assert out(shell, line) == "52:54:00:12:34:56\n"


def test_and_or_chains() -> None:
    shell = GuestShell(FakeGuest())
    assert out(shell, "false && echo no || echo yes") == "yes\n"
    assert out(shell, "true && echo a; echo b") == "a\nb\n"
    assert out(shell, "nosuch 2>/dev/null; echo $?") == "127\n"


def test_present_cpus_in_cpulist_format() -> None:
    """/sys/devices/system/cpu/present lists the guest's vCPUs as Linux does.

    1. Contiguous vCPUs are one range; a gap starts another; a single vCPU stands alone.
    """
    guest = FakeGuest()
    shell = GuestShell(guest)
    assert out(shell, "cat /sys/devices/system/cpu/present") == "0-1\n"
    guest.present_cpus = [0, 1, 2, 5]
    assert out(shell, "cat /sys/devices/system/cpu/present") == "0-2,5\n"
