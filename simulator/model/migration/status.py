"""Migration statuses with upstream names, and the legal transitions per product."""

from __future__ import annotations

from enum import StrEnum


class MigrationStatus(StrEnum):
    """QEMU qapi/migration.json MigrationStatus (7.2) plus StratoVirt's ``canceled``.

    StratoVirt (migration/src/protocol.rs ``MigrationStatus``) prints ``canceled`` with
    one "l"; QEMU says ``cancelled``. Both are members so each profile speaks its own.
    A ``StrEnum``: a member is the very string query-migrate carries, so the harness
    reads replies of real hypervisors into it (harness/migration.py) and compares
    either way. ``colo`` and ``wait-unplug`` are in QAPI but never modelled.
    """

    NONE = "none"
    SETUP = "setup"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    CANCELED = "canceled"
    ACTIVE = "active"
    POSTCOPY_ACTIVE = "postcopy-active"
    POSTCOPY_PAUSED = "postcopy-paused"
    COMPLETED = "completed"
    FAILED = "failed"
    DEVICE = "device"
    PRE_SWITCHOVER = "pre-switchover"
    POSTCOPY_RECOVER = "postcopy-recover"
    COLO = "colo"
    WAIT_UNPLUG = "wait-unplug"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def in_progress(self) -> bool:
        return self in _IN_PROGRESS


_TERMINAL = frozenset(
    {
        MigrationStatus.COMPLETED,
        MigrationStatus.FAILED,
        MigrationStatus.CANCELLED,
        MigrationStatus.CANCELED,
    }
)
_IN_PROGRESS = frozenset(
    {
        MigrationStatus.SETUP,
        MigrationStatus.ACTIVE,
        MigrationStatus.POSTCOPY_ACTIVE,
        MigrationStatus.POSTCOPY_PAUSED,
        MigrationStatus.CANCELLING,
        MigrationStatus.DEVICE,
        MigrationStatus.PRE_SWITCHOVER,
        MigrationStatus.POSTCOPY_RECOVER,
    }
)

S = MigrationStatus
Transitions = frozenset[tuple[MigrationStatus, MigrationStatus]]

#: Transitions QEMU 7.2's source side makes (migration.c migrate_set_state callers).
QEMU_TRANSITIONS: Transitions = frozenset(
    {
        (S.NONE, S.SETUP),
        (S.SETUP, S.ACTIVE),
        (S.SETUP, S.FAILED),
        (S.SETUP, S.CANCELLING),
        (S.ACTIVE, S.COMPLETED),
        (S.ACTIVE, S.FAILED),
        (S.ACTIVE, S.CANCELLING),
        (S.ACTIVE, S.POSTCOPY_ACTIVE),
        # "device" only follows pre-switchover (migration_maybe_pause), never "active"
        (S.DEVICE, S.COMPLETED),
        (S.DEVICE, S.FAILED),
        (S.POSTCOPY_ACTIVE, S.COMPLETED),
        (S.POSTCOPY_ACTIVE, S.POSTCOPY_PAUSED),
        (S.POSTCOPY_ACTIVE, S.FAILED),
        (S.POSTCOPY_ACTIVE, S.CANCELLING),
        # migration_maybe_pause: pause-before-switchover, then migrate-continue
        (S.ACTIVE, S.PRE_SWITCHOVER),
        (S.PRE_SWITCHOVER, S.DEVICE),
        (S.PRE_SWITCHOVER, S.CANCELLING),
        # postcopy_pause from any state, even cancelling; migrate resume=true
        (S.CANCELLING, S.POSTCOPY_PAUSED),
        (S.POSTCOPY_PAUSED, S.POSTCOPY_RECOVER),
        (S.POSTCOPY_RECOVER, S.POSTCOPY_ACTIVE),
        (S.CANCELLING, S.CANCELLED),
        # a fresh migrate after any end state
        (S.COMPLETED, S.SETUP),
        (S.FAILED, S.SETUP),
        (S.CANCELLED, S.SETUP),
    }
)

#: StratoVirt migration/src/protocol.rs ``MigrationStatus::transfer`` exactly.
STRATOVIRT_TRANSITIONS: Transitions = frozenset(
    {(S.NONE, S.SETUP)}
    | {(S.SETUP, x) for x in (S.ACTIVE, S.FAILED, S.CANCELED)}
    | {(S.ACTIVE, x) for x in (S.COMPLETED, S.FAILED, S.CANCELED)}
    | {(S.COMPLETED, S.ACTIVE)}
    | {(S.FAILED, x) for x in (S.SETUP, S.ACTIVE)}
    | {(S.CANCELED, x) for x in (S.NONE, S.SETUP, S.ACTIVE, S.COMPLETED, S.FAILED, S.CANCELED)}
)
