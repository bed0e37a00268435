"""The guest's side of the network: addresses, interfaces by MAC, its heartbeat."""

from __future__ import annotations

import shlex

from harness.errors import ConsoleError
from harness.machine import Machine
from harness.waits import wait_for


def iface_for_mac(vm: Machine, mac: str, timeout: float = 60.0) -> str:
    """The guest's interface name with ``mac`` (waits for a hot-added NIC to appear)."""

    def probe() -> str | None:
        status, out = vm.console.run(f"grep -il {shlex.quote(mac)} /sys/class/net/*/address")
        if status != 0 or not out.strip():
            return None
        return out.strip().splitlines()[0].split("/")[-2]

    return wait_for(probe, timeout, f"{vm.name}'s NIC {mac}")


def configure(vm: Machine, mac: str, address: str, prefix: int = 24) -> str:
    """Give the NIC with ``mac`` the IPv4 ``address`` and bring it up; its name."""
    iface = iface_for_mac(vm, mac)
    for cmd in (
        f"ip addr add {address}/{prefix} dev {iface}",
        f"ip link set {iface} up",
    ):
        status, out = vm.console.run(cmd)
        if status != 0:
            raise ConsoleError(f"{vm.name}: '{cmd}' failed ({status}): {out}")
    return iface


def start_heartbeat(vm: Machine, host: str, interval: float = 0.01) -> None:
    """The guest pings ``host`` every ``interval`` s from now on: its heartbeat, seen on
    the wire by the host (a stopped guest sends nothing)."""
    # a subshell: "cmd &" cannot be followed by the console's "; echo" marker
    status, out = vm.console.run(f"(ping -i {interval} {host} </dev/null >/dev/null 2>&1 &)")
    if status != 0:
        raise ConsoleError(f"{vm.name}: heartbeat did not start ({status}): {out}")
