"""One migration call of the model, from the entry point to both hosts' new state.

:func:`migrate` normalises the call, asks :func:`simulator.libvirt.driver.decide` for a
refusal or a :class:`Plan`, runs the live job (blocking like a real migrate call while
a busy guest's memory transfer lasts, so that another thread's abortJob,
migrateStartPostCopy or migrateSetMaxSpeed acts on it), and applies the outcome:
qemuMigrationDstFinish on the destination, qemuMigrationSrcConfirm on the source
(src/qemu/qemu_migration.c).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from simulator.libvirt.convergence import ConvergenceEngine, PrecopyEngine, RunOutcome
from simulator.libvirt.driver import Failure, Plan, decide
from simulator.libvirt.errors import ErrorDomain, ErrorNumber, Refusal, refuse
from simulator.libvirt.hosts import DOMAIN_IDS, HOSTS, DomainRecord, LiveJob, SimHost, host_name
from simulator.libvirt.request import Api, MigrationCall
from simulator.libvirt.states import Reason

#: The convergence engine (a one-element list so set_engine can swap it).
ENGINE: list[ConvergenceEngine] = [PrecopyEngine()]
#: A memory transfer shorter than this ends before another thread can act on it.
LIVE_JOB_MIN_S = 0.5
#: The longest a held job waits for its release (a caller that never releases it).
HOLD_TIMEOUT_S = 30.0


def _target(
    api: Api, dhost: SimHost | None, flags: int, dconnuri: str | None
) -> tuple[SimHost | None, bool]:
    """The destination host and whether the source daemon can reach it."""
    if flags & 2 and dconnuri is not None:
        name = host_name(dconnuri)
        host = HOSTS.get(name) if name else None
        return host, host is not None
    return dhost, dhost is not None


def migrate(
    src: SimHost,
    name: str,
    api: Api,
    dhost: SimHost | None,
    flags: int,
    params: Mapping[str, Any],
    dconnuri: str | None,
) -> Refusal | tuple[SimHost, str]:
    """Run one migration call; the refusal, or the destination host and domain name."""
    rec = src.find(name)
    target, reachable = _target(api, dhost, flags, dconnuri)
    call = MigrationCall(api, flags, dict(params), dconnuri, dest_reachable=reachable)
    outcome = decide(call, rec, src, target, ENGINE[0])
    if isinstance(outcome, Failure):
        _dest_failed(target, rec, outcome)
        if outcome.refusal.leaves_job:
            rec.facts = replace(rec.facts, migration_job=True)
            rec.leaked_flags = flags
        return outcome.refusal
    if isinstance(outcome, Refusal):
        if outcome.leaves_job:
            rec.facts = replace(rec.facts, migration_job=True)
        return outcome
    assert target is not None
    if outcome.offline:
        _finish_offline(src, rec, target, outcome)
        return target, outcome.dest_name
    run = _run_job(src, rec, outcome, call)
    if isinstance(run, Refusal):
        # Canceled while its stream ran, the destination's QEMU quits on its own
        # ("load of migration failed"): libvirt sees it crash (monitor EOF).
        crashed = rec.job_canceled_in_transfer
        _dest_failed(target, rec, Failure(run, True), crashed)
        return run
    _finish(src, rec, target, outcome, run)
    return target, outcome.dest_name


def _dest_failed(
    target: SimHost | None, rec: DomainRecord, failure: Failure, crashed: bool = False
) -> None:
    """A failed incoming migration: qemuProcessStop(SHUTOFF_FAILED) on a definition
    the destination already had (virDomainObjListAdd assigned it the live config)."""
    same = target.by_uuid(rec.uuid) if target is not None else None
    if same is not None and failure.dest_failed:
        same.reason = Reason.SHUTOFF_CRASHED if crashed else Reason.SHUTOFF_FAILED


def speed_changed(rec: DomainRecord, bandwidth: int) -> None:
    """migrateSetMaxSpeed during a live job: a fast enough speed ends it at once."""
    job = rec.job
    if job is None or bandwidth <= 0 or job.finishing:
        return
    seconds = rec.facts.resident_mib / bandwidth
    if seconds < LIVE_JOB_MIN_S:
        job.decide("speed")


def _run_job(
    src: SimHost, rec: DomainRecord, plan: Plan, call: MigrationCall
) -> RunOutcome | Refusal:
    """The QEMU migration of an active domain, with another thread's operations applied.

    A busy guest's memory transfer lasts ``resident / bandwidth`` seconds, during which
    the call blocks (a real migrate call does). While the host holds jobs
    (:meth:`simulator.libvirt.control.ModelControl.hold_jobs`, set while a caller makes
    live operations) the job then stays in its Finish/Confirm phase until released,
    as a real job does for the moments after its transfer.
    """
    run = plan.run
    rec.job_canceled_in_transfer = False
    bandwidth = plan.bandwidth
    seconds = rec.facts.resident_mib / bandwidth if bandwidth else 0.0
    transfer = seconds >= LIVE_JOB_MIN_S and rec.facts.active
    if transfer or src.hold_jobs:
        job = LiveJob(call.flags, seconds)
        rec.job = job
        try:
            with job.cond:
                if transfer:
                    job.cond.wait_for(lambda: job.decided is not None, timeout=seconds)
                if job.decided is None and src.hold_jobs:
                    # finishing is set before the predicate reads hold_jobs, and
                    # ModelControl.hold_jobs(False) clears hold_jobs before it releases
                    # finishing jobs: either side sees the other's write.
                    job.finishing = True
                    job.cond.wait_for(
                        lambda: job.decided is not None or not src.hold_jobs,
                        timeout=HOLD_TIMEOUT_S,
                    )
        finally:
            rec.job = None
        if job.decided == "abort" and job.finishing and rec.facts.paused:
            pass  # nothing left to cancel for a paused guest: the migration completes
        elif job.decided == "abort":
            rec.job_canceled_in_transfer = not job.finishing
            if job.finishing and call.flags & 1:
                # Canceled after the switchover paused the source: QEMU resumes it.
                rec.reason = Reason.RUNNING_UNPAUSED
            return _aborted(rec, call.flags)
        if job.decided == "postcopy" and run is RunOutcome.NEEDS_POSTCOPY:
            run = RunOutcome.COMPLETED
    if run is RunOutcome.NEVER_CONVERGES or run is RunOutcome.NEEDS_POSTCOPY:
        return _aborted(rec, call.flags)
    return run


def _aborted(rec: DomainRecord, flags: int) -> Refusal:
    """qemuMigrationJobCheckStatus reports the canceled job. A live migration never
    paused the guest, so its state and reason stay; a non-live one paused it
    (PAUSED_MIGRATION) and qemuMigrationSrcRestoreDomainState resumes it."""
    if rec.facts.active and not rec.facts.paused and not flags & 1:
        rec.reason = Reason.RUNNING_MIGRATION_CANCELED
    return refuse(
        ErrorNumber.OPERATION_ABORTED,
        ErrorDomain.QEMU,
        "operation aborted: job 'migration out' canceled by client",
    )


def _finish_offline(src: SimHost, rec: DomainRecord, target: SimHost, plan: Plan) -> None:
    """qemuMigrationDstFinishOffline: the definition only, inactive and persistent."""
    facts = replace(rec.facts, name=plan.dest_name, active=False, paused=False, persistent=True)
    existing = target.domains.get(plan.dest_name)
    if existing is not None:
        existing.facts = replace(facts, migration_job=False)
    else:
        target.domains[plan.dest_name] = DomainRecord(replace(facts, migration_job=False), rec.uuid)
    if plan.undefine_source:
        _undefine_source(src, rec)


def _finish(src: SimHost, rec: DomainRecord, target: SimHost, plan: Plan, run: RunOutcome) -> None:
    """Destination Finish (RUNNING/MIGRATED or PAUSED/USER), source Confirm."""
    facts = rec.facts
    existing = target.domains.get(plan.dest_name)
    persistent = plan.dest_persistent or (existing is not None and existing.facts.persistent)
    new = DomainRecord(
        replace(
            facts,
            name=plan.dest_name,
            active=True,
            paused=plan.dest_paused,
            persistent=persistent,
            migration_job=False,
        ),
        rec.uuid,
        next(DOMAIN_IDS),
        Reason.PAUSED_USER if plan.dest_paused else Reason.RUNNING_MIGRATED,
    )
    target.domains[plan.dest_name] = new
    # qemuMigrationSrcConfirmPhase: the source QEMU is stopped; a transient domain
    # disappears, a persistent one stays defined and shut off (SHUTOFF/MIGRATED).
    if src is target and plan.dest_name == facts.name:
        return
    if facts.persistent:
        rec.facts = replace(facts, active=False, paused=False)
        rec.reason = Reason.SHUTOFF_MIGRATED
    else:
        src.domains.pop(facts.name, None)
    if plan.undefine_source:
        _undefine_source(src, rec)


def _undefine_source(src: SimHost, rec: DomainRecord) -> None:
    name = rec.facts.name
    if name not in src.domains:
        return
    if rec.facts.active:
        rec.facts = replace(rec.facts, persistent=False)
    else:
        del src.domains[name]
