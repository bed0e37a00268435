"""A libvirt-python-shaped API over simulated hosts.

URIs: ``sim+qemu:///system?host=NAME`` (local form) or ``sim+qemu://NAME/system``
(the form a peer-to-peer migration needs: libvirt requires a server part).
Opening a URI creates the host if needed; :func:`reset` forgets all hosts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from simulator.libvirt.convergence import ClosedFormEngine, ConvergenceEngine, RunOutcome
from simulator.libvirt.driver import HostProfile, Plan, decide
from simulator.libvirt.errors import ErrorDomain, ErrorNumber, Refusal, libvirtError, refuse
from simulator.libvirt.hosts import (
    DOMAIN_IDS,
    HOSTS,
    DomainRecord,
    SimHost,
    get_host,
    host_name,
    parse_domain_xml,
    reset,
)
from simulator.libvirt.request import Api, MigrationCall

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

_engine: ConvergenceEngine = ClosedFormEngine()


def set_engine(engine: ConvergenceEngine) -> None:
    """Plug in another convergence engine (e.g. simulator.model's)."""
    global _engine
    _engine = engine


def open(uri: str | None = None) -> virConnect:
    """libvirt.open(): a connection to a simulated host."""
    name = host_name(uri or "")
    if name is None:
        raise refuse(
            ErrorNumber.NO_SUPPORT, ErrorDomain.NONE, f"no connection driver available for {uri}"
        ).exception()
    return virConnect(get_host(name), uri or "")


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
        facts = parse_domain_xml(xml)
        rec = self.host.domains.get(facts.name)
        if rec is None:
            self.host.domains[facts.name] = DomainRecord(
                replace(facts, persistent=True), facts.name
            )
        else:
            rec.facts = replace(rec.facts, persistent=True, disks=facts.disks)
        return virDomain(self, facts.name)

    def createXML(self, xml: str, flags: int = 0) -> virDomain:
        facts = parse_domain_xml(xml)
        if facts.name in self.host.domains:
            raise refuse(
                ErrorNumber.OPERATION_INVALID,
                ErrorDomain.QEMU,
                f"Requested operation is not valid: domain '{facts.name}' already exists",
            ).exception()
        self.host.domains[facts.name] = DomainRecord(
            replace(facts, active=True), facts.name, next(DOMAIN_IDS)
        )
        return virDomain(self, facts.name)


class virDomain:
    def __init__(self, conn: virConnect, name: str) -> None:
        self._conn, self._name = conn, name

    # --- lifecycle -----------------------------------------------------------------
    @property
    def _rec(self) -> DomainRecord:
        return self._conn.host.find(self._name)

    def _set(self, **changes: Any) -> None:
        self._rec.facts = replace(self._rec.facts, **changes)

    def _not_running(self) -> libvirtError:
        return refuse(
            ErrorNumber.OPERATION_INVALID,
            ErrorDomain.QEMU,
            "Requested operation is not valid: domain is not running",
        ).exception()

    def name(self) -> str:
        return self._name

    def connect(self) -> virConnect:
        return self._conn

    def create(self) -> int:
        if self._rec.facts.active:
            raise refuse(
                ErrorNumber.OPERATION_INVALID,
                ErrorDomain.QEMU,
                "Requested operation is not valid: domain is already running",
            ).exception()
        self._rec.domid = next(DOMAIN_IDS)
        self._set(active=True, paused=False)
        return 0

    def suspend(self) -> int:
        if not self._rec.facts.active:
            raise self._not_running()
        self._set(paused=True)
        return 0

    def resume(self) -> int:
        if not self._rec.facts.active:
            raise self._not_running()
        self._set(paused=False)
        return 0

    def destroy(self) -> int:
        if not self._rec.facts.active:
            raise self._not_running()
        # qemuProcessStop runs the job's cleanup callback
        # (qemuProcessCleanupMigrationJob): a leftover migration job ends with QEMU.
        if self._rec.facts.persistent:
            self._set(active=False, paused=False, migration_job=False)
        else:
            del self._conn.host.domains[self._name]
        return 0

    def undefine(self) -> int:
        rec = self._rec
        if not rec.facts.persistent:
            raise refuse(
                ErrorNumber.OPERATION_INVALID,
                ErrorDomain.QEMU,
                "Requested operation is not valid: cannot undefine transient domain",
            ).exception()
        if rec.facts.active:
            self._set(persistent=False)
        else:
            del self._conn.host.domains[self._name]
        return 0

    def undefineFlags(self, flags: int = 0) -> int:
        return self.undefine()

    def isActive(self) -> int:
        return int(self._rec.facts.active)

    def isPersistent(self) -> int:
        return int(self._rec.facts.persistent)

    def state(self, flags: int = 0) -> list[int]:
        f = self._rec.facts
        st = (
            VIR_DOMAIN_SHUTOFF
            if not f.active
            else (VIR_DOMAIN_PAUSED if f.paused else VIR_DOMAIN_RUNNING)
        )
        return [st, 1 if st == VIR_DOMAIN_RUNNING else 0]

    def setDirtyRate(self, mib_s: float, working_set_mib: float = 8.0) -> None:
        """Simulator-only knob: the guest's dirty rate and working set."""
        self._set(dirty_rate=mib_s, working_set=working_set_mib)

    # --- migration -----------------------------------------------------------------
    # A real migrate call blocks while another thread may call abortJob or
    # migrateStartPostCopy. The simulator is single-threaded, so those calls are
    # *armed* before the migrate call and consumed by the next run that needs them.
    _armed: dict[tuple[str, str], str] = {}  # noqa: RUF012 - per-process registry

    def abortJob(self) -> int:
        """Arm an abort for the next migration of this domain (see class note)."""
        if not self._rec.facts.active:
            raise self._not_running()
        virDomain._armed[(self._conn.host.name, self._name)] = "abort"
        return 0

    def migrateStartPostCopy(self, flags: int = 0) -> int:
        """Arm the switch to post-copy for the next POSTCOPY migration."""
        if not self._rec.facts.active:
            raise self._not_running()
        virDomain._armed[(self._conn.host.name, self._name)] = "postcopy"
        return 0

    def jobStats(self, flags: int = 0) -> dict[str, Any]:
        rec = self._rec
        if rec.job is None:
            return {"type": 0}  # VIR_DOMAIN_JOB_NONE
        return {"type": 3, "operation": 3, "status": rec.job.run.value}  # COMPLETED, MIGRATION_OUT

    def _migrate(
        self,
        api: Api,
        dhost: SimHost | None,
        flags: int,
        params: Mapping[str, Any],
        dconnuri: str | None,
    ) -> virDomain:
        rec = self._rec
        dest_name = host_name(dconnuri) if dconnuri else (dhost.name if dhost else None)
        reachable = dest_name is not None and (dhost is not None or dest_name in HOSTS)
        call = MigrationCall(api, int(flags), dict(params), dconnuri, dest_reachable=reachable)
        target = dhost or (HOSTS.get(dest_name) if dest_name else None)
        profile = target.profile if target else HostProfile()
        outcome = decide(call, rec.facts, profile, _engine)
        if isinstance(outcome, Refusal):
            if outcome.leaves_job:
                self._set(migration_job=True)
            raise outcome.exception()
        assert target is not None
        armed = virDomain._armed.pop((self._conn.host.name, self._name), None)
        run = outcome.run
        if run is RunOutcome.NEEDS_POSTCOPY and armed == "postcopy":
            run = RunOutcome.COMPLETED
        if armed == "abort" or run in (RunOutcome.NEVER_CONVERGES, RunOutcome.NEEDS_POSTCOPY):
            raise refuse(
                ErrorNumber.OPERATION_ABORTED,
                ErrorDomain.QEMU,
                "operation aborted: migration out job: canceled by client",
            ).exception()
        if outcome.dest_name in target.domains and target.domains[outcome.dest_name].facts.active:
            raise refuse(
                ErrorNumber.OPERATION_INVALID,
                ErrorDomain.QEMU,
                f"Requested operation is not valid: domain '{outcome.dest_name}' is already active",
            ).exception()
        self._apply(target, outcome, run)
        return virDomain(virConnect(target, dconnuri or ""), outcome.dest_name)

    def _apply(self, target: SimHost, plan: Plan, run: RunOutcome) -> None:
        src = self._rec
        facts = src.facts
        if plan.offline:
            target.domains[plan.dest_name] = DomainRecord(
                replace(facts, name=plan.dest_name, active=False, paused=False, persistent=True),
                src.uuid,
            )
        else:
            target.domains[plan.dest_name] = DomainRecord(
                replace(
                    facts,
                    name=plan.dest_name,
                    active=True,
                    paused=plan.dest_paused,
                    persistent=plan.dest_persistent,
                ),
                src.uuid,
                next(DOMAIN_IDS),
                replace(plan, run=run),
            )
            # qemuMigrationSrcConfirmPhase: the source QEMU is stopped; a transient
            # domain disappears, a persistent one stays defined and shut off.
            if facts.persistent:
                self._set(active=False, paused=False)
            else:
                del self._conn.host.domains[self._name]
        if plan.undefine_source and self._name in self._conn.host.domains:
            rec = self._conn.host.domains[self._name]
            if rec.facts.active:
                self._set(persistent=False)
            else:
                del self._conn.host.domains[self._name]

    @staticmethod
    def _fixed(
        dname: str | None,
        uri: str | None,
        bandwidth: int,
        dxml: str | None = None,
    ) -> dict[str, Any]:
        """virDomainMigrateUnmanaged: fixed arguments -> typed parameters."""
        p: dict[str, Any] = {}
        if uri:
            p["migrate_uri"] = uri
        if dname:
            p["destination_name"] = dname
        if dxml:
            p["destination_xml"] = dxml
        if bandwidth:
            p["bandwidth"] = bandwidth
        return p

    def migrate(
        self,
        dconn: virConnect,
        flags: int = 0,
        dname: str | None = None,
        uri: str | None = None,
        bandwidth: int = 0,
    ) -> virDomain:
        p2p_uri = (uri or dconn.getURI()) if int(flags) & 2 else None
        return self._migrate(
            Api.MIGRATE,
            dconn.host,
            flags,
            self._fixed(dname, None if p2p_uri else uri, bandwidth),
            p2p_uri,
        )

    def migrate2(
        self,
        dconn: virConnect,
        dxml: str | None = None,
        flags: int = 0,
        dname: str | None = None,
        uri: str | None = None,
        bandwidth: int = 0,
    ) -> virDomain:
        p2p_uri = dconn.getURI() if int(flags) & 2 else None
        return self._migrate(
            Api.MIGRATE2, dconn.host, flags, self._fixed(dname, uri, bandwidth, dxml), p2p_uri
        )

    def migrate3(self, dconn: virConnect, params: Mapping[str, Any], flags: int = 0) -> virDomain:
        return self._migrate(Api.MIGRATE3, dconn.host, flags, params, None)

    def migrateToURI(
        self, duri: str, flags: int = 0, dname: str | None = None, bandwidth: int = 0
    ) -> int:
        p2p = bool(int(flags) & 2)
        self._migrate(
            Api.MIGRATE_TO_URI,
            None,
            flags,
            self._fixed(dname, None if p2p else duri, bandwidth),
            duri if p2p else None,
        )
        return 0

    def migrateToURI2(
        self,
        dconnuri: str | None = None,
        miguri: str | None = None,
        dxml: str | None = None,
        flags: int = 0,
        dname: str | None = None,
        bandwidth: int = 0,
    ) -> int:
        p2p = bool(int(flags) & 2)
        self._migrate(
            Api.MIGRATE_TO_URI2,
            None,
            flags,
            self._fixed(dname, miguri, bandwidth, dxml),
            dconnuri if p2p else None,
        )
        return 0

    def migrateToURI3(self, dconnuri: str, params: Mapping[str, Any], flags: int = 0) -> int:
        p2p = bool(int(flags) & 2)
        self._migrate(Api.MIGRATE_TO_URI3, None, flags, params, dconnuri if p2p else None)
        return 0
