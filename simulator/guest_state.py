"""Guest-side state that is not page content (kernel and tmpfs metadata): it travels
with the migrated guest (the stream's "done" frame, a snapshot's state file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.net.guest_net import GuestNet


@dataclass
class GuestState:
    booted: bool = False
    runtime: float = 0.0  # seconds the vCPUs ran
    counter_start: float | None = None
    pattern: dict[str, Any] | None = None  # {mib, seed, base, version}
    net: GuestNet = field(default_factory=GuestNet)  # addresses, link state, heartbeat

    def to_json(self) -> dict[str, Any]:
        return {
            "booted": self.booted,
            "runtime": self.runtime,
            "counter_start": self.counter_start,
            "pattern": self.pattern,
            "net": self.net.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GuestState:
        return cls(
            booted=bool(data.get("booted", False)),
            runtime=float(data.get("runtime", 0.0)),
            counter_start=data.get("counter_start"),
            pattern=data.get("pattern"),
            net=GuestNet.from_json(data.get("net")),
        )
