"""What the suites ask of the hvlab guest's own tools (harness/guest.py puts them in it).

``hvlab-pattern`` writes and checks a memory pattern (md5 of what it wrote),
``hvlab-counter`` is a counter the guest advances ten times a second while it runs.
"""

from __future__ import annotations

from harness.errors import ConsoleError
from harness.machine import Machine

PATTERN_MIB = 32


def write_pattern(vm: Machine, mib: int = PATTERN_MIB, seed: int = 7) -> str:
    """Fill ``mib`` MiB of guest memory with a seeded pattern; return its md5."""
    status, digest = vm.console.run(f"hvlab-pattern write {mib} {seed}", timeout=120)
    if status != 0 or len(digest) != 32:
        raise ConsoleError(f"{vm.name}: hvlab-pattern write failed ({status}): {digest}")
    return digest


def read_pattern(vm: Machine) -> str:
    """The md5 of the pattern as the guest reads it back now."""
    status, digest = vm.console.run("hvlab-pattern check", timeout=120)
    if status != 0:
        raise ConsoleError(f"{vm.name}: hvlab-pattern check failed ({status}): {digest}")
    return digest


def start_counter(vm: Machine) -> None:
    status, out = vm.console.run("hvlab-counter start")
    if status != 0:
        raise ConsoleError(f"{vm.name}: hvlab-counter start failed ({status}): {out}")


def counter(vm: Machine) -> int:
    status, out = vm.console.run("hvlab-counter read")
    if status != 0 or not out.strip().isdigit():
        raise ConsoleError(f"{vm.name}: hvlab-counter read failed ({status}): {out}")
    return int(out)
