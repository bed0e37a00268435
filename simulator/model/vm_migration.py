"""migrate / migrate_cancel / query-migrate / knobs / snapshot (``migrate file:``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from simulator.model.devices import DeviceClass
from simulator.model.errors import JSON, ErrorClass, Event, QmpError, QmpFailure, Reply
from simulator.model.memory import MemoryLayout
from simulator.model.migration.params import Capability
from simulator.model.migration.qemu_precopy import PrecopyConfig, QemuPrecopy
from simulator.model.migration.query import query_migrate, status_at
from simulator.model.migration.status import MigrationStatus as S
from simulator.model.migration.stratovirt import StratoConfig, StratoMigration
from simulator.model.migration.uri import MigrationUri, UriError, UriMode, parse_uri
from simulator.model.profiles import ConfigCheck, Engine, Policy
from simulator.model.vm import VM, RunState, command
from simulator.model.world import Snapshot


def config_mismatch(src: VM, dst: VM) -> str | None:
    """migration.rs check_vm_config, restricted to the destination profile's checks."""
    checks = dst.profile.dest_checks
    if ConfigCheck.VCPUS in checks and src.topology.cpus != dst.topology.cpus:
        return (
            f"Migration config vCPU number mismatch: source {src.topology.cpus}, "
            f"destination {dst.topology.cpus}."
        )
    if ConfigCheck.MEMORY in checks and src.spec.memory != dst.spec.memory:
        return (
            f"Migration config memory size mismatch: source {src.spec.memory}, "
            f"destination {dst.spec.memory}."
        )
    for d in src.table.devices.values():
        if d.bus is None or d.addr is None:
            continue
        other = dst.table.at(d.bus, d.addr)
        if ConfigCheck.DEVICE_TYPE_PER_BDF in checks:
            if other is None:
                return f"Failed to get destination device bdf {d.bus}:{d.addr}, type {d.cls.value}"
            if other.cls is not d.cls:
                return (
                    f"Migration config device type mismatch: source {d.cls.value}, "
                    f"destination {other.cls.value}."
                )
        if ConfigCheck.MAC in checks and other is not None and other.mac != d.mac:
            return f"Migration config mac mismatch: source {d.mac}, destination {other.mac}."
    return None


#: What migrate answers when nothing listens at the URI (the kernel's ECONNREFUSED).
CONNECTION_REFUSED = "Connection refused (os error 111)"


def _blocked(vm: VM, policies: Mapping[DeviceClass, Policy], what: str) -> None:
    for d in vm.table.devices.values():
        if policies.get(d.cls) is Policy.REFUSED:
            if d.cls is DeviceClass.VFIO and vm.profile.vfio_blocker_error is not None:
                raise QmpFailure(vm.profile.vfio_blocker_error)
            raise QmpFailure(f"{what} is not supported with device {d.id} ({d.cls.value})")


def _check_uri(vm: VM, uri: str) -> MigrationUri:
    """The URI as the profile reads it, or migrate's refusal (standard and micro machines
    word an unknown mode differently: MigrateInterface::migrate in standard_common/ and
    micro_common/mod.rs)."""
    p = vm.profile
    try:
        parsed = parse_uri(p.uri_rules, uri)
    except UriError as exc:
        raise QmpFailure(p.invalid_uri_error.format(uri=uri)) from exc
    if parsed.mode is UriMode.UNKNOWN or (parsed.mode is UriMode.EXEC and not p.exec_migration):
        unknown = p.bad_uri_error if vm.rules.pci else p.bad_uri_error_microvm
        raise QmpFailure(unknown.format(uri=uri))
    return parsed


def _live_checks(vm: VM) -> None:
    """What a live migrate checks before it needs the destination."""
    if not vm.rules.pci and not vm.profile.microvm_live_migration:
        raise QmpFailure("MicroVM does not support migration")
    if vm.engine is not None and vm.engine.end is None:
        raise QmpFailure("There's a migration process in progress")
    if vm.profile.qemu_runstate_rules:  # migration.c migrate_prepare
        if vm.runstate is RunState.INMIGRATE:
            raise QmpFailure("Guest is waiting for an incoming migration")
        if vm.runstate is RunState.POSTMIGRATE:
            raise QmpFailure("Can't migrate the vm that was paused due to previous migration")
    _blocked(vm, vm.profile.migration, "Migration")


