"""virDomainState and the reasons libvirt gives with it (include/libvirt/libvirt-domain.h).

``dom.state()`` returns ``[state, reason]``; the reason enum depends on the state.
Only the reasons a migration scenario can produce are named here.
"""

from __future__ import annotations

import enum


class State(enum.IntEnum):
    """virDomainState."""

    NOSTATE = 0
    RUNNING = 1
    BLOCKED = 2
    PAUSED = 3
    SHUTDOWN = 4
    SHUTOFF = 5


class Reason:
    """Reasons by state (virDomainRunningReason, ...PausedReason, ...ShutoffReason).

    Plain ints, not an enum: values overlap between states, as in libvirt; the name
    says which state a reason belongs to.
    """

    NONE = 0  # *_UNKNOWN
    RUNNING_BOOTED = 1
    RUNNING_MIGRATED = 2
    RUNNING_UNPAUSED = 5
    RUNNING_MIGRATION_CANCELED = 6
    RUNNING_POSTCOPY = 10
    PAUSED_USER = 1
    PAUSED_MIGRATION = 2
    PAUSED_POSTCOPY = 12
    SHUTOFF_DESTROYED = 2
    SHUTOFF_CRASHED = 3
    SHUTOFF_MIGRATED = 4
    SHUTOFF_FAILED = 6
