"""A network for one test: a namespace with a bridge, the guests' taps on it, a host address.

    namespace hvlab-<tag>-net
      br0  10.88.0.1/24  the host side; guests get 10.88.0.x on their virtio-net NICs
      tap devices        created by each hypervisor (run in the namespace with
                         ``ip netns exec``), put on br0 here once they exist

Nothing touches the machine's own network.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

from harness.errors import SetupError
from harness.leaks import LAB_ROOT, run_tag
from harness.net import link
from harness.net.link import NetError, _run
from harness.waits import wait_for

PREFIX = "hvlab-"
SUBNET = "10.88.0"
HOST_ADDRESS = f"{SUBNET}.1"


class TestNet:
    """The namespace, its bridge and what the test attached to it."""

    __test__ = False  # not a pytest test class

    def __init__(self, tag: str = "") -> None:
        self.tag = tag or uuid.uuid4().hex[:8]
        self.name = f"{PREFIX}{self.tag}-net"
        self._up = False
        self._guests = 1

    # -- lifetime --------------------------------------------------------------------------
    @property
    def marker(self) -> Path:
        """Names the run that owns the namespace (for reaping it if that run dies)."""
        return LAB_ROOT / f"net-{self.tag}"

    def up(self) -> TestNet:
        LAB_ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.marker.write_text(run_tag())
        try:
            _run(["ip", "netns", "add", self.name])
        except NetError as exc:
            self.marker.unlink(missing_ok=True)
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
            self.marker.unlink(missing_ok=True)

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

    # -- link conditions on this namespace (harness/net/link.py) ---------------------------
    def link_down(self, ifname: str) -> None:
        link.down(self.name, ifname)

    def link_up(self, ifname: str) -> None:
        link.up(self.name, ifname)

    def tc(self, *args: str) -> str:
        return _run(self.exec_argv(["tc", *args]))

    def nft_tables(self) -> str:
        return _run(self.exec_argv(["nft", "list", "tables"]))


def pcap_dir(logs: Path) -> Path:
    path = logs / "net"
    path.mkdir(parents=True, exist_ok=True)
    return path
