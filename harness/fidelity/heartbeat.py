"""The guest-visible pause of a migration, seen from the host.

The guest's clock stops while the VM is stopped, so the guest cannot measure its own
pause; the host can. hvlab-stress keeps two heartbeats: ``hb N`` lines on its output
(``-b MS``, for reading the pause off a console) and a counter in memory (word 3 of its
working-set page 0, bumped every 1 ms step; :class:`MemTap` reads it with HMP ``xp``
through QMP every few ms). The bench uses the memory heartbeat of
the destination only (the console stays quiet, the source's monitor is left to the
recorder) and places the source's stop from QEMU's own total-time and downtime. A guest
that crashed on the destination (QEMU 7.2/TCG loses writes of a dirtying guest: README)
never moves its counter: no pause is recorded for it.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

from harness.errors import HarnessError
from harness.machine import Machine


@dataclass
class MemTap:
    """Polls one guest-physical word of a VM (HMP ``xp`` over QMP) and keeps the host
    times at which its value changed."""

    vm: Machine
    addr: int
    period: float = 0.005
    beats: list[tuple[float, int]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> MemTap:
        self._thread = threading.Thread(target=self._poll, daemon=True, name="hb-mem")
        self._thread.start()
        return self

    def _poll(self) -> None:
        last: int | None = None
        cmd = {"command-line": f"xp /1gx {self.addr:#x}"}
        while not self._stop.wait(self.period):
            try:
                out = str(self.vm.qmp.execute("human-monitor-command", cmd, timeout=5))
            except HarnessError as exc:
                if len(self.errors) < 5:
                    self.errors.append(str(exc))
                continue
            m = _XP.search(out)
            if not m:
                continue
            value = int(m.group(1), 16)
            if last is not None and value != last:
                self.beats.append((time.monotonic(), value))
            last = value

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


_XP = re.compile(r":\s*0x([0-9a-fA-F]+)")


def read_word(vm: Machine, addr: int) -> int:
    """One guest-physical 64-bit word (HMP xp)."""
    out = str(vm.qmp.execute("human-monitor-command", {"command-line": f"xp /1gx {addr:#x}"}))
    m = _XP.search(out)
    if not m:
        raise HarnessError(f"{vm.name}: xp {addr:#x} answered {out!r}")
    return int(m.group(1), 16)


def resumed(dst: MemTap, frozen: int) -> float | None:
    """When the destination's guest first moved its counter past the source's frozen
    value (earlier changes are copies of the page arriving, not the guest running)."""
    return next((t for t, v in dst.beats if v > frozen), None)


def pause_since_stop(
    dst: MemTap, frozen: int, migrate_at: float, final: dict[str, object]
) -> float | None:
    """From the source's stop to the guest's first step on the destination (ms).

    The stop is placed from the source's own figures: QEMU's total-time counts from the
    migrate command and its downtime from the stop (migration.c
    migration_calculate_complete), so the stop was total - downtime after ``migrate_at``
    (host monotonic time of the command)."""
    first = resumed(dst, frozen)
    total, downtime = final.get("total-time"), final.get("downtime")
    if first is None or not isinstance(total, int) or not isinstance(downtime, int):
        return None
    stopped = migrate_at + (total - downtime) / 1000
    return max(0.0, (first - stopped) * 1000)
