"""What must hold on every backend after every step, from QEMU 7.2's source.

Runstates are the values of qapi/run-state.json ``RunState``, and one VM's runstate
only moves along softmmu/runstate.c ``runstate_transitions_def`` (a poll may miss the
states in between, so a later observation must be *reachable*). Migration statuses, as
the MIGRATION events announce each change (migration/migration.c migrate_set_state
emits one per change), move only along the transitions its callers make: the source's
``MigrationState`` (migration.c, savevm.c qemu_savevm_state, multifd.c) and the
destination's ``MigrationIncomingState`` (process_incoming_migration_co/_bh,
savevm.c postcopy_ram_listen_thread, loadvm_postcopy_handle_resume).
"""

from __future__ import annotations

from collections.abc import Iterable

Edge = tuple[str, str]

RUNSTATES = frozenset(
    [
        "debug",
        "inmigrate",
        "internal-error",
        "io-error",
        "paused",
        "postmigrate",
        "prelaunch",
        "finish-migrate",
        "restore-vm",
        "running",
        "save-vm",
        "shutdown",
        "suspended",
        "watchdog",
        "guest-panicked",
        "colo",
    ]
)

_RUNSTATE_EDGES: dict[str, str] = {
    "prelaunch": "inmigrate running finish-migrate",
    "debug": "running finish-migrate prelaunch suspended",
    "inmigrate": "internal-error io-error paused running shutdown suspended watchdog "
    "guest-panicked finish-migrate prelaunch postmigrate colo",
    "internal-error": "paused finish-migrate prelaunch",
    "io-error": "running finish-migrate prelaunch",
    "paused": "running finish-migrate postmigrate prelaunch colo",
    "postmigrate": "running finish-migrate prelaunch",
    "finish-migrate": "running paused postmigrate prelaunch colo",
    "restore-vm": "running prelaunch",
    "colo": "running prelaunch shutdown",
    "running": "debug internal-error io-error paused finish-migrate restore-vm save-vm "
    "shutdown watchdog guest-panicked colo suspended",
    "save-vm": "running",
    "shutdown": "paused finish-migrate prelaunch colo",
    "suspended": "running finish-migrate prelaunch colo",
    "watchdog": "running finish-migrate prelaunch colo",
    "guest-panicked": "running finish-migrate prelaunch",
}
RUNSTATE_EDGES = frozenset((a, b) for a, bs in _RUNSTATE_EDGES.items() for b in bs.split())

_RUNNING = [
    "setup",
    "active",
    "postcopy-active",
    "postcopy-paused",
    "postcopy-recover",
    "pre-switchover",
    "device",
    "wait-unplug",
    "colo",
]

#: The source: migrate_init resets to none without an event, so a new migrate after any
#: end shows ``<end> -> setup``; migrate_fd_cancel moves any running state to
#: cancelling; migration_detect_error and the multifd threads fail from any state but
#: cancelling/cancelled.
SOURCE_EDGES: frozenset[Edge] = frozenset(
    {("none", "setup")}
    | {(end, "setup") for end in ("completed", "failed", "cancelled")}
    | {(s, "cancelling") for s in _RUNNING if s != "colo"}
    | {(s, "failed") for s in _RUNNING}
    | {
        ("cancelling", "cancelled"),
        ("setup", "active"),
        ("setup", "wait-unplug"),
        ("wait-unplug", "active"),
        ("active", "pre-switchover"),
        ("pre-switchover", "device"),
        ("pre-switchover", "postcopy-active"),
        ("setup", "completed"),  # savevm.c qemu_savevm_state (savevm/snapshot-save)
        ("active", "completed"),
        ("device", "completed"),
        ("active", "postcopy-active"),
        ("postcopy-active", "completed"),
        ("postcopy-active", "postcopy-paused"),
        ("postcopy-paused", "postcopy-recover"),
        ("postcopy-recover", "postcopy-active"),
        ("postcopy-recover", "postcopy-paused"),
        ("active", "colo"),
        # postcopy_pause reads s->state when it sets postcopy-paused: a migrate_cancel
        # that came in after its assert leaves cancelling -> postcopy-paused
        ("cancelling", "postcopy-paused"),
    }
)

#: The destination (MigrationIncomingState): one incoming migration per process.
DESTINATION_EDGES: frozenset[Edge] = frozenset(
    {
        ("none", "active"),
        ("active", "completed"),
        ("active", "failed"),
        ("active", "postcopy-active"),
        ("active", "colo"),
        ("postcopy-active", "completed"),
        ("postcopy-active", "failed"),
        ("postcopy-active", "postcopy-paused"),
        ("postcopy-paused", "postcopy-recover"),
        ("postcopy-recover", "postcopy-active"),
    }
)


#: runstates a VM only passes through within one QMP command or migration step, which a
#: poll between two steps may miss (migration.c migration_completion: finish-migrate;
#: savevm.c save_snapshot/load_snapshot: save-vm and restore-vm)
PASSING_RUNSTATES = frozenset({"finish-migrate", "save-vm", "restore-vm"})


def reachable(
    edges: frozenset[Edge], start: str, end: str, via: frozenset[str] | None = None
) -> bool:
    """``end`` is ``start`` or reachable from it along ``edges``, passing only through
    states in ``via`` on the way (None: any; QEMU's graph is strongly connected, so the
    invariant passes ``PASSING_RUNSTATES``: what a poll between two steps can miss)."""
    seen, todo = {start}, [start]
    while todo:
        here = todo.pop()
        for a, b in edges:
            if a != here or b in seen:
                continue
            if b == end:
                return True
            if via is None or b in via:
                seen.add(b)
                todo.append(b)
    return start == end


def bad_edges(statuses: Iterable[str], edges: frozenset[Edge], first: str = "none") -> list[Edge]:
    """Consecutive pairs of ``first`` + ``statuses`` that are not in ``edges``."""
    out: list[Edge] = []
    prev = first
    for status in statuses:
        if status != prev and (prev, status) not in edges:
            out.append((prev, status))
        prev = status
    return out
