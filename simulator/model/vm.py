"""The VM object: runstate, vCPUs, devices, and ``execute(command, arguments)``.

Every command returns ``(reply, events)``; ``reply`` is the QMP ``return`` value or a
:class:`QmpError`. Events raised later (migration progress, guest unplug acks) wait in
``vm.take_events()``. Hotplug and migration commands live in ``vm_hotplug`` and
``vm_migration``; this module keeps lifecycle and queries.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from simulator.model.devices import (
    MACHINES,
    DeviceClass,
    DeviceTable,
    Hotplug,
    place_cold_devices,
)
from simulator.model.errors import JSON, ErrorClass, Event, QmpError, QmpFailure, Reply
from simulator.model.host import Host
from simulator.model.memory import MemoryImage
from simulator.model.migration.params import Capability, MigrationParameters
from simulator.model.migration.status import MigrationStatus
from simulator.model.profiles import Profile
from simulator.model.spec import VMSpec

if TYPE_CHECKING:
    from simulator.model.world import World

Handler = Callable[["VM", JSON], tuple[Reply, list[Event]]]
HANDLERS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    """Register a QMP command handler."""

    def deco(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn

    return deco


class RunState(StrEnum):
    """QEMU qapi/run-state.json RunState (query-status ``status``); StratoVirt answers
    with three of these names: running, paused, else debug (machine_manager/src/qmp,
    query_status). A ``StrEnum`` for the same reason as
    :class:`~simulator.model.migration.status.MigrationStatus`; the model enters only
    the first seven."""

    RUNNING = "running"
    PAUSED = "paused"
    PRELAUNCH = "prelaunch"
    INMIGRATE = "inmigrate"
    FINISH_MIGRATE = "finish-migrate"
    POSTMIGRATE = "postmigrate"
    SHUTDOWN = "shutdown"
    DEBUG = "debug"
    INTERNAL_ERROR = "internal-error"
    IO_ERROR = "io-error"
    RESTORE_VM = "restore-vm"
    SAVE_VM = "save-vm"
    SUSPENDED = "suspended"
    WATCHDOG = "watchdog"
    GUEST_PANICKED = "guest-panicked"
    COLO = "colo"


class VM:
    """One hypervisor process and its guest."""

    def __init__(self, world: World, name: str, spec: VMSpec, profile: Profile, host: Host) -> None:
        self.world, self.name, self.spec, self.profile, self.host = world, name, spec, profile, host
        self.rules = MACHINES[spec.machine]
        self.arch = spec.arch
        self.topology = spec.smp.resolved()
        self.online = set(range(self.topology.cpus))
        devices = spec.devices
        if self.slot_configs:
            slots = {DeviceClass.BLK: profile.microvm_blk_slots}
            devices = place_cold_devices(
                devices, {**slots, DeviceClass.NET: profile.microvm_net_slots}
            )
        self.table = DeviceTable({d.id: d for d in devices})
        stopped = RunState(profile.start_stopped_runstate)
        self.runstate = stopped if spec.start_paused else RunState.RUNNING
        self.alive = True
        self.exit_code: int | None = None
        # QEMU's autostart: run once an incoming migration is loaded (-S, stop and cont
        # on an incoming VM set it; softmmu/vl.c, cpus.c)
        self.autostart = not spec.start_paused
        self.owns_guest = True  # holds the authoritative copy of the guest
        self.migration_status = profile.initial_migration_status
        # why the last migration failed before an engine ran (QEMU: a connect that failed
        # asynchronously; query-migrate's error-desc)
        self.migration_error: str | None = None
        self.params = MigrationParameters()
        self.caps: frozenset[Capability] = frozenset()
        self.engine: Any = None
        self.balloon_actual = spec.memory
        self.memory = MemoryImage(
            spec.memory, tuple(spec.layout().nonzero_ranges(spec.workload)), 0
        )
        self.pending: list[Event] = []
        self.thread_ids = [1000 + 7 * i for i in range(self.topology.maxcpus)]

    @property
    def slot_configs(self) -> bool:
        """microvm with replaceable slots: hotplug looks backends up by device id."""
        return self.rules.hotplug is Hotplug.MMIO_SLOTS and self.profile.microvm_blk_slots > 0

    def attach_backends(self, drives: dict[str, str], netdevs: dict[str, str]) -> None:
        """The command line's -drive and -netdev backends.

        On a slot machine a cold device consumes its backend, which is then registered
        under the device's id, and only those are hotplug configurations
        (machine/src/micro_common/mod.rs add_virtio_mmio_block: vm_config.drives.remove,
        then fill_replaceable_device(id)); elsewhere every backend stays addressable by
        its own id.
        """
        if not self.slot_configs:
            self.table.blockdevs.update(drives)
            self.table.netdevs.update(netdevs)
            return
        for d in self.table.devices.values():
            if d.cls is DeviceClass.BLK and d.backend in drives:
                self.table.blockdevs[d.id] = drives[d.backend]
            elif d.cls is DeviceClass.NET and d.backend in netdevs:
                self.table.netdevs[d.id] = netdevs[d.backend]

    # ------------------------------------------------------------------ API
    def execute(self, cmd: str, args: JSON | None = None) -> tuple[Reply, list[Event]]:
        """Run one QMP command; never raises for bad input."""
        if not self.alive:
            return QmpError(ErrorClass.GENERIC_ERROR, "VM is not running"), []
        self.world.sync()
        fn = HANDLERS.get(cmd)
        listed = self.profile.qmp_commands
        if fn is None or (listed and cmd not in listed):
            # a command the product's monitor does not register (QEMU 7.2 has no
            # query-cpus since 6.0: qapi/machine.json) is unknown even if modelled
            return self.unknown_command(cmd), []
        try:
            return fn(self, dict(args or {}))
        except QmpFailure as exc:
            return exc.error, exc.events
        except (KeyError, TypeError, ValueError) as exc:
            return QmpError(ErrorClass.GENERIC_ERROR, str(exc).strip("'\"")), []

    def unknown_command(self, cmd: str) -> QmpError:
        """The profile's answer to a command its monitor does not have."""
        if self.profile.unknown_command is ErrorClass.COMMAND_NOT_FOUND:
            return QmpError(ErrorClass.COMMAND_NOT_FOUND, f"The command {cmd} has not been found")
        return QmpError(ErrorClass.GENERIC_ERROR, f"unknown variant `{cmd}`")

    def take_events(self) -> list[Event]:
        """Events raised asynchronously since the last call."""
        out, self.pending = self.pending, []
        return out

    @property
    def running(self) -> bool:
        return self.alive and self.runstate is RunState.RUNNING

    def set_runstate(self, st: RunState, event: str | None) -> list[Event]:
        self.runstate = st
        if event:
            ev: list[Event] = [(event, {})]
            return ev
        return []

    def exit(self, code: int) -> None:
        self.alive = False
        self.exit_code = code
        self.runstate = RunState.SHUTDOWN


