"""The late phases of a QEMU 7.2 migration: completion (with pause-before-switchover),
post-copy (start, background pages, pause on a broken stream, recovery) and what a
cancel does in each (migration/migration.c migration_completion,
migration_maybe_pause, postcopy_start, postcopy_pause, migrate_fd_cancel; ram.c).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from simulator.model.migration import postcopy
from simulator.model.migration.effects import Effect
from simulator.model.migration.params import Capability
from simulator.model.migration.status import MigrationStatus as S
from simulator.model.units import BUFFER_DELAY, EOS_WIRE, PAGE_SIZE, window_budget

if TYPE_CHECKING:
    from simulator.model.migration.qemu_precopy import QemuPrecopy

_INF = math.inf


def complete(e: QemuPrecopy, t: float) -> None:
    """migration_completion: stop the source; with pause-before-switchover wait in
    pre-switchover for migrate-continue (migration_maybe_pause), else switch over."""
    e._stop_source(t)
    e.vm_running = False
    if Capability.PAUSE_BEFORE_SWITCHOVER in e.cfg.caps:
        e.t = t
        e._set(t, S.PRE_SWITCHOVER)
        return
    switchover(e, t)


def switchover(e: QemuPrecopy, t: float) -> None:
    """The rest of the completion: last sync, the rest unlimited, the device state."""
    e._sync(t)
    t += e.cfg.host.stop_overhead_s + e.cfg.host.switchover_s
    e.bucket = "downtime"
    _, t = e._send(_INF, t, _INF)
    e._add(EOS_WIRE)
    e.device_bytes += e.cfg.device_state_bytes
    t += e.cfg.device_state_bytes / e.link
    e.downtime = t - (e._stopped_at if e._stopped_at is not None else t)
    e.t = t
    if e.silent_return_path:
        # everything is sent, but the completion waits for the return path to close:
        # "active" in finish-migrate for good; migrate_cancel gets "cancelling" only
        e.awaiting_return_path = True
        return
    e._finish(t, S.COMPLETED)
    e.tl.effects.append((t, Effect.SWITCHOVER))


def proceed(e: QemuPrecopy, t: float) -> None:
    """migrate-continue in pre-switchover: "device", then the switch-over."""
    e.run_until(t)
    t = max(t, e.t)
    e._set(t, S.DEVICE)
    switchover(e, t)


def cancel(e: QemuPrecopy, t: float) -> None:
    """migrate_fd_cancel: "cancelling" and the channel shut down. In pre-switchover the
    pause ends and the migration thread finds "cancelling" (cancelled at its next turn,
    the source resumes). In post-copy the thread sees the broken stream first and
    postcopy_pause sets "postcopy-paused" over "cancelling" (the race QEMU 7.2 usually
    loses): the source stays stopped, the destination waits for pages."""
    e.run_until(t)
    t = max(t, e.t)
    if e.status in (S.SETUP, S.ACTIVE, S.PRE_SWITCHOVER):
        e._set(t, S.CANCELLING)
    elif e.status is S.POSTCOPY_ACTIVE:
        e._set(t, S.CANCELLING)
        e.error_desc = "Channel error: cancelled"
        e._set(t, S.POSTCOPY_PAUSED)
        e.tl.effects.append((t, Effect.GUEST_PAUSED))


def postcopy_start(e: QemuPrecopy, t: float) -> None:
    """postcopy_start: stop, discard bitmap (a sync), device package; the destination
    runs the guest; the rest of RAM follows (max-postcopy-bandwidth, 0: unlimited)."""
    e._stop_source(t)
    e._sync(t)
    e.vm_running = False
    e._set(t, S.POSTCOPY_ACTIVE)
    e.bucket = "postcopy"
    e.costs.discarded = True  # the destination dropped these pages: fresh memory
    e.device_bytes += e.cfg.device_state_bytes
    host = e.cfg.host
    t += host.stop_overhead_s + host.switchover_s + e.cfg.device_state_bytes / e.link
    e.downtime = t - (e._stopped_at if e._stopped_at is not None else t)
    e.t = t
    e.tl.effects.append((t, Effect.POSTCOPY_SWITCHOVER))


def postcopy_window(e: QemuPrecopy) -> None:
    """Background pages at max-postcopy-bandwidth plus urgent page requests; a request
    waits behind what the one channel (no postcopy-preempt) already queued: up to the
    socket buffers, drained at the rate the destination places pages."""
    budget = window_budget(e.cfg.params.max_postcopy_bandwidth)
    w = e.cfg.workload
    before, sent0 = e.dirty, e.c.transferred
    _, t = e._send(budget, e.t, e.t + BUFFER_DELAY)
    busy = max(t - e.t, 0.0)
    # the guest runs the whole window, also while a rate limit keeps the source asleep
    run = BUFFER_DELAY if e.dirty else busy
    if w.ws_pages and before and busy > 0:
        rate = (e.c.transferred - sent0) / busy  # the pace pages are placed at
        # a request waits behind what is in the socket (at most the window's budget).
        # Rate-limited, it also waits for the next window: the request wakes the
        # migration thread (migration.c migration_make_urgent_request), but
        # savevm.c qemu_savevm_state_iterate returns before ram_save_iterate while
        # qemu_file_rate_limit says the window's budget is spent; at the next window
        # the queued page goes first (ram.c get_queued_page), then the burst
        queued = min(e.cfg.host.socket_buffer_bytes, before * PAGE_SIZE, budget)
        wait = max(BUFFER_DELAY - busy, 0.0) if budget != math.inf else 0.0
        fault = e.cfg.host.postcopy_fault_s + wait + queued / rate
        share = min(1.0, (before + e.dirty) / 2 / w.ws_pages)
        first = e.cfg.vcpus if e._first_pc else 0
        burst = budget / PAGE_SIZE
        e._requests += postcopy.window_requests(w, share, run, fault, first, burst)
        e._first_pc = False
        e.c.postcopy_requests = round(e._requests)
    e.t = e.t + BUFFER_DELAY if e.dirty else t
    e._sample()
    if e.dirty == 0 and not e._blocked():
        e._add(EOS_WIRE)
        e._finish(e.t, S.COMPLETED)
        e.tl.effects.append((e.t, Effect.POSTCOPY_DONE))


def resume(e: QemuPrecopy, t: float) -> str | None:
    """migrate resume=true (migrate_fd_connect with resume: postcopy_do_resume):
    postcopy-paused -> postcopy-recover -> postcopy-active; the error if it cannot."""
    e.run_until(t)
    if e.status is not S.POSTCOPY_PAUSED:
        return "Cannot resume if there is no paused migration"
    t = max(t, e.t)
    e.error_desc = None
    e._set(t, S.POSTCOPY_RECOVER)
    e._set(t, S.POSTCOPY_ACTIVE)
    return None
