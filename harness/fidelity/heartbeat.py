"""Heartbeat lines timestamped on arrival: the guest-visible pause of a migration.

hvlab-stress prints ``hb N`` every few ms on the serial console. The guest's clock stops
while the VM is stopped, so the guest cannot measure its own pause; the host can: the
pause is the gap between the last heartbeat that arrives from the source and the first
that arrives from the destination, less one heartbeat period.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field

from harness.console import Console
from harness.errors import HarnessError

_HB = re.compile(r"^hb (\d+)\s*$")


@dataclass
class Tap:
    """Reads a console in a thread and keeps (arrival time, sequence) of each heartbeat."""

    console: Console
    beats: list[tuple[float, int]] = field(default_factory=list)
    error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Tap:
        self._thread = threading.Thread(target=self._read, daemon=True, name="hb-tap")
        self._thread.start()
        return self

    def _read(self) -> None:
        partial = ""
        while not self._stop.is_set():
            try:
                text = self.console.read_available(0.02)
            except HarnessError as exc:
                self.error = str(exc)
                return
            if not text:
                continue
            now = time.monotonic()
            lines = (partial + text.replace("\r", "")).split("\n")
            partial = lines.pop()
            for line in lines:
                m = _HB.match(line.strip())
                if m:
                    self.beats.append((now, int(m.group(1))))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def pause_ms(src: Tap, dst: Tap, period_ms: float) -> float | None:
    """Guest-visible pause: first destination beat after the last source beat, minus
    one period (what an uninterrupted guest would show); None if either side has none."""
    if not src.beats or not dst.beats:
        return None
    last_src = src.beats[-1][0]
    later = [t for t, _ in dst.beats if t >= last_src]
    if not later:
        return None
    return max(0.0, (later[0] - last_src) * 1000 - period_ms)
