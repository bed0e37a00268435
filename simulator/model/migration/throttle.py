"""Auto-converge's throttle decision (ram.c migration_trigger_throttle and
mig_throttle_guest_down, softmmu/cpu-throttle.c limits).

Run inside a bitmap sync whose period lasted more than 1 s: the period was "dirty" if
the bytes it dirtied exceed throttle-trigger-threshold percent of the bytes it sent;
every second such period (the counter is not reset by a clean one) steps the throttle:
cpu-throttle-initial first, then + cpu-throttle-increment (less with tailslow), capped at
max-cpu-throttle and at 1..99 (CPU_THROTTLE_PCT_MIN/MAX).
"""

from __future__ import annotations

from simulator.model.migration.params import MigrationParameters


def trigger(
    p: MigrationParameters, current: int, high_cnt: int, xfer: int, dirty_bytes: int
) -> tuple[int | None, int]:
    """(the new throttle if it steps now, else None; the updated dirty-period count)."""
    limit = xfer * p.throttle_trigger_threshold // 100
    if dirty_bytes <= limit:
        return None, high_cnt
    high_cnt += 1
    if high_cnt < 2:
        return None, high_cnt
    if not current:
        new = p.cpu_throttle_initial
    else:
        inc = p.cpu_throttle_increment
        if p.cpu_throttle_tailslow:
            cpu_now = 100 - current
            ideal = int(cpu_now * (limit / dirty_bytes))
            inc = min(cpu_now - ideal, inc)
        new = min(current + inc, p.max_cpu_throttle)
    return max(1, min(99, new)), 0
