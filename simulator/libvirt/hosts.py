"""The simulated hosts and the domains each one knows (state behind simulator.libvirt.api)."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from simulator.libvirt.driver import HostProfile, Plan
from simulator.libvirt.errors import ErrorDomain, ErrorNumber, refuse
from simulator.libvirt.request import Cache, Disk, DomainFacts

#: Every simulated host by name; :func:`reset` forgets them.
HOSTS: dict[str, SimHost] = {}
#: Domain ids, unique across hosts (libvirt numbers running domains per daemon).
DOMAIN_IDS = itertools.count(1)


def reset() -> None:
    """Forget every simulated host and domain."""
    HOSTS.clear()


def host_name(uri: str) -> str | None:
    """The simulated host a ``sim+`` URI names, or None for any other URI."""
    parts = urlsplit(uri)
    if not parts.scheme.startswith("sim+"):
        return None
    query = parse_qs(parts.query)
    return query.get("host", [parts.hostname or ""])[0] or None


@dataclass
class DomainRecord:
    """A domain as one host knows it."""

    facts: DomainFacts
    uuid: str
    domid: int = -1
    job: Plan | None = None  # a migration waiting for postcopy/abort


@dataclass
class SimHost:
    name: str
    profile: HostProfile = field(default_factory=HostProfile)
    domains: dict[str, DomainRecord] = field(default_factory=dict)

    def find(self, name: str) -> DomainRecord:
        rec = self.domains.get(name)
        if rec is None:
            raise refuse(
                ErrorNumber.NO_DOMAIN,
                ErrorDomain.QEMU,
                f"Domain not found: no domain with matching name '{name}'",
            ).exception()
        return rec


def get_host(name: str) -> SimHost:
    """The host called ``name``, created on first use."""
    return HOSTS.setdefault(name, SimHost(name))


def parse_domain_xml(xml: str) -> DomainFacts:
    """The facts of a domain XML the migration rules look at."""
    root = ET.fromstring(xml)
    name = root.findtext("name") or ""
    disks = []
    for d in root.iter("disk"):
        drv = d.find("driver")
        cache = Cache((drv.get("cache") if drv is not None else None) or "writeback")
        target = d.find("target")
        disks.append(
            Disk(
                target.get("dev", "vda") if target is not None else "vda",
                cache,
                d.find("readonly") is not None,
            )
        )
    return DomainFacts(
        name=name,
        active=False,
        paused=False,
        persistent=False,
        disks=tuple(disks),
        hard_limit=root.find("memtune/hard_limit") is not None,
    )
