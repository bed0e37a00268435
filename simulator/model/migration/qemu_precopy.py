"""QEMU 7.2 pre-copy/post-copy engine (migration/migration.c, migration/ram.c).

Time advances in 100 ms rate-limit windows (``BUFFER_DELAY``). At each
``migration_iteration_run`` the pending RAM (dirty pages x 4096, zero pages at full
size) is compared with ``threshold_size = bandwidth x downtime-limit``; only when it is
below does ``ram_save_pending`` sync the dirty bitmap. Pending still below (or zero) ->
``migration_completion``: stop, final sync, send the rest without rate limit. Identical
windows inside one bitmap range are applied in one batch, so a 1 TiB guest costs a few
hundred loop turns instead of 80,000.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from simulator.model.host import Host
from simulator.model.memory import LogRange, MemoryLayout, Workload, dirty_log
from simulator.model.migration import bitmap, phases, throttle
from simulator.model.migration.costs import PageCosts, RamCounters
from simulator.model.migration.effects import Effect, Sample, Timeline
from simulator.model.migration.params import Capability, MigrationParameters
from simulator.model.migration.status import MigrationStatus as S
from simulator.model.units import BUFFER_DELAY, EOS_WIRE, PAGE_SIZE, GiB, window_budget

_INF = math.inf
#: ram.c ram_save_iterate bound on iterate calls per window (MAX_WAIT stand-in).
_MAX_CALLS_PER_WINDOW = 64


@dataclass(frozen=True)
class PrecopyConfig:
    """Everything one QEMU migration depends on."""

    layout: MemoryLayout
    workload: Workload = field(default_factory=Workload)
    params: MigrationParameters = field(default_factory=MigrationParameters)
    caps: frozenset[Capability] = frozenset()
    host: Host = field(default_factory=Host)
    link_bandwidth: float | None = None  # default: host NIC
    device_state_bytes: int = 256 * 1024
    vm_running: bool = True
    vcpus: int = 1


class QemuPrecopy:
    """One outgoing QEMU migration, advanced with ``run_until(t)``."""

    def __init__(self, cfg: PrecopyConfig, start: float = 0.0) -> None:
        self.cfg = cfg
        self.link = cfg.link_bandwidth or cfg.host.nic_bandwidth
        self.costs = PageCosts(cfg.host, self.link, cfg.workload, cfg.params, cfg.caps)
        self.c = RamCounters()
        self.tl = Timeline()
        self.start = self.t = start
        gib = cfg.layout.total_bytes / GiB
        self.setup_end = start + cfg.host.setup_fixed_s + cfg.host.setup_per_gib_s * gib
        # migration.c: a window closes at the first migration_rate_limit call at least
        # BUFFER_DELAY after it began (ms clock, semaphore wake-up): slightly later
        self.window = BUFFER_DELAY + cfg.host.window_overrun_s
        self.status = S.NONE
        self._set(start, S.SETUP)
        self.vm_running = cfg.vm_running
        self._carried: list[list[LogRange]] = []  # see close_period
        self.segs = bitmap.full_bitmap(
            cfg.layout.total_pages, cfg.layout.nonzero_ranges(cfg.workload)
        )
        self.dirty = cfg.layout.total_pages
        self.cursor = 0
        self.bucket = "precopy"
        self.threshold = 0.0
        self.bandwidth = 0.0  # bytes/ms of the last window
        self.mbps = 0.0
        self.pps = 0.0
        self.expected_downtime = cfg.params.downtime_limit
        self.remaining_at_sync = 0
        self.dirty_pages_rate = 0
        self.period_start = start
        self.period_pages = 0
        self.bytes_xfer_prev = 0
        self.high_cnt = 0
        self.throttle = 0
        self.last_log_t = start
        self.writer_pos = 0.0
        self.generation = 0
        self.device_bytes = 0
        self.downtime: float | None = None
        self.end: float | None = None
        self.postcopy_requested = False
        # The return path (postcopy-ram or return-path on) reads a channel no QEMU
        # answers on (migrate exec:): migration_completion's await_return_path_close_on_source
        # then waits for a MIG_RP_MSG_SHUT that never comes (migration/migration.c).
        self.silent_return_path = False
        self.awaiting_return_path = False
        self._requests = 0.0
        self._first_pc = True
        self.cancel_requested = False
        self.error_desc: str | None = None
        self._stopped_at: float | None = None
        # bytes the wire has taken so far, plus what may wait in hand: the migration
        # thread blocks in a write past it (None: no wire, the model alone)
        self.wire_limit: float | None = None

    @property
    def transferred(self) -> int:
        return int(self.c.transferred)

    def _blocked(self) -> bool:
        return self.wire_limit is not None and self.c.transferred >= self.wire_limit

    # ----------------------------------------------------------------- control
    def request_postcopy(self) -> None:
        """migrate-start-postcopy: switch at the next iteration (postcopy_start)."""
        self.postcopy_requested = True

    def cancel(self, t: float) -> None:
        """migrate_cancel (migrate_fd_cancel), per phase (simulator/model/migration/phases.py)."""
        phases.cancel(self, t)

    def proceed(self, t: float) -> None:
        """migrate-continue: the switch-over waiting in pre-switchover goes on."""
        phases.proceed(self, t)

    def resume(self, t: float) -> str | None:
        """migrate resume=true on a paused post-copy; the error text if there is none."""
        return phases.resume(self, t)

    def fail(self, t: float, desc: str) -> None:
        """The stream broke (destination died, link cut) at time ``t``."""
        self.run_until(t)
        if self.status.terminal:
            return
        self.error_desc = desc
        t = max(t, self.t)
        if self.status is S.POSTCOPY_ACTIVE:
            self._set(t, S.POSTCOPY_PAUSED)
            self.tl.effects.append((t, Effect.GUEST_PAUSED))
            return
        self._finish(t, S.FAILED)
        self.tl.effects.append((t, Effect.DESTINATION_FAILED))

    def run_until(self, t_end: float) -> None:
        """Advance the migration thread up to virtual time ``t_end``."""
        while not self.status.terminal and self.t < t_end:
            st = self.status
            if self.awaiting_return_path:
                self.t = t_end  # the thread joins the return path's: nothing moves
                return
            if st is S.SETUP:
                if t_end < self.setup_end:
                    return
                self.t = self.setup_end
                self._sync(self.t)  # ram_init_bitmaps: dirty-sync-count = 1
                self.period_start = self.t
                self._set(self.t, S.ACTIVE)
            elif st is S.CANCELLING:
                # migrate_fd_cleanup: the destination's load fails and it exits; a
                # pre-copy source keeps running; after a post-copy switch the guest is lost.
                lost = self.bucket == "postcopy"
                self._finish(self.t, S.CANCELLED)
                self.tl.effects.append((self.t, Effect.DESTINATION_FAILED))
                if lost:
                    self.tl.effects.append((self.t, Effect.GUEST_PAUSED))
            elif st in (S.POSTCOPY_PAUSED, S.PRE_SWITCHOVER):
                return  # waits for migrate resume=true / migrate-continue
            elif self._blocked():
                self.t = t_end  # waiting in a write the wire does not take
                return
            elif st is S.POSTCOPY_ACTIVE:
                phases.postcopy_window(self)
            elif not self._batch(t_end):
                self._window()

    # ----------------------------------------------------------------- windows
    def _budget(self) -> float:
        return window_budget(self.cfg.params.max_bandwidth)

    def _window(self) -> None:
        w0, sent, t, calls = self.t, 0, self.t, 0
        budget, w_end = self._budget(), self.t + self.window
        pages0 = self.c.pages_sent
        while True:
            pending = self.dirty * PAGE_SIZE
            if pending < self.threshold:
                self._sync(t)
                pending = self.dirty * PAGE_SIZE
            if pending == 0 or pending < self.threshold:
                phases.complete(self, t)
                return
            if self.postcopy_requested and Capability.POSTCOPY_RAM in self.cfg.caps:
                phases.postcopy_start(self, t)
                return
            b, t = self._send(budget - sent, t, w_end)
            sent += b + self._add(EOS_WIRE)
            calls += 1
            # bitmap ran dry inside the window: migration_thread loops straight back (unless
            # it now waits on the wire)
            if (
                self.dirty == 0
                and t < w_end
                and sent < budget
                and calls < _MAX_CALLS_PER_WINDOW
                and not self._blocked()
            ):
                continue
            break
        self.t = w_end
        self._counters(sent, self.c.pages_sent - pages0, w_end - w0)

    def _batch(self, t_end: float) -> bool:
        """Apply k identical rate-limited windows at once; False if not applicable."""
        budget = self._budget()
        if self.threshold <= 0 or budget == _INF or self.postcopy_requested:
            return False
        i = bitmap.split_at(self.segs, self.cursor)
        while i < len(self.segs) and self.segs[i][2] == 0:
            i += 1
        if i >= len(self.segs):
            return False
        seg = self.segs[i]
        c = self.costs.constant(seg[3])
        if c is None:
            return False
        tau = self.costs.per_page(seg[3])[1]
        p = min(math.ceil(budget / c), math.floor(self.window / tau))
        if p <= 0 or self.dirty * PAGE_SIZE < self.threshold:
            return False
        wb = p * c + EOS_WIRE
        thr1 = wb / (self.window * 1000) * self.cfg.params.downtime_limit
        j_max = (self.dirty * PAGE_SIZE - thr1) // (p * PAGE_SIZE)
        k = int(min(seg[2] // p - 1, j_max + 1, (t_end - self.t) // self.window))
        if self.wire_limit is not None:  # no further than the wire lets it
            k = min(k, int((self.wire_limit - self.c.transferred) // wb) + 1)
        if k < 2:
            return False
        self.cursor = seg[0]
        self._take(i, k * p)
        self._add(self.costs.account(self.c, k * p, seg[3]) + k * EOS_WIRE)
        self.t += k * self.window
        self._counters(wb, p, self.window)
        return True

    def _take(self, i: int, p: int) -> None:
        """Remove ``p`` dirty pages from the front of segment ``i``; move the cursor."""
        s = self.segs[i]
        length, d = s[1] - s[0], s[2]
        addr = length if p == d else length * p // d
        if addr == length:
            s[2] = 0
        else:
            c = s[4] * addr // length
            self.segs[i : i + 1] = [
                [s[0], s[0] + addr, 0, s[3], c],
                [s[0] + addr, s[1], d - p, s[3], s[4] - c],
            ]
        self.cursor = s[0] + addr
        self.dirty -= p

    def _send(self, budget: float, t: float, t_stop: float) -> tuple[int, float]:
        """ram_find_and_save_block loop: send dirty pages in address order."""
        sent = 0
        i = bitmap.split_at(self.segs, self.cursor)
        while budget - sent > 0 and t < t_stop and self.dirty > 0:
            if i >= len(self.segs):
                i, self.cursor = 0, 0
                bitmap.coalesce(self.segs)
                # ram.c find_dirty_block: complete_round -> xbzrle_enabled after the
                # bulk stage; every page has reached the destination once by now
                self.costs.xbzrle_active = self.costs.xbzrle
                self.costs.first_round = False
                continue
            seg = self.segs[i]
            if seg[2] == 0:
                i += 1
                continue
            xb = seg[3] and self.costs.xbzrle_on
            length = seg[1] - seg[0]
            hit = seg[4] / length if xb else 0.0
            avg, tau = self.costs.per_page(seg[3], hit)
            p = seg[2]
            if budget != _INF:
                p = min(p, math.ceil((budget - sent) / avg))
            if t_stop != _INF:
                p = min(p, math.floor((t_stop - t) / tau))
            if p <= 0:
                break
            hits = round(p * hit)
            self._take(i, p)
            sent += self._add(self.costs.account(self.c, p, seg[3], hits))
            if xb and self.bucket == "precopy":
                self._cache_inserts(i, p - hits)
            t += p * tau
            i += 1
        return sent, t

    def _cache_inserts(self, i: int, misses: int) -> None:
        """save_xbzrle_page inserts every missed page (not in the last stage) while its
        slot is its own (``cache_share`` of a range's pages)."""
        s = self.segs[i]
        cap = round((s[1] - s[0]) * self.costs.cache_share)
        s[4] = min(cap, s[4] + misses)

    def _add(self, nbytes: int) -> int:
        self.c.transferred += nbytes
        setattr(self.c, self.bucket + "_bytes", getattr(self.c, self.bucket + "_bytes") + nbytes)
        return nbytes

    def _counters(self, window_bytes: int, window_pages: int, dur: float) -> None:
        """migration.c migration_update_counters at the end of a window."""
        self.bandwidth = window_bytes / (dur * 1000)
        self.threshold = self.bandwidth * self.cfg.params.downtime_limit
        self.mbps = window_bytes * 8 / dur / 1e6
        self.pps = window_pages / dur
        if self.dirty_pages_rate and self.c.transferred > 10000 and self.bandwidth > 0:
            self.expected_downtime = int(self.remaining_at_sync / self.bandwidth)
        self._sample()

    # ----------------------------------------------------------------- syncs
    def close_period(self, t: float) -> None:
        """The guest stops or runs again: its dirty log so far is kept for the next sync.
        Not a sync itself: QEMU's stop and cont leave the bitmap alone (no
        MIGRATION_PASS; the fuzzer found the simulator sending one at stop)."""
        w = self.cfg.workload
        dt = t - self.last_log_t if self.vm_running else 0.0
        self.last_log_t = t
        log, self.writer_pos = dirty_log(w, w.effective_rate(self.throttle), dt, self.writer_pos)
        if log:
            self._carried.append(log)

    def _sync(self, t: float) -> None:
        """ram.c migration_bitmap_sync (+ migration_trigger_throttle after >1 s)."""
        self.close_period(t)
        logs, self._carried = self._carried, []
        if logs:
            self.generation += 1
        newly = sum(bitmap.union(self.segs, log) for log in logs)
        self.dirty += newly
        self.period_pages += newly
        self.c.dirty_sync_count += 1
        self.remaining_at_sync = self.dirty * PAGE_SIZE
        if Capability.EVENTS in self.cfg.caps:
            self.tl.events.append((t, "MIGRATION_PASS", {"pass": self.c.dirty_sync_count}))
        period_ms = int((t - self.period_start) * 1000)
        if period_ms > 1000:
            self._trigger_throttle(t)
            self.dirty_pages_rate = self.period_pages * 1000 // period_ms
            self.period_start = t
            self.period_pages = 0
            self.bytes_xfer_prev = self.c.transferred

    def _trigger_throttle(self, t: float) -> None:
        """ram.c migration_trigger_throttle + mig_throttle_guest_down (cpu-throttle.c)."""
        if Capability.AUTO_CONVERGE not in self.cfg.caps:
            return
        xfer = self.c.transferred - self.bytes_xfer_prev
        dirty_bytes = self.period_pages * PAGE_SIZE
        stepped, self.high_cnt = throttle.trigger(
            self.cfg.params, self.throttle, self.high_cnt, xfer, dirty_bytes
        )
        if stepped is not None:
            self.throttle = stepped
            self.tl.throttle_steps.append((t, self.throttle))

    # ----------------------------------------------------------------- endings
    def _stop_source(self, t: float) -> None:
        self._stopped_at = t
        self.tl.effects.append((t, Effect.SOURCE_STOPPED))

    def _finish(self, t: float, st: S) -> None:
        self.end = t
        self.throttle = 0  # cpu_throttle_stop when migration ends
        self._set(t, st)
        self._sample()

    def _set(self, t: float, st: S) -> None:
        self.status = st
        self.tl.history.append((t, st.value))
        if Capability.EVENTS in self.cfg.caps:
            self.tl.events.append((t, "MIGRATION", {"status": st.value}))

    def _sample(self) -> None:
        self.tl.samples.append(Sample(self.t, self.status.value, self.c.transferred,
            self.dirty * PAGE_SIZE, self.c.dirty_sync_count, self.throttle, self.mbps,
            self.expected_downtime))  # fmt: skip
