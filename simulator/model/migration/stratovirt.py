"""StratoVirt live migration (migration/src/migration.rs send_migration, manager.rs).

No rate limit, no auto-converge, no knobs: send all memory raw, then up to
``max_dirty_iterations`` (30) dirty-page rounds; stop iterating when nothing is dirty or
a round started < ``limit_downtime`` (50 ms) after the previous one; then pause, send
the last dirty pages and the device state, complete. ``migrate_cancel`` sets
``canceled`` at once (protocol.rs transfer) but the thread only looks between rounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.model.memory import MemoryLayout, Workload, unique_dirtied
from simulator.model.migration.effects import Effect, Sample, Timeline
from simulator.model.migration.status import STRATOVIRT_TRANSITIONS
from simulator.model.migration.status import MigrationStatus as S
from simulator.model.units import PAGE_SIZE

#: migration.rs: Request header (16 B) + MemBlock {gpa,len} (16 B) per round.
_ROUND_OVERHEAD = 32
#: VmConfig exchange and Active handshake (one RTT each), seconds.
_HANDSHAKE_S = 0.002


@dataclass(frozen=True)
class StratoConfig:
    layout: MemoryLayout
    workload: Workload
    link_bandwidth: float
    device_state_bytes: int = 64 * 1024
    max_dirty_iterations: int = 30
    limit_downtime_s: float = 0.050
    stop_overhead_s: float = 0.004
    config_error: str | None = None  # destination check_vm_config failure text


class StratoMigration:
    """One outgoing StratoVirt migration; the schedule is computed up front."""

    def __init__(self, cfg: StratoConfig, start: float, prior: S = S.SETUP) -> None:
        self.cfg = cfg
        self.tl = Timeline()
        self.start = self.t = start
        self.status = prior
        self.end: float | None = None
        self.downtime: float | None = None
        self.generation = 0
        self.transferred = 0
        self.error_desc: str | None = None
        self._cancel_seen = False
        self._plan: list[tuple[float, str, int]] = []
        # what the wire took so far plus what a write has in hand: the migration thread
        # waits past it (send_memory waits for each Response; None: the model alone)
        self.wire_limit: float | None = None
        self._build()

    def _build(self) -> None:
        c, w, link = self.cfg, self.cfg.workload, self.cfg.link_bandwidth
        rate = w.effective_rate(0)
        t = self.start
        self._plan.append((t, "active", 0))
        t += _HANDSHAKE_S
        if c.config_error:
            self._plan.append((t, "config-fail", 0))
            return
        full = c.layout.total_bytes + _ROUND_OVERHEAD
        last_fetch = t
        t += full / link
        self._plan.append((t, "sent", full))
        prev_start = last_fetch
        for _ in range(c.max_dirty_iterations):
            self._plan.append((t, "check", 0))
            if t - prev_start < c.limit_downtime_s:
                break
            dirty = round(unique_dirtied(w, rate, t - last_fetch))
            if dirty == 0:
                break
            prev_start, last_fetch = t, t
            nbytes = dirty * PAGE_SIZE + _ROUND_OVERHEAD
            t += nbytes / link
            self._plan.append((t, "sent", nbytes))
        self._plan.append((t, "pause", 0))
        dirty = round(unique_dirtied(w, rate, t - last_fetch))
        nbytes = dirty * PAGE_SIZE + _ROUND_OVERHEAD + c.device_state_bytes
        t += c.stop_overhead_s + nbytes / link
        self._plan.append((t, "complete", nbytes))

    def _set(self, t: float, st: S) -> bool:
        if (self.status, st) not in STRATOVIRT_TRANSITIONS:
            return False
        self.status = st
        self.tl.history.append((t, st.value))
        return True

    def cancel(self, t: float) -> str | None:
        """QMP migrate_cancel: error text if the transition is illegal, else None."""
        self.run_until(t)
        old = self.status
        if not self._set(t, S.CANCELED):
            return f"Failed to transfer migration status from {old.value} to canceled."
        if self._paused:
            # the final stage has begun: the thread no longer looks at the status, sends
            # the rest and sets completed, legal from canceled (protocol.rs transfer;
            # migration/src/migration.rs send_migration): the migration completes
            return None
        # the send loop finds the status canceled at its next check and sends the
        # destination a Cancel request, which bails out "Cancel migration from source"
        # (migration/src/migration.rs send_migration, cancel_migration; recv_migration)
        self.end = t
        self._plan.clear()
        return None

    def fail(self, t: float, desc: str) -> None:
        """Socket error: recover_from_migration, then set_status(Failed)."""
        self.run_until(t)
        if self.end is not None:
            return
        self.error_desc = desc
        self._end(t, S.FAILED, Effect.DESTINATION_FAILED)
        if self._paused:
            self.tl.effects.append((t, Effect.SOURCE_RESUMED))

    _paused = False

    def _end(self, t: float, st: S, eff: Effect) -> None:
        self._set(t, st)
        self.end = t
        self.tl.effects.append((t, eff))
        self._plan.clear()

    def run_until(self, t_end: float) -> None:
        while self._plan and self._plan[0][0] <= t_end:
            if self.wire_limit is not None and self.transferred >= self.wire_limit:
                # the thread waits on the wire: what is left of the plan comes later
                late = t_end - self._plan[0][0]
                self._plan = [(t + late, what, n) for t, what, n in self._plan]
                break
            t, what, nbytes = self._plan.pop(0)
            self.t = t
            self.transferred += nbytes
            if what == "active":
                self._set(t, S.ACTIVE)
            elif what == "config-fail":
                self.error_desc = self.cfg.config_error
                self._end(t, S.FAILED, Effect.DESTINATION_FAILED)
            elif what in ("check", "pause") and self.status is S.CANCELED:
                self._cancel_seen = True
                self.end = t
                self.tl.effects.append((t, Effect.DESTINATION_FAILED))
                self._plan.clear()
            elif what == "pause":
                self._paused = True
                self.downtime_start = t
                self.tl.effects.append((t, Effect.SOURCE_STOPPED))
            elif what == "complete":
                self.downtime = t - self.downtime_start
                self.generation += 1
                self._set(t, S.COMPLETED)  # legal from active and from canceled
                self.end = t
                self.tl.effects.append((t, Effect.SWITCHOVER))
                self.tl.effects.append((t, Effect.SOURCE_EXIT))
            self.tl.samples.append(Sample(t, self.status.value, self.transferred, 0, 0, 0, 0.0, 0))
        self.t = max(self.t, t_end)

    downtime_start = 0.0

    def query(self, now: float) -> dict[str, Any]:
        """query-migrate: StratoVirt returns only the status."""
        return {"status": self.status.value}
