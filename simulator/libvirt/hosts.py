"""The simulated hosts and the domains each one knows (state behind simulator.libvirt.api)."""

from __future__ import annotations

import itertools
import threading
import uuid as uuidlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from simulator.libvirt.errors import ErrorDomain, ErrorNumber, refuse
from simulator.libvirt.request import Cache, Disk, DomainFacts, HostProfile
from simulator.libvirt.states import Reason, State

#: Every simulated host by name; :func:`reset` forgets them.
HOSTS: dict[str, SimHost] = {}
#: Domain ids, unique across hosts (libvirt numbers running domains per daemon).
DOMAIN_IDS = itertools.count(1)
#: QEMU_DOMAIN_MIG_BANDWIDTH_MAX (src/qemu/qemu_domain.h): INT64_MAX / 1 MiB.
MIG_BANDWIDTH_MAX = ((1 << 63) - 1) >> 20
_METADATA_NS = "https://hvlab.invalid/libvirt-fz"


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
class LiveJob:
    """An outgoing migration job a user can act on while the migrate call blocks."""

    flags: int
    seconds: float  # how long the memory transfer takes at the current speed
    decided: str | None = None  # "abort" | "postcopy" | "speed" | "release" | "destroy"
    finishing: bool = False  # past its transfer, in the Finish/Confirm phase
    cond: threading.Condition = field(default_factory=threading.Condition)

    def decide(self, how: str) -> None:
        """The first decision ends the job; later ones (a release after an abort) do not
        change it."""
        with self.cond:
            if self.decided is None:
                self.decided = how
            self.cond.notify_all()


@dataclass
class DomainRecord:
    """A domain as one host knows it (its state reason, migration settings, job)."""

    facts: DomainFacts
    uuid: str
    domid: int = -1
    reason: int = Reason.NONE
    job: LiveJob | None = None
    max_speed: int = MIG_BANDWIDTH_MAX  # priv->migMaxBandwidth, MiB/s
    leaked_flags: int = 0  # flags of a MIGRATION_OUT job a failed Perform left behind
    job_canceled_in_transfer: bool = False  # the last job was aborted mid-stream

    @property
    def state(self) -> State:
        f = self.facts
        if not f.active:
            return State.SHUTOFF
        return State.PAUSED if f.paused else State.RUNNING


@dataclass
class SimHost:
    name: str
    profile: HostProfile = field(default_factory=HostProfile)
    domains: dict[str, DomainRecord] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)
    hold_jobs: bool = False  # migration jobs wait in Finish/Confirm until released

    def find(self, name: str) -> DomainRecord:
        rec = self.domains.get(name)
        if rec is None:
            raise refuse(
                ErrorNumber.NO_DOMAIN,
                ErrorDomain.QEMU,
                f"Domain not found: no domain with matching name '{name}'",
            ).exception()
        return rec

    def by_uuid(self, uuid: str) -> DomainRecord | None:
        return next((r for r in self.domains.values() if r.uuid == uuid), None)


def get_host(name: str) -> SimHost:
    """The host called ``name``, created on first use (with a host UUID of its own)."""
    host = HOSTS.get(name)
    if host is None:
        host = HOSTS[name] = SimHost(name, HostProfile(host_uuid=str(uuidlib.uuid4())))
    return host


def parse_domain_xml(xml: str) -> tuple[DomainFacts, str]:
    """The facts of a domain XML the migration rules look at, and its UUID."""
    root = ET.fromstring(xml)
    name = root.findtext("name") or ""
    disks = []
    for d in root.iter("disk"):
        drv = d.find("driver")
        cache = Cache((drv.get("cache") if drv is not None else None) or "writeback")
        target = d.find("target")
        source = d.find("source")
        disks.append(
            Disk(
                target.get("dev", "vda") if target is not None else "vda",
                cache,
                d.find("readonly") is not None,
                source.get("file", "") if source is not None else "",
            )
        )
    guest = root.find(f"metadata/{{{_METADATA_NS}}}guest")
    resident = float(guest.get("resident_mib", "0")) if guest is not None else 0.0
    facts = DomainFacts(
        name=name,
        active=False,
        paused=False,
        persistent=False,
        disks=tuple(disks),
        hard_limit=root.find("memtune/hard_limit") is not None,
        resident_mib=resident,
    )
    return facts, (root.findtext("uuid") or str(uuidlib.uuid4()))
