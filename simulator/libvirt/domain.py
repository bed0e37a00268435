"""``virDomain`` of the model: lifecycle, state and reason, live migration operations,
and the six migration entry points of libvirt-python (argument handling of
src/libvirt-domain.c; the pipeline itself is :mod:`simulator.libvirt.migration`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from simulator.libvirt import migration
from simulator.libvirt.errors import ErrorDomain, ErrorNumber, Refusal, libvirtError, refuse
from simulator.libvirt.hosts import DOMAIN_IDS, MIG_BANDWIDTH_MAX, DomainRecord
from simulator.libvirt.request import Api
from simulator.libvirt.states import Reason, State

if TYPE_CHECKING:
    from simulator.libvirt.api import virConnect

_E, _D = ErrorNumber, ErrorDomain


def _invalid(message: str, domain: ErrorDomain = _D.QEMU) -> libvirtError:
    return refuse(
        _E.OPERATION_INVALID, domain, f"Requested operation is not valid: {message}"
    ).exception()


def _not_running() -> libvirtError:
    # virDomainObjCheckActive (src/conf/domain_conf.c): VIR_FROM_DOMAIN.
    return _invalid("domain is not running", _D.DOMAIN)


class virDomain:
    def __init__(self, conn: virConnect, name: str) -> None:
        self._conn, self._name = conn, name
        rec = conn.host.domains.get(name)
        self._uuid = rec.uuid if rec is not None else ""

    # --- lifecycle -----------------------------------------------------------------
    @property
    def _rec(self) -> DomainRecord:
        """The domain this handle names: libvirt resolves a handle by its UUID
        (qemuDomainObjFromDomain), so a domain gone since is reported by UUID."""
        rec = self._conn.host.domains.get(self._name)
        if rec is None or (self._uuid and rec.uuid != self._uuid):
            raise refuse(
                _E.NO_DOMAIN,
                _D.QEMU,
                f"Domain not found: no domain with matching uuid '{self._uuid}' ({self._name})",
            ).exception()
        return rec

    def _set(self, reason: int | None = None, **changes: Any) -> None:
        rec = self._rec
        rec.facts = replace(rec.facts, **changes)
        if reason is not None:
            rec.reason = reason

    def name(self) -> str:
        return self._name

    def UUIDString(self) -> str:
        return self._rec.uuid

    def connect(self) -> virConnect:
        return self._conn

    def create(self) -> int:
        if self._rec.facts.active:
            raise _invalid("domain is already running")
        self._rec.domid = next(DOMAIN_IDS)
        self._set(Reason.RUNNING_BOOTED, active=True, paused=False)
        return 0

    def suspend(self) -> int:
        """qemuDomainSuspend: pausing a paused domain changes nothing."""
        if not self._rec.facts.active:
            raise _not_running()
        if not self._rec.facts.paused:
            self._set(Reason.PAUSED_USER, paused=True)
        return 0

    def resume(self) -> int:
        """qemuDomainResume: a running domain is refused."""
        if not self._rec.facts.active:
            raise _not_running()
        if not self._rec.facts.paused:
            raise _invalid("domain is already running")
        self._set(Reason.RUNNING_UNPAUSED, paused=False)
        return 0

    def destroy(self) -> int:
        rec = self._rec
        if not rec.facts.active:
            raise _not_running()
        if rec.job is not None:
            rec.job.decide("destroy")
        # qemuProcessStop runs the job's cleanup callback
        # (qemuProcessCleanupMigrationJob): a leftover migration job ends with QEMU.
        if rec.facts.persistent:
            self._set(Reason.SHUTOFF_DESTROYED, active=False, paused=False, migration_job=False)
        else:
            del self._conn.host.domains[self._name]
        return 0

    def undefine(self) -> int:
        rec = self._rec
        if not rec.facts.persistent:
            raise _invalid("cannot undefine transient domain")
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
        rec = self._rec
        return [int(rec.state), int(rec.reason)]

    def setDirtyRate(self, mib_s: float, working_set_mib: float = 8.0) -> None:
        """Simulator-only knob: the guest's dirty rate and working set."""
        self._set(dirty_rate=mib_s, working_set=working_set_mib)

    # --- live migration operations (src/qemu/qemu_driver.c) ------------------------
    def jobStats(self, flags: int = 0) -> dict[str, Any]:
        job = self._rec.job
        if job is None:
            return {"type": 0}  # VIR_DOMAIN_JOB_NONE
        # VIR_DOMAIN_JOB_UNBOUNDED, VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT
        return {"type": 2, "operation": 3, "memory_total": 32 << 20}

    def abortJob(self) -> int:
        """qemuDomainAbortJobFlags: only an outgoing migration job can be aborted here."""
        rec = self._rec
        if not rec.facts.active:
            raise _not_running()
        if rec.job is None and not rec.facts.migration_job:
            raise _invalid("no job is active on the domain")
        if rec.job is not None:
            rec.job.decide("abort")
        # A leaked MIGRATION_OUT job (see driver.decide) is "aborted" too: QEMU has no
        # migration to cancel, qemuDomainAbortJobMigration succeeds, the job stays.
        return 0

    def migrateStartPostCopy(self, flags: int = 0) -> int:
        """qemuDomainMigrateStartPostCopy."""
        rec = self._rec
        if not rec.facts.active:
            raise _not_running()
        if rec.job is None and not rec.facts.migration_job:
            raise _invalid("post-copy can only be started while outgoing migration is in progress")
        job_flags = rec.job.flags if rec.job is not None else rec.leaked_flags
        if not job_flags & (1 << 15):
            raise _invalid(
                "switching to post-copy requires migration to be started with "
                "VIR_MIGRATE_POSTCOPY flag"
            )
        if rec.job is not None:
            rec.job.decide("postcopy")
        return 0

    def migrateSetMaxDowntime(self, downtime: int, flags: int = 0) -> int:
        """qemuDomainMigrateSetMaxDowntime: QEMU's downtime-limit, checked by QEMU."""
        if not self._rec.facts.active:
            raise _not_running()
        if downtime > 2_000_000:
            # QEMU 7.2 migrate_params_check (migration/migration.c).
            raise refuse(
                _E.INTERNAL_ERROR,
                _D.QEMU,
                "internal error: unable to execute QEMU command 'migrate-set-parameters': "
                "Parameter 'downtime_limit' expects an integer in the range of 0 to "
                "(2000 * 1000) ms",
            ).exception()
        return 0

    def migrateSetMaxSpeed(self, bandwidth: int, flags: int = 0) -> int:
        """qemuDomainMigrateSetMaxSpeed: stored for an inactive domain, applied live."""
        rec = self._rec
        if bandwidth > MIG_BANDWIDTH_MAX:
            raise refuse(
                _E.OVERFLOW,
                _D.QEMU,
                f"numerical overflow: bandwidth must be less than {MIG_BANDWIDTH_MAX + 1}",
            ).exception()
        rec.max_speed = bandwidth
        if rec.job is not None:
            migration.speed_changed(rec, bandwidth)
        return 0

    # --- migration entry points (src/libvirt-domain.c) -----------------------------
    def _run(
        self,
        api: Api,
        dconn: virConnect | None,
        flags: int,
        params: Mapping[str, Any],
        dconnuri: str | None,
        dxml: str | None = None,
    ) -> virDomain:
        outcome = migration.migrate(
            self._conn.host,
            self._name,
            api,
            dconn.host if dconn else None,
            int(flags),
            params,
            dconnuri,
        )
        if isinstance(outcome, Refusal):
            raise outcome.exception()
        host, name = outcome
        conn = dconn or type(self._conn)(host, dconnuri or "")
        return virDomain(conn, name)

    @staticmethod
    def _fixed(
        dname: str | None, uri: str | None, bandwidth: int, dxml: str | None = None
    ) -> dict[str, Any]:
        """virDomainMigrateUnmanaged: fixed arguments -> typed parameters."""
        p: dict[str, Any] = {}
        if uri:
            p["migrate_uri"] = uri
        if dname is not None:
            p["destination_name"] = dname
        if dxml:
            p["destination_xml"] = dxml
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
        # virDomainMigrate: with PEER2PEER, ``uri`` (or dconn's URI) names the daemon.
        if int(flags) & 2:
            return self._run(
                Api.MIGRATE,
                dconn,
                flags,
                self._fixed(dname, None, bandwidth),
                uri or dconn.getURI(),
            )
        return self._run(Api.MIGRATE, dconn, flags, self._fixed(dname, uri, bandwidth), None)

    def migrate2(
        self,
        dconn: virConnect,
        dxml: str | None = None,
        flags: int = 0,
        dname: str | None = None,
        uri: str | None = None,
        bandwidth: int = 0,
    ) -> virDomain:
        p2p = dconn.getURI() if int(flags) & 2 else None
        return self._run(Api.MIGRATE2, dconn, flags, self._fixed(dname, uri, bandwidth, dxml), p2p)

    def migrate3(self, dconn: virConnect, params: Mapping[str, Any], flags: int = 0) -> virDomain:
        return self._run(Api.MIGRATE3, dconn, flags, params, None)

    def migrateToURI(
        self, duri: str, flags: int = 0, dname: str | None = None, bandwidth: int = 0
    ) -> int:
        p2p = bool(int(flags) & 2)
        params = self._fixed(dname, None if p2p else duri, bandwidth)
        self._run(Api.MIGRATE_TO_URI, None, flags, params, duri if p2p else None)
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
        params = self._fixed(dname, miguri, bandwidth, dxml)
        self._run(Api.MIGRATE_TO_URI2, None, flags, params, dconnuri if p2p else None)
        return 0

    def migrateToURI3(self, dconnuri: str, params: Mapping[str, Any], flags: int = 0) -> int:
        p2p = bool(int(flags) & 2)
        self._run(Api.MIGRATE_TO_URI3, None, flags, params, dconnuri if p2p else None)
        return 0


__all__ = ["State", "virDomain"]
