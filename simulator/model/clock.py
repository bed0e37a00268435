"""The injected virtual clock: the model never reads the wall clock."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class VirtualClock:
    """Monotonic virtual time in seconds; ``epoch`` anchors QMP timestamps."""

    now: float = 0.0
    epoch: float = 1_700_000_000.0

    def advance(self, dt: float) -> float:
        """Move time forward by ``dt`` seconds (never backwards); return the new time."""
        if dt < 0:
            raise ValueError(f"cannot move the clock backwards by {dt}")
        self.now += dt
        return self.now

    def advance_to(self, t: float) -> float:
        """Move time forward to ``t`` if it lies in the future; return the new time."""
        self.now = max(self.now, t)
        return self.now

    def timestamp(self, t: float | None = None) -> dict[str, int]:
        """QMP event timestamp ``{"seconds", "microseconds"}`` for time ``t`` (default now)."""
        at = self.epoch + (self.now if t is None else t)
        sec = int(at)
        return {"seconds": sec, "microseconds": round((at - sec) * 1e6) % 1_000_000}