def _arg(args: JSON, key: str) -> Any:
    if key not in args:
        raise QmpFailure(f"missing field `{key}`")
    return args[key]


@command("qmp_capabilities")
def _caps(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    return {}, []


@command("query-status")
def _status(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    st = vm.runstate
    running = st is RunState.RUNNING or (
        st is RunState.PAUSED and vm.profile.paused_reports_running
    )
    return {"running": running, "singlestep": False, "status": st.value}, []


@command("query-commands")
def _query_commands(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    if not vm.profile.qmp_commands:
        return vm.unknown_command("query-commands"), []
    return [{"name": name} for name in vm.profile.qmp_commands], []


@command("stop")
def _stop(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    if vm.runstate is RunState.PRELAUNCH:
        return {}, []  # cpus.c do_vm_stop: nothing runs yet, the state stays
    if vm.profile.qemu_runstate_rules and vm.runstate is not RunState.RUNNING:
        # softmmu/cpus.c qmp_stop: on an incoming VM it only clears autostart (it stays
        # paused once loaded); do_vm_stop changes nothing on a VM that does not run
        if vm.runstate is RunState.INMIGRATE:
            vm.autostart = False
        return {}, []
    if vm.runstate is not RunState.RUNNING and vm.profile.redundant_runstate_error:
        return QmpError(ErrorClass.GENERIC_ERROR, ""), []
    _touch_engine(vm, running=False)
    return {}, vm.set_runstate(RunState.PAUSED, "STOP")


@command("cont")
def _cont(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    if vm.runstate is RunState.RUNNING and vm.profile.redundant_runstate_error:
        return QmpError(ErrorClass.GENERIC_ERROR, ""), []
    if vm.runstate is RunState.RUNNING:
        return {}, [("RESUME", {})] if vm.profile.cont_running_emits_resume else []
    if vm.profile.qemu_runstate_rules:
        return _qemu_cont(vm)
    if vm.runstate in (RunState.INMIGRATE, RunState.POSTMIGRATE) and not vm.owns_guest:
        raise QmpFailure("Migration is not finalized yet")
    _touch_engine(vm, running=True)
    return {}, vm.set_runstate(RunState.RUNNING, "RESUME")


#: what a guest does once it runs again after cont (qemu_qdev.py adds its slots and vCPUs:
#: it imports this module, so it registers itself here instead of being imported)
GUEST_RUNS: list[Callable[[VM], list[Event]]] = []


def _qemu_cont(vm: VM) -> tuple[Reply, list[Event]]:
    """softmmu/cpus.c qmp_cont: refused only mid switch-over; an incoming VM just gets
    autostart back; a source after its migration takes its disks back and runs again
    (bdrv_activate_all, vm_start): then two copies of the guest run."""
    if vm.runstate is RunState.FINISH_MIGRATE:
        raise QmpFailure("Migration is not finalized yet")
    if vm.runstate is RunState.INMIGRATE:
        vm.autostart = True
        return {}, []
    _touch_engine(vm, running=True)
    vm.owns_guest = True
    vm.table.inactive.clear()  # bdrv_activate_all
    events = vm.set_runstate(RunState.RUNNING, "RESUME")
    for hook in GUEST_RUNS:
        vm.pending.extend(hook(vm))
    return {}, events


def _touch_engine(vm: VM, running: bool) -> None:
    eng = vm.engine
    if eng is not None and hasattr(eng, "vm_running") and eng.end is None:
        eng.close_period(vm.world.clock.now)  # the dirty period ends at the change
        eng.vm_running = running


@command("quit")
def _quit(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    eng = vm.engine
    if eng is not None and eng.end is None:
        # QEMU softmmu/runstate.c qemu_cleanup -> migration_shutdown: the outgoing
        # migration is cancelled, so the process does not wait for its stream to end
        eng.cancel(vm.world.clock.now)
    vm.exit(0)
    vm.owns_guest = False
    return {}, [("SHUTDOWN", {"guest": False, "reason": "host-qmp-quit"})]


@command("system_reset")
def _reset(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    if not vm.rules.pci and vm.profile.microvm_reset_is_shutdown:
        vm.exit(0)
        vm.owns_guest = False
        return {}, [("SHUTDOWN", {"guest": True, "reason": "guest-reset"})]
    return {}, [("RESET", {"guest": True})]


def _balloon_dev(vm: VM) -> None:
    if DeviceClass.BALLOON not in vm.table.classes():
        raise QmpFailure("No balloon device has been activated", ErrorClass.DEVICE_NOT_ACTIVE)


@command("balloon")
def _balloon(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    _balloon_dev(vm)
    value = int(_arg(args, "value"))
    vm.balloon_actual = max(0, min(value, vm.spec.memory))
    return {}, [("BALLOON_CHANGED", {"actual": vm.balloon_actual})]


@command("query-balloon")
def _query_balloon(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    _balloon_dev(vm)
    return {"actual": vm.balloon_actual}, []


_ = MigrationStatus
