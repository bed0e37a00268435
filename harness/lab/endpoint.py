"""An inventory host's SSH endpoint, with every value checked before ssh sees it.

hosts.ini vars (Ansible's names where Ansible has one):
  ansible_host, ansible_port, ansible_user       where to connect (user defaults to root)
  ansible_ssh_private_key_file                   the key (keys only: no password, ever)
  hvlab_known_hosts                              the known_hosts file the host key must be in
                                                 (default ~/.ssh/known_hosts)
  hvlab_lab_address                              the host's address on the lab link, where
                                                 other hosts send migration streams
                                                 (default: ansible_host)
The inventory parser already refused names and addresses that are not plain
(harness/inventory.py); this adds the file checks, which need the disk.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

from harness.errors import InventoryError
from harness.inventory import Host


@dataclass(frozen=True)
class SshEndpoint:
    host: str  # the inventory name
    address: str
    port: int
    user: str
    key: Path
    known_hosts: Path
    lab_address: str


def _file(host: Host, key: str, default: str | None) -> Path:
    text = host.var(key, default)
    if not text:
        raise InventoryError(f"host {host.name}: {key} is not set (keys only, no passwords)")
    if "\n" in text or "\0" in text:
        raise InventoryError(f"host {host.name}: {key}={text!r} is not a path")
    path = Path(text).expanduser()
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise InventoryError(f"host {host.name}: {key}={text!r}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise InventoryError(f"host {host.name}: {key}={text!r} is not a regular file")
    return path.resolve()


def endpoint(host: Host) -> SshEndpoint:
    """The endpoint of an ssh host; InventoryError (one line) for what is wrong."""
    if host.connection != "ssh":
        raise InventoryError(f"host {host.name}: not an ssh host")
    return SshEndpoint(
        host=host.name,
        address=host.address,
        port=host.port or 22,
        user=host.user or "root",
        key=_file(host, "ansible_ssh_private_key_file", None),
        known_hosts=_file(host, "hvlab_known_hosts", "~/.ssh/known_hosts"),
        lab_address=host.var("hvlab_lab_address") or host.address,
    )
