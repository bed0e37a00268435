"""The VM object: runstate, vCPUs, devices, and ``execute(command, arguments)``.

Every command returns ``(reply, events)``; ``reply`` is the QMP ``return`` value or a
:class:`QmpError`. Events raised later (migration progress, guest unplug acks) wait in
``vm.take_events()``. Hotplug and migration commands live in ``vm_hotplug`` and
``vm_migration``; this module keeps lifecycle and queries.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

from simulator.model.devices import MACHINES, DeviceClass, DeviceTable
from simulator.model.errors import JSON, ErrorClass, Event, QmpError, QmpFailure, Reply
from simulator.model.host import Arch, Host
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


class RunState(Enum):
    """QEMU RunState names (query-status ``status``)."""

    RUNNING = "running"
    PAUSED = "paused"
    PRELAUNCH = "prelaunch"
    INMIGRATE = "inmigrate"
    FINISH_MIGRATE = "finish-migrate"
    POSTMIGRATE = "postmigrate"
    SHUTDOWN = "shutdown"


class VM:
    """One hypervisor process and its guest."""

    def __init__(self, world: World, name: str, spec: VMSpec, profile: Profile, host: Host) -> None:
        self.world, self.name, self.spec, self.profile, self.host = world, name, spec, profile, host
        self.rules = MACHINES[spec.machine]
        self.topology = spec.smp.resolved()
        self.online = set(range(self.topology.cpus))
        self.table = DeviceTable({d.id: d for d in spec.devices})
        stopped = RunState(profile.start_stopped_runstate)
        self.runstate = stopped if spec.start_paused else RunState.RUNNING
        self.alive = True
        self.exit_code: int | None = None
        self.owns_guest = True  # holds the authoritative copy of the guest
        self.migration_status = profile.initial_migration_status
        self.params = MigrationParameters()
        self.caps: frozenset[Capability] = frozenset()
        self.engine: Any = None
        self.balloon_actual = spec.memory
        self.memory = MemoryImage(
            spec.memory, tuple(spec.layout().nonzero_ranges(spec.workload)), 0
        )
        self.pending: list[Event] = []
        self.thread_ids = [1000 + 7 * i for i in range(self.topology.maxcpus)]

    # ------------------------------------------------------------------ API
    def execute(self, cmd: str, args: JSON | None = None) -> tuple[Reply, list[Event]]:
        """Run one QMP command; never raises for bad input."""
        if not self.alive:
            return QmpError(ErrorClass.GENERIC_ERROR, "VM is not running"), []
        self.world.sync()
        fn = HANDLERS.get(cmd)
        if fn is None:
            return self.unknown_command(cmd), []
        try:
            return fn(self, dict(args or {}))
        except QmpFailure as exc:
            return exc.error, []
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
    if vm.runstate in (RunState.INMIGRATE, RunState.POSTMIGRATE) and not vm.owns_guest:
        raise QmpFailure("Migration is not finalized yet")
    _touch_engine(vm, running=True)
    return {}, vm.set_runstate(RunState.RUNNING, "RESUME")


def _touch_engine(vm: VM, running: bool) -> None:
    eng = vm.engine
    if eng is not None and hasattr(eng, "vm_running") and eng.end is None:
        eng._sync(vm.world.clock.now)  # close the dirty period at the runstate change
        eng.vm_running = running


@command("quit")
def _quit(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
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


def _props(vm: VM, i: int) -> JSON:
    s, d, c, t = vm.topology.props(i)
    key = "die_id" if vm.rules.arch is Arch.X86_64 else "cluster_id"
    return {"socket-id": s, key: d, "core-id": c, "thread-id": t}


@command("query-cpus")
def _query_cpus(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    arch = "x86" if vm.rules.arch is Arch.X86_64 else "arm"
    out: list[JSON] = [
        {
            "CPU": i,
            "arch": arch,
            "current": True,
            "halted": False,
            "props": _props(vm, i),
            "qom_path": f"/machine/unattached/device[{i}]",
            "thread_id": vm.thread_ids[i],
        }
        for i in sorted(vm.online)
    ]
    return out, []


@command("query-cpus-fast")
def _query_cpus_fast(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    target = vm.rules.arch.value
    out: list[JSON] = [
        {
            "cpu-index": i,
            "props": _props(vm, i),
            "qom-path": f"/machine/unattached/device[{i}]",
            "thread-id": vm.thread_ids[i],
            "target": target,
        }
        for i in sorted(vm.online)
    ]
    return out, []


@command("query-hotpluggable-cpus")
def _query_hp(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    if vm.rules.pci and vm.profile.standard_hotpluggable_cpus_empty:
        return {}, []
    typ = "host-x86-cpu" if vm.rules.arch is Arch.X86_64 else "host-aarch64-cpu"
    out: list[JSON] = []
    for i in range(vm.topology.maxcpus):
        entry: JSON = {"props": _props(vm, i), "type": typ, "vcpus-count": 1}
        if i in vm.online:
            entry["qom-path"] = f"/machine/unattached/device[{i}]"
        out.append(entry)
    return out, []


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
