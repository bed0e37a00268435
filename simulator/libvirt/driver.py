"""The simulated QEMU driver's migration pipeline: refusal or outcome plan.

``decide`` runs the checks of :mod:`simulator.libvirt.rules` in the order each API
reaches them (client, source Begin/Perform, destination Prepare) and returns a
:class:`Refusal` or a :class:`Plan` describing what a successful call does.
Order verified against real libvirt 9.0 by harness.libvirt.differential.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.libvirt import rules
from simulator.libvirt.convergence import (
    DEFAULT_DOWNTIME_S,
    UNLIMITED_MIB_S,
    ConvergenceEngine,
    RunOutcome,
)
from simulator.libvirt.errors import ErrorDomain, ErrorNumber, Refusal, refuse
from simulator.libvirt.flags import MigrateFlag as F
from simulator.libvirt.request import Api, DomainFacts, MigrationCall


@dataclass(frozen=True)
class HostProfile:
    """Environment facts of a destination that decide Prepare-phase errors."""

    tls_configured: bool = False
    # Whether libvirtd may raise QEMU's RLIMIT_MEMLOCK (ZEROCOPY needs it:
    # qemuMigrationSrcRun -> qemuDomainSetMaxMemLock). Not permitted in this lab.
    memlock_permitted: bool = False


@dataclass(frozen=True)
class Plan:
    """What an accepted migration does to both hosts."""

    offline: bool
    dest_name: str
    dest_persistent: bool
    dest_paused: bool
    undefine_source: bool
    run: RunOutcome


def _early_driver(call: MigrationCall, dom: DomainFacts) -> Refusal | None:
    """Checks real 9.0 makes before touching the domain or the destination."""
    flags = call.flags
    if flags & F.POSTCOPY_RESUME and not flags & F.POSTCOPY:
        # qemuMigrationAnyCanResume (qemu_migration.c)
        return refuse(
            ErrorNumber.ARGUMENT_UNSUPPORTED,
            ErrorDomain.QEMU,
            "argument unsupported: resuming failed post-copy migration requires post-copy "
            "to be enabled",
        )
    if flags & F.POSTCOPY_RESUME:
        # qemuMigrationAnyCanResume -> qemuMigrationJobIsActive: no failed job here.
        return refuse(
            ErrorNumber.OPERATION_INVALID,
            ErrorDomain.QEMU,
            f"Requested operation is not valid: domain '{dom.name}' is not being migrated",
        )
    return None


def _prepare(call: MigrationCall, profile: HostProfile) -> Refusal | None:
    """Destination Prepare (qemuMigrationDstPrepareAny + qemuMigrationParamsEnableTLS)."""
    if call.flags & F.TLS and not call.flags & F.OFFLINE and not profile.tls_configured:
        return refuse(
            ErrorNumber.INTERNAL_ERROR,
            ErrorDomain.QEMU,
            "internal error: unable to execute QEMU command 'object-add': Unable to access "
            "credentials /etc/pki/qemu/ca-cert.pem: No such file or directory",
        )
    return None


def decide(
    call: MigrationCall,
    dom: DomainFacts,
    profile: HostProfile,
    engine: ConvergenceEngine,
) -> Refusal | Plan:
    """Refusal (first failing check) or the plan of a successful migration."""
    flags = call.flags
    refusal = rules.check_client(call)
    if refusal:
        return refusal
    p2p = bool(flags & F.PEER2PEER)
    if call.api.managed and not flags & F.OFFLINE and not dom.active:
        # Measured on 9.0: migrate/migrate2/migrate3 report this from the client
        # (VIR_FROM_DOMAIN) even with PEER2PEER.
        return refuse(
            ErrorNumber.OPERATION_INVALID,
            ErrorDomain.DOMAIN,
            "Requested operation is not valid: domain is not running",
        )
    if dom.paused and not flags & F.OFFLINE:
        # A paused source stays paused: libvirt adds VIR_MIGRATE_PAUSED.
        flags |= F.PAUSED
    if p2p:
        # virDomainMigrateUnmanagedParams -> qemuDomainMigratePerform3Params ->
        # qemuMigrationSrcPerformJob -> qemuMigrationSrcPerformPeer2Peer.
        steps = [
            rules.check_driver_entry(call, "qemuDomainMigratePerform3Params"),
            _early_driver(call, dom),
            rules.check_params_from_flags(call),
            rules.check_active(dom, flags),
        ]
    else:
        fn = (
            "qemuDomainMigrateBegin3Params"
            if call.api is Api.MIGRATE3
            else "qemuDomainMigrateBegin3"
        )
        steps = [
            rules.check_driver_entry(call, fn),
            _early_driver(call, dom),
            rules.check_active(dom, flags),
        ]
    for refusal in steps:
        if refusal:
            return refusal
    if p2p and not call.dest_reachable:
        return refuse(
            ErrorNumber.SYSTEM_ERROR,
            ErrorDomain.RPC,
            f"Failed to connect socket to '{call.dconnuri}': Connection refused",
        )
    refusal = rules.check_begin_phase(dom, flags)
    if refusal is None and not p2p:
        refusal = rules.check_params_from_flags(call)
    if refusal is None:
        refusal = _prepare(call, profile)
    zerocopy = bool(flags & F.ZEROCOPY) and not flags & F.OFFLINE
    if refusal is None and zerocopy and not profile.memlock_permitted:
        refusal = refuse(
            ErrorNumber.SYSTEM_ERROR,
            ErrorDomain.NONE,
            "cannot limit locked memory of the QEMU process: Operation not permitted",
        )
    if refusal:
        return refusal
    offline = bool(flags & F.OFFLINE)
    bandwidth = float(call.params.get("bandwidth", 0) or 0) or UNLIMITED_MIB_S  # type: ignore[arg-type]
    run = RunOutcome.COMPLETED
    if not offline and flags & F.LIVE and dom.active and not dom.paused:
        run = engine.converges(
            dom.dirty_rate,
            dom.working_set,
            bandwidth,
            DEFAULT_DOWNTIME_S,
            bool(flags & F.AUTO_CONVERGE),
            bool(flags & F.POSTCOPY),
        )
    name = str(call.params.get("destination_name") or dom.name)
    return Plan(
        offline=offline,
        dest_name=name,
        dest_persistent=bool(flags & F.PERSIST_DEST),
        # virDomainMigrateVersion3Full adds PAUSED for a paused source domain.
        dest_paused=bool(flags & F.PAUSED) or dom.paused,
        # An offline migration of a running domain leaves the source defined.
        undefine_source=bool(flags & F.UNDEFINE_SOURCE) and not (offline and dom.active),
        run=run,
    )
