"""The guest's network configuration: what ``ip`` set per interface, the guest's
neighbour (ARP) cache and its heartbeat. It lives in guest memory, so it travels with the
migrated guest state (:class:`simulator.guest_shell.GuestState`); interfaces are keyed by
MAC, which the destination's NIC has too."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class IfConfig:
    """One interface: its IPv4 addresses with prefix lengths, and whether it is up."""

    addrs: list[tuple[str, int]] = field(default_factory=list)
    up: bool = False


@dataclass
class Heartbeat:
    """``ping -i INTERVAL HOST`` running in the background."""

    host: str
    interval: float
    ident: int = 0x4242
    seq: int = 0


@dataclass
class GuestNet:
    ifaces: dict[str, IfConfig] = field(default_factory=dict)  # by MAC, lower case
    neighbours: dict[str, str] = field(default_factory=dict)  # IPv4 -> MAC
    heartbeat: Heartbeat | None = None

    def iface(self, mac: str) -> IfConfig:
        return self.ifaces.setdefault(mac.lower(), IfConfig())

    def to_json(self) -> dict[str, Any]:
        hb = self.heartbeat
        return {
            "ifaces": {m: {"addrs": c.addrs, "up": c.up} for m, c in self.ifaces.items()},
            "neighbours": dict(self.neighbours),
            "heartbeat": None if hb is None else [hb.host, hb.interval, hb.ident, hb.seq],
        }

    @classmethod
    def from_json(cls, data: Any) -> GuestNet:
        if not isinstance(data, dict):
            return cls()
        ifaces = {
            str(mac): IfConfig([(str(a), int(p)) for a, p in c.get("addrs", [])], bool(c["up"]))
            for mac, c in dict(data.get("ifaces") or {}).items()
        }
        hb = data.get("heartbeat")
        beat = None
        if hb:
            beat = Heartbeat(str(hb[0]), float(hb[1]), int(hb[2]), int(hb[3]))
        return cls(
            ifaces, {str(k): str(v) for k, v in dict(data.get("neighbours") or {}).items()}, beat
        )