def migrate_precheck(vm: VM, uri: str) -> QmpError | None:
    """The error ``migrate`` to ``uri`` gives before it looks for a destination, or None.

    A process that reaches its destination over a real socket asks this first: with
    None it connects, and runs ``migrate`` once a stand-in for the peer is listening.
    A ``file:`` URI only has its URI checked here (a snapshot needs no destination).
    """
    if not vm.alive:
        return QmpError(ErrorClass.GENERIC_ERROR, "VM is not running")
    vm.world.sync()
    try:
        if _check_uri(vm, uri).mode is not UriMode.FILE:
            _live_checks(vm)
    except QmpFailure as exc:
        return exc.error
    return None


def _start_strato(vm: VM, layout: MemoryLayout, link: float, err: str | None) -> Any:
    prior = vm.migration_status
    return StratoMigration(
        StratoConfig(
            layout,
            vm.spec.workload,
            link,
            config_error=err,
            max_dirty_iterations=vm.profile.max_dirty_iterations,
            limit_downtime_s=vm.profile.limit_downtime_s,
        ),
        vm.world.clock.now,
        prior=prior if prior is not S.NONE else S.SETUP,
    )


def _start_qemu(vm: VM, layout: MemoryLayout, link: float, err: str | None) -> Any:
    cfg = PrecopyConfig(
        layout,
        vm.spec.workload,
        vm.params,
        vm.caps,
        vm.host,
        link,
        vm_running=vm.running,
        vcpus=vm.spec.smp.cpus,
    )
    eng = QemuPrecopy(cfg, vm.world.clock.now)
    if err:
        desc = err
        vm.world.schedule(eng.setup_end, lambda: eng.fail(eng.setup_end, desc))
    return eng


#: The migration engine each profile's ``engine`` names.
ENGINES: Mapping[Engine, Callable[[VM, MemoryLayout, float, str | None], Any]] = {
    Engine.STRATOVIRT: _start_strato,
    Engine.QEMU_PRECOPY: _start_qemu,
}


