"""What a migration does to the VMs around it, reported by the engines."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, SupportsIndex, TypeVar

T = TypeVar("T")


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


class Stamped(list[T]):
    """A list that stamps each append with a counter it shares with other lists, so
    entries of several lists can be put back in the order they were made."""

    def __init__(self, counter: itertools.count[int]) -> None:
        super().__init__()
        self.counter = counter
        self.stamps: list[int] = []

    def append(self, item: T) -> None:
        self.stamps.append(next(self.counter))
        super().append(item)

    def __delitem__(self, index: SupportsIndex | slice) -> None:
        del self.stamps[index]
        super().__delitem__(index)


@dataclass
class Timeline:
    """Status history, effects and source-side events with their virtual times.

    Effects and events share one order (``Stamped``): at one virtual time an engine may
    sync the bitmap (MIGRATION_PASS), stop the guest (STOP) and sync again, and QEMU's
    monitor shows them in that order (migration.c migration_completion)."""

    history: list[tuple[float, str]] = field(default_factory=list)
    effects: list[tuple[float, Effect]] = field(default_factory=list)
    events: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    throttle_steps: list[tuple[float, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        counter = itertools.count()
        effects: Stamped[tuple[float, Effect]] = Stamped(counter)
        events: Stamped[tuple[float, str, dict[str, Any]]] = Stamped(counter)
        for e in self.effects:
            effects.append(e)
        for v in self.events:
            events.append(v)
        self.effects, self.events = effects, events

    def stamp(self, kind: str, index: int) -> int:
        """The order stamp of entry ``index`` of ``effects`` or ``events``."""
        entries = self.effects if kind == "effects" else self.events
        return entries.stamps[index] if isinstance(entries, Stamped) else index
