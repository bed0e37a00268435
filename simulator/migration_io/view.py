"""What migration I/O needs from its process, as a protocol (SimProcess provides it)."""

from __future__ import annotations

from typing import Any, Protocol

from simulator.cmdline import SimConfig
from simulator.guest_memory import PageMap
from simulator.guest_state import GuestState
from simulator.model import Profile, VMSpec, World
from simulator.model.errors import Event
from simulator.model.migration.uri import MigrationUri, UriError, parse_uri
from simulator.model.vm import VM

JSON = dict[str, Any]
#: A QMP command's outcome: (reply or QmpError, events); the reply may be a future of one.
Result = tuple[Any, list[Event]]


def read_uri(profile: Profile, uri: str) -> MigrationUri | None:
    """The migration URI as the profile reads it (None: it cannot; the model answers)."""
    try:
        return parse_uri(profile.uri_rules, uri)
    except UriError:
        return None


class ProcessView(Protocol):
    """The simulator process as its migration I/O sees it."""

    cfg: SimConfig
    profile: Profile
    spec: VMSpec
    world: World
    vm: VM
    memory: PageMap  # the guest's RAM contents, sent and received
    guest: GuestState  # the guest's state beyond RAM (travels in the "done" frame)

    @property
    def arch(self) -> str: ...

    def tick(self) -> None:
        """Advance the model and the guest to the current virtual time."""

    def qmp_events(self, events: list[Event]) -> None:
        """Send events raised outside a command to the QMP client."""

    def guest_arrived(self) -> None:
        """An incoming migration handed the guest over; it is about to run here."""
