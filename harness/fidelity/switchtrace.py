"""The switch-over's fixed cost, read from QEMU's own trace events of a real migration.

migration_completion (migration/migration.c) stops the VM, then
qemu_savevm_state_complete_precopy (migration/savevm.c) runs ram_save_complete (a last
migration_bitmap_sync, then the remaining dirty pages) and saves every device's state
section by section. The model sends the pages itself; what it needs from the host is
the rest: the last bitmap sync and the device sections, a CPU cost per machine that the
idle configuration shows as well as any other. QEMU's "log" trace backend prints each
event as ``pid@seconds.micros:name args`` once ``-msg timestamp=on`` is given; the
events are switched on over QMP (trace-event-set-state) on the calibration runs only.
"""

from __future__ import annotations

import re

from harness.machine import Machine

#: the trace events the reading below needs (trace-events files of migration/)
EVENTS = (
    "migration_completion_vm_stop",
    "migration_bitmap_sync_start",
    "migration_bitmap_sync_end",
    "savevm_section_start",
    "savevm_section_end",
    "migrate_set_state",
)
#: the source's extra command line: timestamps on trace lines (util/log.c, -msg)
ARGV = ("-msg", "timestamp=on")
_LINE = re.compile(r"^\d+@(\d+\.\d+):(\w+) ?(.*)$")


def enable(vm: Machine) -> None:
    """Switch the events on in a running QEMU."""
    for name in EVENTS:
        vm.qmp.execute("trace-event-set-state", {"name": name, "enable": True})


def switchover_s(log: str) -> float | None:
    """Seconds of the last completion that are neither the VM's stop nor the pages sent
    in it: from migration_completion_vm_stop to the "completed" state, less the RAM
    section's time, plus the bitmap sync inside that section. None if the log has no
    completed migration with those events."""
    events: list[tuple[float, str, str]] = []
    for line in log.splitlines():
        m = _LINE.match(line.strip())
        if m:
            events.append((float(m.group(1)), m.group(2), m.group(3)))
    stops = [i for i, e in enumerate(events) if e[1] == "migration_completion_vm_stop"]
    if not stops:
        return None
    tail = events[stops[-1] :]
    done = _first(tail, "migrate_set_state", "completed")
    ram_start = _first(tail, "savevm_section_start", "ram,")
    ram_end = _first(tail, "savevm_section_end", "ram,")
    sync_start = _first(tail, "migration_bitmap_sync_start", "")
    sync_end = _first(tail, "migration_bitmap_sync_end", "")
    if done is None or ram_start is None or ram_end is None:
        return None
    if sync_start is None or sync_end is None:
        return None
    total = done - tail[0][0]
    return max(0.0, total - (ram_end - ram_start) + (sync_end - sync_start))


def _first(events: list[tuple[float, str, str]], name: str, args: str) -> float | None:
    for t, n, a in events:
        if n == name and args in a:
            return t
    return None
