"""A libvirt-python-shaped API over simulated hosts: module functions and connections.

URIs: ``sim+qemu:///system?host=NAME`` (local form) or ``sim+qemu://NAME/system``
(the form a peer-to-peer migration needs: libvirt requires a server part).
Opening a URI creates the host if needed; :func:`reset` forgets all hosts.
Domains are :class:`simulator.libvirt.domain.virDomain`.
"""

from __future__ import annotations

from dataclasses import replace

from simulator.libvirt import migration
from simulator.libvirt.convergence import ConvergenceEngine
from simulator.libvirt.domain import virDomain
from simulator.libvirt.errors import ErrorDomain, ErrorNumber, libvirtError, refuse
from simulator.libvirt.hosts import (
    DOMAIN_IDS,
    DomainRecord,
    SimHost,
    get_host,
    host_name,
    parse_domain_xml,
    reset,
)
from simulator.libvirt.states import Reason

__all__ = [
    "VIR_DOMAIN_NOSTATE",
    "VIR_DOMAIN_PAUSED",
    "VIR_DOMAIN_RUNNING",
    "VIR_DOMAIN_SHUTOFF",
    "open",
    "reset",
    "set_engine",
    "virConnect",
    "virDomain",
]

# virDomainState
VIR_DOMAIN_NOSTATE, VIR_DOMAIN_RUNNING, VIR_DOMAIN_PAUSED, VIR_DOMAIN_SHUTOFF = 0, 1, 3, 5


def set_engine(engine: ConvergenceEngine) -> None:
    """Plug in another convergence engine (the default is simulator.model's pre-copy)."""
    migration.ENGINE[0] = engine


def open(uri: str | None = None) -> virConnect:
    """libvirt.open(): a connection to a simulated host."""
    name = host_name(uri or "")
    if name is None:
        raise refuse(
            ErrorNumber.NO_SUPPORT, ErrorDomain.NONE, f"no connection driver available for {uri}"
        ).exception()
    return virConnect(get_host(name), uri or "")


def _add(host: SimHost, xml: str, live: bool) -> DomainRecord:
    """virDomainObjListAddLocked (src/conf/virdomainobjlist.c): UUID first, then name."""
    facts, uuid = parse_domain_xml(xml)
    if not facts.name:
        raise libvirtError("missing name information")
    same = host.by_uuid(uuid)
    if same is not None:
        if same.facts.name != facts.name:
            raise refuse(
                ErrorNumber.OPERATION_FAILED,
                ErrorDomain.DOMAIN,
                f"operation failed: domain '{same.facts.name}' is already defined with uuid {uuid}",
            ).exception()
        if live and same.facts.active:
            raise refuse(
                ErrorNumber.OPERATION_INVALID,
                ErrorDomain.DOMAIN,
                f"Requested operation is not valid: domain '{facts.name}' is already active",
            ).exception()
        return same
    other = host.domains.get(facts.name)
    if other is not None:
        raise refuse(
            ErrorNumber.OPERATION_FAILED,
            ErrorDomain.DOMAIN,
            f"operation failed: domain '{facts.name}' already exists with uuid {other.uuid}",
        ).exception()
    rec = host.domains[facts.name] = DomainRecord(facts, uuid)
    return rec


class virConnect:
    def __init__(self, host: SimHost, uri: str) -> None:
        self.host, self.uri = host, uri

    def getURI(self) -> str:
        return self.uri

    def getHostname(self) -> str:
        return self.host.name

    def close(self) -> int:
        return 0

    def lookupByName(self, name: str) -> virDomain:
        self.host.find(name)
        return virDomain(self, name)

    def listAllDomains(self, flags: int = 0) -> list[virDomain]:
        return [virDomain(self, n) for n in self.host.domains]

    def defineXML(self, xml: str) -> virDomain:
        rec = _add(self.host, xml, live=False)
        facts, _ = parse_domain_xml(xml)
        rec.facts = replace(rec.facts, persistent=True, disks=facts.disks)
        return virDomain(self, rec.facts.name)

    def createXML(self, xml: str, flags: int = 0) -> virDomain:
        rec = _add(self.host, xml, live=True)
        rec.facts = replace(rec.facts, active=True, paused=False)
        rec.domid, rec.reason = next(DOMAIN_IDS), Reason.RUNNING_BOOTED
        return virDomain(self, rec.facts.name)
