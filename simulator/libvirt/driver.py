"""The simulated QEMU driver's migration pipeline: refusal or outcome plan.

``decide`` runs the checks of :mod:`simulator.libvirt.rules` (client, source entry),
:mod:`simulator.libvirt.rules_dest` (destination Prepare) and
:mod:`simulator.libvirt.rules_perform` (source Perform) in the order each path
reaches them, and returns a :class:`Refusal` or a :class:`Plan` describing what a
successful call does. Order verified against real libvirt 9.0 by
harness.libvirt.differential.

Peer-to-peer (virDomainMigrateUnmanagedParams -> qemuDomainMigratePerform3Params ->
qemuMigrationSrcPerformJob -> qemuMigrationSrcPerformPeer2Peer[3]): the source's
parameters, job, activity and safety checks, the tunnelled-parameter checks, the
connection to the destination daemon, the Begin phase, Prepare on the destination,
Perform. Client-driven v3 (virDomainMigrateVersion3Full): Begin on the source,
Prepare on the destination, Perform on the source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from simulator.libvirt import rules, rules_dest, rules_params, rules_perform
from simulator.libvirt.convergence import (
    DEFAULT_DOWNTIME_S,
    UNLIMITED_MIB_S,
    ConvergenceEngine,
    RunOutcome,
)
from simulator.libvirt.errors import ErrorDomain, ErrorNumber, Refusal, refuse
from simulator.libvirt.flags import MigrateFlag as F
from simulator.libvirt.request import Api, MigrationCall

if TYPE_CHECKING:
    from simulator.libvirt.hosts import DomainRecord, SimHost

Check = Callable[[], Refusal | None]


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


@dataclass(frozen=True)
class Failure:
    """A refusal from the destination after it touched an existing definition."""

    refusal: Refusal
    dest_failed: bool  # the destination's QEMU had started: its domain shuts off FAILED


def _first(*checks: Check) -> Refusal | None:
    for check in checks:
        refusal = check()
        if refusal:
            return refusal
    return None


def _dest_name(call: MigrationCall, rec: DomainRecord) -> str:
    name = call.params.get("destination_name")
    return rec.facts.name if name is None else str(name)


def _bandwidth(call: MigrationCall, rec: DomainRecord) -> float:
    given = int(call.params.get("bandwidth", 0) or 0)  # type: ignore[call-overload]
    return float(given or rec.max_speed)


def _source_p2p(call: MigrationCall, rec: DomainRecord) -> Refusal | None:
    dom, flags = rec.facts, call.flags
    return _first(
        lambda: rules.check_driver_entry(call, "qemuDomainMigratePerform3Params"),
        lambda: rules_dest.check_param_values(call, source=True),
        lambda: rules_params.check_params_from_flags(call, rules_params.Party.SOURCE),
        lambda: rules.check_resume(call, dom),
        lambda: rules.check_job(dom),
        lambda: rules.check_active(dom, flags),
        lambda: rules.check_safe(dom, flags, call),
        lambda: rules_perform.check_tunnelled_params(call),
    )


def _source_v3(call: MigrationCall, rec: DomainRecord) -> Refusal | None:
    dom, flags = rec.facts, call.flags
    fn = "qemuDomainMigrateBegin3Params" if call.api is Api.MIGRATE3 else "qemuDomainMigrateBegin3"
    return _first(
        lambda: rules.check_driver_entry(call, fn),
        lambda: rules.check_resume(call, dom),
        lambda: rules.check_job(dom),
        lambda: rules.check_active(dom, flags),
        lambda: rules.check_begin_phase(dom, flags, call),
    )


def _prepare(
    call: MigrationCall, rec: DomainRecord, flags: int, src: SimHost, target: SimHost
) -> Refusal | Failure | None:
    """qemuDomainMigratePrepare3Params and the PrepareDirect/Any/Fresh/Active chain."""
    # Only qemuDomainMigratePrepare3Params reads typed parameters (migrate3 and every
    # peer-to-peer call); qemuDomainMigratePrepare3 gets the fixed arguments only.
    params = call.api is Api.MIGRATE3 or bool(call.flags & F.PEER2PEER)
    refusal = _first(
        lambda: rules_params.check_params_from_flags(call, rules_params.Party.DESTINATION),
        lambda: rules_dest.check_param_values(call, source=False) if params else None,
        lambda: rules_dest.check_direct_uri(call),
        lambda: rules_dest.check_prepare_any(flags, target),
        lambda: rules_dest.check_identity(src, target, rec, _dest_name(call, rec)),
    )
    if refusal or flags & F.OFFLINE:
        return refusal
    refusal, started = rules_dest.check_prepare_active(call, flags, rec, target)
    if refusal is not None:
        return Failure(refusal, started)
    return None


def decide(
    call: MigrationCall,
    rec: DomainRecord,
    src: SimHost,
    target: SimHost | None,
    engine: ConvergenceEngine,
) -> Refusal | Failure | Plan:
    """Refusal (first failing check) or the plan of a successful migration."""
    dom = rec.facts
    flags = call.flags
    p2p = bool(flags & F.PEER2PEER)
    refusal = rules.check_client(call) or (_source_p2p(call, rec) if p2p else _source_v3(call, rec))
    if refusal:
        return refusal
    if p2p:
        if target is None:
            # qemuMigrationSrcPerformPeer2Peer: virConnectOpenAuth to the destination
            # (src/rpc/virnetsocket.c virNetSocketNewConnectTCP).
            where = urlsplit(call.dconnuri or "")
            return refuse(
                ErrorNumber.SYSTEM_ERROR,
                ErrorDomain.RPC,
                f"unable to connect to server at '{where.hostname}:{where.port}': "
                "Connection refused",
            )
        refusal = rules.check_begin_phase(dom, flags, call)
        if refusal:
            return refusal
    assert target is not None
    if dom.paused:
        # After Begin, virDomainMigrateVersion3Full (and, p2p,
        # qemuMigrationSrcPerformPeer2Peer3) add VIR_MIGRATE_PAUSED for a paused
        # domain: Begin's checks never see it, the destination's Prepare does.
        flags |= F.PAUSED
    outcome = _prepare(call, rec, flags, src, target)
    if outcome is not None:
        return outcome
    # From here on the destination's QEMU runs: a failure cancels it in Finish
    # (qemuMigrationDstFinish -> qemuProcessStop(SHUTOFF_FAILED)).
    if not p2p:
        refusal = rules_params.check_params_from_flags(call, rules_params.Party.SOURCE)
        if refusal:
            # virDomainMigrateVersion3Full skips Confirm when Perform fails, so the
            # MIGRATION_OUT job Begin started is never ended (measured on 9.0).
            return Failure(replace(refusal, leaves_job=True), not flags & F.OFFLINE)
    bandwidth = _bandwidth(call, rec)
    refusal = rules_perform.check_perform(call, rec, flags, (src, target), bandwidth)
    if refusal:
        return Failure(refusal, True)
    offline = bool(flags & F.OFFLINE)
    run = RunOutcome.COMPLETED
    if not offline and flags & F.LIVE and dom.active and not dom.paused:
        run = engine.converges(
            dom.dirty_rate,
            dom.working_set,
            min(bandwidth, UNLIMITED_MIB_S),
            DEFAULT_DOWNTIME_S,
            bool(flags & F.AUTO_CONVERGE),
            bool(flags & F.POSTCOPY),
        )
    return Plan(
        offline=offline,
        dest_name=_dest_name(call, rec),
        dest_persistent=bool(flags & F.PERSIST_DEST),
        dest_paused=bool(flags & F.PAUSED) or dom.paused,
        # An offline migration of a running domain leaves the source defined.
        undefine_source=bool(flags & F.UNDEFINE_SOURCE) and not (offline and dom.active),
        run=run,
        bandwidth=bandwidth,
    )
