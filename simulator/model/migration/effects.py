"""What a migration does to the VMs around it, reported by the engines."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Effect(Enum):
    """Side effects the VM layer applies (engines never touch VM objects)."""

    SOURCE_STOPPED = "source-stopped"  # vCPUs paused for the switch-over (STOP)
    SWITCHOVER = "switchover"  # destination owns and runs the guest now
    SOURCE_RESUMED = "source-resumed"  # a switch-over was abandoned, the source runs again
    DESTINATION_FAILED = "destination-failed"  # the destination process exits (code 1)
    SOURCE_EXIT = "source-exit"  # StratoVirt destroys the source after completion
    GUEST_PAUSED = "guest-paused"  # post-copy broke: the guest waits on the destination
    # post-copy starts: the destination runs the guest, the source stays stopped
    # (finish-migrate) until the last page went (POSTCOPY_DONE: postmigrate)
    POSTCOPY_SWITCHOVER = "postcopy-switchover"
    POSTCOPY_DONE = "postcopy-done"


@dataclass(frozen=True)
class Sample:
    """One point of the migration time series (end of a rate-limit window or batch)."""

    t: float
    status: str
    transferred: int
    remaining: int
    dirty_sync_count: int
    throttle: int
    mbps: float
    expected_downtime: int


@dataclass
class Timeline:
    """Status history, effects and source-side events with their virtual times."""

    history: list[tuple[float, str]] = field(default_factory=list)
    effects: list[tuple[float, Effect]] = field(default_factory=list)
    events: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    throttle_steps: list[tuple[float, int]] = field(default_factory=list)