@command("migrate")
def _migrate(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    uri = str(args["uri"])
    parsed = _check_uri(vm, uri)
    if parsed.mode is UriMode.FILE:
        return _snapshot(vm, parsed.target)
    _live_checks(vm)
    dst = vm.world.listeners.get(uri)
    if dst is None or not dst.alive:
        raise QmpFailure(CONNECTION_REFUSED)
    layout = vm.world.memory_layout(vm)
    err = config_mismatch(vm, dst)
    link = min(vm.host.nic_bandwidth, dst.host.nic_bandwidth)
    vm.engine = ENGINES[vm.profile.engine](vm, layout, link, err)
    vm.world.attach(vm, dst, vm.engine)
    if parsed.mode is UriMode.EXEC and isinstance(vm.engine, QemuPrecopy):
        _over_exec(vm.engine, vm.caps)
    return {}, []


def _over_exec(eng: QemuPrecopy, caps: frozenset[Capability]) -> None:
    """What a QEMU 7.2 migration over exec: (one command's stdin and stdout) cannot do."""
    # migration.c migration_thread: open_return_path_on_source when postcopy-ram or
    # return-path is on; over exec: the command's stdout, where no QEMU answers
    eng.silent_return_path = bool({Capability.POSTCOPY_RAM, Capability.RETURN_PATH} & caps)
    if Capability.MULTIFD in caps:
        # migration.c migrate_fd_connect -> multifd.c multifd_save_setup: "multifd is
        # not supported by current protocol" (multiple channels are allowed on socket
        # transports only, migration/socket.c); it goes to stderr, not to s->error:
        # setup -> failed with no error-desc, before anything is sent
        eng.fail(eng.start, "")


def _snapshot(vm: VM, path: str) -> tuple[Reply, list[Event]]:
    """migration/src/snapshot.rs: synchronous; memory + state under ``path``."""
    _blocked(vm, vm.profile.snapshot, "Snapshot")
    events: list[Event] = []
    if vm.running and vm.profile.snapshot_auto_stop:
        events += vm.set_runstate(RunState.PAUSED, "STOP")
    if vm.migration_status is S.ACTIVE:
        vm.migration_status = S.FAILED
        raise QmpFailure("Failed to transfer migration status from active to active.")
    if not path.startswith("/") or not vm.world.dir_parent_exists(path):
        vm.migration_status = S.FAILED
        raise QmpFailure("Failed to create snapshot dir: No such file or directory (os error 2)")
    vm.migration_status = S.COMPLETED
    vm.world.snapshots[path] = Snapshot(
        vm.spec, vm.memory, vm.profile.name, tuple(vm.table.devices.values())
    )
    return {}, events


@command("migrate_cancel")
def _cancel(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    now = vm.world.clock.now
    eng = vm.engine
    if isinstance(eng, StratoMigration) and eng.end is None:
        err = eng.cancel(now)
        if err:
            raise QmpFailure(err)
        vm.migration_status = S.CANCELED
        return {}, []
    if isinstance(eng, QemuPrecopy):
        eng.cancel(now)
        return {}, []
    if vm.profile.idle_cancel_sets_status and vm.rules.pci:
        old = vm.migration_status
        if old.terminal and not vm.profile.cancel_after_end_errors:
            return {}, []  # the doc profile: S003 shows migrate_cancel answering {}
        if (old, S.CANCELED) not in vm.profile.transitions:
            raise QmpFailure(f"Failed to transfer migration status from {old.value} to canceled.")
        vm.migration_status = S.CANCELED
    return {}, []


@command("query-migrate")
def _query(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    eng = vm.engine
    if isinstance(eng, QemuPrecopy):
        return query_migrate(eng, vm.world.clock.now), []
    if isinstance(eng, StratoMigration) and eng.end is None:
        return {"status": eng.status.value}, []
    st = vm.migration_status
    if st is S.NONE and vm.profile.query_migrate_omits_none:
        return {}, []
    if st is S.FAILED and vm.migration_error is not None:
        return {"status": st.value, "error-desc": vm.migration_error}, []
    return {"status": st.value}, []


@command("migrate-set-parameters")
def _set_params(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    if not vm.profile.tuning_knobs:
        raise QmpFailure("unknown variant `migrate-set-parameters`")
    vm.params = vm.params.updated(args)
    eng = vm.engine
    if isinstance(eng, QemuPrecopy) and eng.end is None:
        # migration.c migrate_params_apply: a running migration takes the new rate
        # limit (qemu_file_set_rate_limit) and downtime limit at its next window
        eng.run_until(vm.world.clock.now)
        eng.cfg = dataclasses.replace(eng.cfg, params=vm.params)
    return {}, []


@command("query-migrate-parameters")
def _query_params(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    if not vm.profile.tuning_knobs:
        raise QmpFailure("unknown variant `query-migrate-parameters`")
    return vm.params.to_qmp(), []


def _capability_list(args: JSON) -> list[tuple[Capability, bool]]:
    """The QAPI visitor over ``capabilities`` (qapi/migration.json
    MigrationCapabilityStatus list), in QEMU's words."""
    items = args.get("capabilities")
    if items is None:
        raise QmpFailure("Parameter 'capabilities' is missing")
    if not isinstance(items, list):
        raise QmpFailure("Invalid parameter type for 'capabilities', expected: array")
    out: list[tuple[Capability, bool]] = []
    known = {c.value: c for c in Capability}
    for i, item in enumerate(items):
        where = f"capabilities[{i}]"
        if not isinstance(item, dict):
            raise QmpFailure(f"Invalid parameter type for '{where}', expected: object")
        name, state = item.get("capability"), item.get("state")
        if name is None:
            raise QmpFailure(f"Parameter '{where}.capability' is missing")
        if not isinstance(name, str):
            raise QmpFailure(f"Invalid parameter type for '{where}.capability', expected: string")
        if name not in known:
            raise QmpFailure(f"Parameter 'capability' does not accept value '{name}'")
        if state is None:
            raise QmpFailure(f"Parameter '{where}.state' is missing")
        if not isinstance(state, bool):
            raise QmpFailure(f"Invalid parameter type for '{where}.state', expected: boolean")
        extra = [k for k in item if k not in ("capability", "state")]
        if extra:
            raise QmpFailure(f"Parameter '{where}.{extra[0]}' is unexpected")
        out.append((known[name], state))
    return out


@command("migrate-set-capabilities")
def _set_caps(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    """migration.c qmp_migrate_set_capabilities: the visitor, "in progress", then
    migrate_caps_check's refusals in its order."""
    if not vm.profile.tuning_knobs:
        raise QmpFailure("unknown variant", ErrorClass.GENERIC_ERROR)
    wanted = _capability_list(args)
    if not migration_idle(vm):
        raise QmpFailure("There's a migration process in progress")
    caps = set(vm.caps)
    for cap, state in wanted:
        (caps.add if state else caps.discard)(cap)
    if Capability.POSTCOPY_RAM in caps and Capability.X_IGNORE_SHARED in caps:
        raise QmpFailure("Postcopy is not compatible with ignore-shared")
    if Capability.POSTCOPY_PREEMPT in caps and Capability.POSTCOPY_RAM not in caps:
        raise QmpFailure("Postcopy preempt requires postcopy-ram")
    if Capability.POSTCOPY_PREEMPT in caps and Capability.COMPRESS in caps:
        raise QmpFailure("Postcopy preempt not compatible with compress")
    if Capability.COMPRESS in caps and Capability.MULTIFD in caps:
        raise QmpFailure("Multifd is not compatible with compress")
    vm.caps = frozenset(caps)
    return {}, []


def outgoing_status(vm: VM) -> S:
    """The outgoing migration's status (migration.c MigrationState.state). query-migrate
    shows an incoming VM's own status instead once it has one, which the model keeps in
    ``vm.migration_status`` with no engine: that is not an outgoing migration."""
    eng = vm.engine
    if isinstance(eng, QemuPrecopy):
        return status_at(eng, vm.world.clock.now)
    if eng is None and vm.migration_status is S.COMPLETED:
        return S.NONE
    return vm.migration_status


def migration_idle(vm: VM) -> bool:
    """migration.c migration_is_idle."""
    return outgoing_status(vm) in (S.NONE, S.CANCELLED, S.COMPLETED, S.FAILED)


#: qapi/migration.json MigrationStatus (7.2)
QAPI_MIGRATION_STATUS = frozenset(
    [
        "none",
        "setup",
        "cancelling",
        "cancelled",
        "active",
        "postcopy-active",
        "postcopy-paused",
        "postcopy-recover",
        "completed",
        "failed",
        "colo",
        "pre-switchover",
        "device",
        "wait-unplug",
    ]
)


@command("migrate-continue")
def _continue(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    """migration.c qmp_migrate_continue: only in the state the caller names
    (pause-before-switchover waits in pre-switchover for it)."""
    if not vm.profile.tuning_knobs:
        return vm.unknown_command("migrate-continue"), []
    state = args.get("state")
    if state is None:
        raise QmpFailure("Parameter 'state' is missing")
    if not isinstance(state, str):
        raise QmpFailure("Invalid parameter type for 'state', expected: string")
    if state not in QAPI_MIGRATION_STATUS:
        raise QmpFailure(f"Parameter 'state' does not accept value '{state}'")
    current = outgoing_status(vm)
    if current.value != state:
        raise QmpFailure(f"Migration not in expected state: {current.value}")
    eng = vm.engine
    if isinstance(eng, QemuPrecopy):  # pause-before-switchover: the switch-over goes on
        eng.proceed(vm.world.clock.now)
    return {}, []


@command("query-migrate-capabilities")
def _query_caps(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    if not vm.profile.tuning_knobs:
        return [], []
    return [{"capability": c.value, "state": c in vm.caps} for c in Capability], []


@command("migrate-start-postcopy")
def _start_postcopy(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    if not vm.profile.tuning_knobs:
        raise QmpFailure("unknown variant `migrate-start-postcopy`")
    if Capability.POSTCOPY_RAM not in vm.caps:
        raise QmpFailure(
            "Enable postcopy with migrate_set_capability before the start of migration"
        )
    # migration.c qmp_migrate_start_postcopy refuses only while the outgoing state is
    # "none"; after a migration ended it sets start_postcopy and returns ("we don't
    # error if migration has finished since that would be racy")
    eng = vm.engine
    if not isinstance(eng, QemuPrecopy):
        raise QmpFailure("Postcopy must be started after migration has been started")
    if eng.end is None:
        eng.request_postcopy()
    return {}, []
