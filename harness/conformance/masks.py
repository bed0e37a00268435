"""The declared mask list: what lockstep comparison does not compare, and why.

``scope`` is ``reply:<command>``, ``event:<NAME>``, ``events-of:<step>`` (the events
of such a step whose name matches ``path`` are dropped) or ``state`` (fnmatch patterns);
``path`` is a dotted path into the reply's ``return`` value, the event's ``data`` or the
state probe, where ``*`` matches any member or list element. A masked value is compared
by its JSON type only; ``drop`` removes the member (its presence depends on timing);
``collapse`` (events) merges consecutive equal events (their number depends on timing).
Nothing here hides a behaviour: a mask is for values that differ between two runs of
the same hypervisor too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mask:
    scope: str
    path: str
    reason: str
    drop: bool = False
    collapse: bool = False


_TIMING = "wall-clock time of this run"
_BYTES = "bytes and pages moved depend on the guest's memory contents and the timing"

MASKS: tuple[Mask, ...] = (
    # query-migrate (qapi/migration.json MigrationInfo)
    Mask("reply:query-migrate", "total-time", _TIMING),
    Mask("reply:query-migrate", "setup-time", _TIMING),
    Mask("reply:query-migrate", "downtime", _TIMING),
    Mask("reply:query-migrate", "expected-downtime", _TIMING),
    Mask("reply:query-migrate", "ram.*", _BYTES),
    Mask("reply:query-migrate", "xbzrle-cache.*", _BYTES),
    Mask("reply:query-migrate", "compression.*", _BYTES),
    Mask(
        "reply:query-migrate",
        "cpu-throttle-percentage",
        "auto-converge throttles only once the guest dirtied memory faster than it was "
        "sent for a few iterations (migration/ram.c mig_throttle_guest_down): timing",
        drop=True,
    ),
    Mask(
        "reply:query-migrate",
        "error-desc",
        "the failing syscall's text is the host's (checked separately where it matters)",
    ),
    Mask(
        "reply:query-migrate",
        "socket-address.*.port",
        "a destination's listening port (-incoming tcp:127.0.0.1:0) is the one the kernel "
        "gave that backend's QEMU; the host and type are compared",
    ),
    # query-cpus-fast (qapi/machine.json CpuInfoFast)
    Mask("reply:query-cpus-fast", "*.thread-id", "host thread ids of this run"),
    # events
    Mask(
        "events-of:restore",
        "RESUME",
        "a restored VM (-incoming exec:cat FILE) resumes once its stream is loaded; whether "
        "the monitor connected before that is a race of this harness (QEMU sends events "
        "only to connected monitors, monitor/qmp.c): its runstate is compared instead",
        drop=True,
    ),
    Mask(
        "event:MIGRATION_PASS",
        "pass",
        "the number of dirty-bitmap syncs depends on the guest's dirty rate and the "
        "wall-clock time of each iteration (migration/ram.c migration_bitmap_sync)",
        collapse=True,
    ),
)
