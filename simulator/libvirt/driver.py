"""The simulated QEMU driver's migration pipeline: refusal or outcome plan.

``decide`` runs the checks of :mod:`simulator.libvirt.rules` in the order each API
reaches them (client, source Begin/Perform, destination Prepare) and returns a
:class:`Refusal` or a :class:`Plan` describing what a successful call does.
Order verified against real libvirt 9.0 by harness.libvirt.differential.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from simulator.libvirt import rules
from simulator.libvirt.convergence import (
    DEFAULT_DOWNTIME_S,
    UNLIMITED_MIB_S,
    ConvergenceEngine,
    RunOutcome,
)
from simulator.libvirt.errors import ErrorDomain, ErrorNumber, Refusal, refuse
from simulator.libvirt.flags import MigrateFlag as F
from simulator.libvirt.request import Api, DomainFacts, HostProfile, MigrationCall

if TYPE_CHECKING:
    from simulator.libvirt.hosts import DomainRecord, SimHost


@dataclass(frozen=True)
class Plan:
    """What an accepted migration does to both hosts."""

    offline: bool
    dest_name: str
    dest_persistent: bool
    dest_paused: bool
    undefine_source: bool
    run: RunOutcome
    bandwidth: float = UNLIMITED_MIB_S  # MiB/s the memory transfer runs at


def _prepare(call: MigrationCall, profile: HostProfile) -> Refusal | None:
    """Destination Prepare: qemuMigrationDstPrepareActive -> qemuMigrationParamsEnableTLS."""
    if call.flags & F.TLS and not call.flags & F.OFFLINE and not profile.tls_configured:
        return refuse(
            ErrorNumber.INTERNAL_ERROR,
            ErrorDomain.QEMU,
            "internal error: unable to execute QEMU command 'object-add': Unable to access "
            "credentials /etc/pki/qemu/ca-cert.pem: No such file or directory",
        )
    return None


def _first(*checks: Callable[[], Refusal | None]) -> Refusal | None:
    for check in checks:
        refusal = check()
        if refusal:
            return refusal
    return None


def _source_checks(call: MigrationCall, dom: DomainFacts) -> Refusal | None:
    """Source driver up to the Begin phase, in each path's order.

    Peer-to-peer (virDomainMigrateUnmanagedParams -> qemuDomainMigratePerform3Params
    -> qemuMigrationSrcPerformJob): virCheckFlags, virTypedParamsValidate,
    qemuMigrationParamsFromFlags(SOURCE) -- all before the domain is even looked up --
    then the POSTCOPY_RESUME branch, qemuMigrationJobStart, virDomainObjCheckActive.

    Client-driven v3 (virDomainMigrateVersion3Full -> qemuDomainMigrateBegin3[Params]
    -> qemuMigrationSrcBegin): virCheckFlags, virTypedParamsValidate, the
    POSTCOPY_RESUME branch, qemuMigrationJobStart (CHANGE_PROTECTION), then
    virDomainObjCheckActive. Typed parameters are not parsed here but in Prepare
    (destination) and Perform (source).
    """
    flags = call.flags
    if flags & F.PEER2PEER:
        return _first(
            lambda: rules.check_driver_entry(call, "qemuDomainMigratePerform3Params"),
            lambda: rules.check_params_from_flags(call, rules.Party.SOURCE),
            lambda: rules.check_resume(call, dom),
            lambda: rules.check_job(dom),
            lambda: rules.check_active(dom, flags),
        )
    fn = "qemuDomainMigrateBegin3Params" if call.api is Api.MIGRATE3 else "qemuDomainMigrateBegin3"
    return _first(
        lambda: rules.check_driver_entry(call, fn),
        lambda: rules.check_resume(call, dom),
        lambda: rules.check_job(dom),
        lambda: rules.check_active(dom, flags),
    )


def _after_begin(
    call: MigrationCall, dom: DomainFacts, flags: int, profile: HostProfile
) -> Refusal | None:
    """Destination Prepare, then the source's Perform, for a call past Begin.

    Client-driven v3 only: qemuDomainMigratePrepare3Params parses the parameters the
    destination reads (qemuMigrationParamsFromFlags(DESTINATION)) before anything
    else. Both paths: qemuMigrationDstPrepareAny repeats the post-copy checks on the
    destination flags, then qemuMigrationDstPrepareActive sets up TLS. Then the
    source's Perform: qemuDomainMigratePerform3Params parses the source's parameters
    before it locks the domain. When that parse fails, virDomainMigrateVersion3Full skips Confirm
    ("Perform failed so we don't need to call confirm"), so the MIGRATION_OUT job
    Begin started under CHANGE_PROTECTION is never ended: libvirt 9.0 refuses every
    later migration of the domain with "another migration job is already running"
    until the domain is destroyed (measured; ``leaves_job``).
    """
    v3 = not flags & F.PEER2PEER
    refusal = _first(
        lambda: rules.check_params_from_flags(call, rules.Party.DESTINATION) if v3 else None,
        lambda: rules.check_prepare_any(flags),
        lambda: _prepare(call, profile),
    )
    if refusal:
        return refusal
    if v3:
        refusal = rules.check_params_from_flags(call, rules.Party.SOURCE)
        if refusal:
            return replace(refusal, leaves_job=True)
    refusal = rules.check_perform_run(call, dom, flags)
    zerocopy = bool(flags & F.ZEROCOPY) and not flags & F.OFFLINE
    if refusal is None and zerocopy and not profile.memlock_permitted:
        # qemuMigrationSrcRun -> qemuDomainSetMaxMemLock (src/qemu/qemu_domain.c).
        refusal = refuse(
            ErrorNumber.SYSTEM_ERROR,
            ErrorDomain.NONE,
            "cannot limit locked memory of the QEMU process: Operation not permitted",
        )
    return refusal


def decide(
    call: MigrationCall,
    rec: DomainRecord,
    src: SimHost,
    target: SimHost | None,
    engine: ConvergenceEngine,
) -> Refusal | Plan:
    """Refusal (first failing check) or the plan of a successful migration."""
    dom = rec.facts
    profile = target.profile if target is not None else HostProfile()
    flags = call.flags
    p2p = bool(flags & F.PEER2PEER)
    refusal = rules.check_client(call) or _source_checks(call, dom)
    if refusal:
        return refusal
    if p2p and not call.dest_reachable:
        # qemuMigrationSrcPerformPeer2Peer: virConnectOpenAuth to the destination.
        return refuse(
            ErrorNumber.SYSTEM_ERROR,
            ErrorDomain.RPC,
            f"Failed to connect socket to '{call.dconnuri}': Connection refused",
        )
    refusal = rules.check_begin_phase(dom, flags)
    if refusal:
        return refusal
    if dom.paused:
        # After Begin, virDomainMigrateVersion3Full (and, p2p,
        # qemuMigrationSrcPerformPeer2Peer3) add VIR_MIGRATE_PAUSED for a paused
        # domain, OFFLINE or not: Begin's checks never see it, the destination's
        # Prepare does (seed-13 run: OFFLINE|LIVE|POSTCOPY on a paused domain).
        flags |= F.PAUSED
    refusal = _after_begin(call, dom, flags, profile)
    if refusal:
        return refusal
    offline = bool(flags & F.OFFLINE)
    bandwidth = float(call.params.get("bandwidth", 0) or 0) or float(min(rec.max_speed, UNLIMITED_MIB_S))  # type: ignore[arg-type]
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
        bandwidth=bandwidth,
    )
