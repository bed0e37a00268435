"""A network for one test: a namespace with a bridge, the guests' taps on it, a host address.

    namespace hvlab-<tag>-net
      br0  10.88.0.1/24  the host side; guests get 10.88.0.x on their virtio-net NICs
      tap devices        created by each hypervisor (run in the namespace with
                         ``ip netns exec``), put on br0 here once they exist

Nothing touches the machine's own network. Link conditions for other suites act on an
interface of the namespace: down/up, a rate cap (``tc tbf``; this kernel has no netem),
a port dropped with nftables (a table of its own in the namespace, gone with it).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

from harness.errors import HarnessError, SetupError
from harness.waits import wait_for

PREFIX = "hvlab-"
SUBNET = "10.88.0"
HOST_ADDRESS = f"{SUBNET}.1"


class NetError(HarnessError):
    """A namespace, link or firewall step failed."""


def _run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise NetError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


class TestNet:
    """The namespace, its bridge and what the test attached to it."""

    __test__ = False  # not a pytest test class

    def __init__(self, tag: str = "") -> None:
        self.tag = tag or uuid.uuid4().hex[:8]
        self.name = f"{PREFIX}{self.tag}-net"
        self._up = False
        self._guests = 1

    # -- lifetime --------------------------------------------------------------------------
    def up(self) -> TestNet:
        try:
            _run(["ip", "netns", "add", self.name])
        except NetError as exc:
            raise SetupError(f"cannot create network namespace {self.name}: {exc}") from exc
        self._up = True
        try:
            self.ip("link", "set", "lo", "up")
            self.ip("link", "add", "br0", "type", "bridge", "stp_state", "0")
            # forward at once: no learning delay for the ports the taps join
            self.ip("link", "set", "br0", "type", "bridge", "forward_delay", "0")
            self.ip("addr", "add", f"{HOST_ADDRESS}/24", "dev", "br0")
            self.ip("link", "set", "br0", "up")
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        if self._up:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
            self._up = False

    def __enter__(self) -> TestNet:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- inside the namespace ----------------------------------------------------------------
    def ip(self, *args: str) -> str:
        return _run(["ip", "-n", self.name, *args])

    def exec_argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def guest_address(self) -> str:
        """The next free guest address (10.88.0.2, .3, ...)."""
        self._guests += 1
        return f"{SUBNET}.{self._guests}"

    def links(self) -> dict[str, dict[str, object]]:
        data = json.loads(self.ip("-j", "link", "show") or "[]")
        return {str(link["ifname"]): link for link in data}

    def attach(self, tap: str, timeout: float = 30.0) -> None:
        """Put the hypervisor's tap on the bridge once it exists (it creates the tap)."""
        wait_for(lambda: tap in self.links() or None, timeout, f"tap {tap} in {self.name}")
        self.ip("link", "set", tap, "master", "br0")
        self.ip("link", "set", tap, "up")

    def neighbours(self) -> str:
        return self.ip("neigh", "show", "dev", "br0")

    def fdb(self) -> str:
        """The bridge's MAC table: where br0 sends frames for each guest MAC."""
        return _run(["bridge", "-n", self.name, "fdb", "show", "br", "br0"])

    # -- link conditions (for the fault suites) --------------------------------------------
    def link_down(self, ifname: str) -> None:
        self.ip("link", "set", ifname, "down")

    def link_up(self, ifname: str) -> None:
        self.ip("link", "set", ifname, "up")

    def rate_cap(self, ifname: str, mbit: int) -> None:
        """Cap egress on ``ifname`` with a token bucket (tc tbf)."""
        self.tc("qdisc", "replace", "dev", ifname, "root", "tbf", "rate", f"{mbit}mbit",
                "burst", "32kbit", "latency", "400ms")  # fmt: skip

    def rate_uncap(self, ifname: str) -> None:
        self.tc("qdisc", "del", "dev", ifname, "root")

    def tc(self, *args: str) -> str:
        return _run(["ip", "netns", "exec", self.name, "tc", *args])

    def drop_port(self, port: int) -> None:
        """Drop TCP to and from ``port`` (nftables, a table of hvlab's own)."""
        rules = (
            "table inet hvlab {\n"
            " chain fwd { type filter hook forward priority 0; policy accept;\n"
            f"  tcp dport {port} drop\n  tcp sport {port} drop\n }}\n"
            " chain inp { type filter hook input priority 0; policy accept;\n"
            f"  tcp dport {port} drop\n  tcp sport {port} drop\n }}\n"
            "}\n"
        )
        done = subprocess.run(
            self.exec_argv(["nft", "-f", "-"]), input=rules, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise NetError(f"nft: {done.stderr.strip()}")

    def undrop(self) -> None:
        _run(self.exec_argv(["nft", "delete", "table", "inet", "hvlab"]))

    def nft_tables(self) -> str:
        return _run(self.exec_argv(["nft", "list", "tables"]))


def pcap_dir(logs: Path) -> Path:
    path = logs / "net"
    path.mkdir(parents=True, exist_ok=True)
    return path
