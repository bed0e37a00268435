"""vCPUs over QMP: query-cpus, query-cpus-fast, query-hotpluggable-cpus, vCPU hot(un)plug.

A profile's ``cpu_plug`` picks how ``device_add`` names a vCPU:

- ``CPU_ID`` (StratoVirt, docs/cpu_hotplug.md; machine/src/standard_common/mod.rs
  plug_cpu_device, x86_64 only): driver ``generic-x86-cpu`` and a ``cpu-id`` in
  [cpus, maxcpus). The main loop then creates the vCPU and devices/src/acpi/ged.rs
  raises ``CPU_RESIZE``, after the reply. ``device_del`` of its id raises CPU_RESIZE
  again (x86_64/standard.rs remove_vcpu_device); the guest ejects it later
  (devices/src/acpi/cpu_controller.rs eject_cpu), with no event.
- ``TOPOLOGY`` (QEMU 7.2 hw/i386/x86.c x86_cpu_pre_plug): the slot's type and its
  socket-id/core-id/thread-id; no event on plug; ``device_del`` is a request the guest
  completes (hw/acpi/cpu.c): then DEVICE_DELETED names the vCPU's lapic child.

Hot-plugged vCPUs are ``DeviceClass.CPU`` entries of the device table (``addr`` is the
vCPU index); ``vm.online`` holds every plugged vCPU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from simulator.model.devices import Device, DeviceClass
from simulator.model.errors import JSON, Event, QmpFailure, Reply
from simulator.model.host import Arch
from simulator.model.profile_kinds import CpuPlug
from simulator.model.vm import VM, command

#: StratoVirt's driver name (an x86_64 build only: ``#[cfg(target_arch = "x86_64")]``).
GENERIC_X86_CPU = "generic-x86-cpu"
#: Virtual seconds until StratoVirt's main loop handles the hotplug eventfd.
MAIN_LOOP_S = 1e-4


def hotplugged(vm: VM) -> dict[int, str]:
    """vCPU index -> device id of the hot-plugged vCPUs."""
    return {
        int(d.addr): d.id
        for d in vm.table.devices.values()
        if d.cls is DeviceClass.CPU and d.addr is not None
    }


def _props(vm: VM, i: int) -> JSON:
    return _DIALECTS[vm.profile.cpu_plug].props(vm, i)


def _sv_props(vm: VM, i: int) -> JSON:
    s, d, c, t = vm.topology.props(i)
    key = "die_id" if vm.arch is Arch.X86_64 else "cluster_id"
    return {"socket-id": s, key: d, "core-id": c, "thread-id": t}


def _qemu_props(vm: VM, i: int) -> JSON:
    """qapi CpuInstanceProperties as QEMU 7.2 fills them: x86 (hw/i386/x86.c
    x86_possible_cpu_arch_ids) sets die-id only with more than one die; Arm virt
    (hw/arm/virt.c virt_possible_cpu_arch_ids) always sets cluster-id."""
    s, d, c, t = vm.topology.props(i)
    out: JSON = {"socket-id": s, "core-id": c, "thread-id": t}
    if vm.arch is not Arch.X86_64:
        out["cluster-id"] = d
    elif vm.topology.dies > 1:
        out["die-id"] = d
    return out


def _qom(vm: VM, i: int) -> str:
    dev_id = hotplugged(vm).get(i)
    dialect = _DIALECTS[vm.profile.cpu_plug]
    if dev_id is not None and dialect.qdev:
        return f"/machine/peripheral/{dev_id}"  # a device_add vCPU is a qdev device
    return f"/machine/unattached/device[{dialect.boot_index(vm, i)}]"


def _qemu_boot_index(vm: VM, i: int) -> int:
    """The boot vCPU's place among the unattached devices: on x86 the first APIC's
    realize creates the one kvmvapic right after vCPU 0 (hw/intc/apic_common.c
    apic_common_realize), so vCPU i >= 1 is device[i + 1]; on Arm, device[i]."""
    return i + 1 if vm.arch is Arch.X86_64 and i >= 1 else i


def inserted(vm: VM, dev_id: str) -> list[Event]:
    """The guest's _OST for a hot-added vCPU (QEMU hw/acpi/cpu.c cpu_hotplug_wr, source
    1 = ACPI_NOTIFY_DEVICE_CHECK, status 0), as Linux sends it once it has the vCPU."""
    dev = vm.table.devices.get(dev_id)
    if dev is None or dev.addr is None:
        return []
    info = {"device": dev_id, "source": 1, "status": 0, "slot": str(dev.addr), "slot-type": "CPU"}
    return [("ACPI_DEVICE_OST", {"info": info})]


def listed(vm: VM) -> list[int]:
    """The vCPUs query-cpus lists (StratoVirt's code: the boot vCPUs' online_mask)."""
    if vm.profile.lists_hotplugged_cpus:
        return sorted(vm.online)
    return sorted(i for i in vm.online if i < vm.topology.cpus)


@command("query-cpus")
def _query_cpus(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    arch = "x86" if vm.arch is Arch.X86_64 else "arm"
    out: list[JSON] = [
        {
            "CPU": i,
            "arch": arch,
            "current": True,
            "halted": False,
            "props": _props(vm, i),
            "qom_path": _qom(vm, i),
            "thread_id": vm.thread_ids[i],
        }
        for i in listed(vm)
    ]
    return out, []


@command("query-cpus-fast")
def _query_cpus_fast(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    out: list[JSON] = [
        {
            "cpu-index": i,
            "props": _props(vm, i),
            "qom-path": _qom(vm, i),
            "thread-id": vm.thread_ids[i],
            "target": vm.arch.value,
        }
        for i in listed(vm)
    ]
    return out, []


@command("query-hotpluggable-cpus")
def _query_hp(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    if vm.spec.machine in vm.profile.hotpluggable_cpus_refused:
        raise QmpFailure("The feature 'query-hotpluggable-cpus' is not enabled")
    if vm.rules.pci and vm.profile.standard_hotpluggable_cpus_empty:
        return {}, []
    out: list[JSON] = []
    for i in range(vm.topology.maxcpus):
        entry: JSON = {
            "props": _props(vm, i),
            "type": vm.profile.cpu_types[vm.arch],
            "vcpus-count": 1,
        }
        if i in vm.online:
            entry["qom-path"] = _qom(vm, i)
        out.append(entry)
    if _DIALECTS[vm.profile.cpu_plug].slots_reversed:
        out.reverse()  # hw/core/machine-qmp-cmds.c prepends each slot to the list
    return out, []


def _later(vm: VM, event: str) -> None:
    """An event the main loop raises after the command's reply (an eventfd handler)."""
    vm.world.schedule(vm.world.clock.now + MAIN_LOOP_S, lambda: vm.pending.append((event, {})))


def _arg_int(args: JSON, key: str) -> int | None:
    value = args.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise QmpFailure(f"Invalid parameter type for '{key}', expected: integer")
    return value


def _plug_by_cpu_id(vm: VM, args: JSON, dev_id: str) -> int:
    """standard_common/mod.rs plug_cpu_device, cpu_controller.rs check_id_existed."""
    cpu_id = _arg_int(args, "cpu-id")
    if cpu_id is None:
        raise QmpFailure("Argument cpu-id is required.")
    t = vm.topology
    if t.cpus == t.maxcpus:
        raise QmpFailure("There is no hotpluggable cpu-id for this VM.")
    if cpu_id < t.cpus:
        raise QmpFailure(f"Cpu-id {cpu_id} already exist.")
    if cpu_id >= t.maxcpus:
        raise QmpFailure(f"Max cpu-id is {t.maxcpus - 1}")
    for index, other in hotplugged(vm).items():
        if other == dev_id:
            raise QmpFailure(f"Device id {dev_id} already existed.")
        if index == cpu_id:
            raise QmpFailure(f"Cpu-id {cpu_id} is running, device id is {other}.")
    _later(vm, "CPU_RESIZE")
    return cpu_id


def _width(n: int) -> int:
    return (n - 1).bit_length()


def _plug_by_topology(vm: VM, args: JSON, dev_id: str) -> int:
    """QEMU 7.2 hw/i386/x86.c x86_cpu_pre_plug: ids set and in range, slot free."""
    if dev_id in vm.table.devices:
        raise QmpFailure(f"Duplicate device ID '{dev_id}'")
    t = vm.topology
    ids: dict[str, int] = {}
    for name, count in (("socket", t.sockets), ("die", t.dies), ("core", t.cores)):
        ids[name] = _topology_id(args, name, count)
    ids["thread"] = _topology_id(args, "thread", t.threads)
    index = ((ids["socket"] * t.dies + ids["die"]) * t.cores + ids["core"]) * t.threads
    index += ids["thread"]
    if index in vm.online:
        # hw/i386/topology.h x86_apicid_from_topo_ids
        apic = ids["socket"] << _width(t.dies)
        apic = (apic | ids["die"]) << _width(t.cores)
        apic = (apic | ids["core"]) << _width(t.threads) | ids["thread"]
        raise QmpFailure(f"CPU[{index}] with APIC ID {apic} exists")
    return index


def _topology_id(args: JSON, name: str, count: int) -> int:
    value = _arg_int(args, f"{name}-id")
    if value is None:
        if name == "die" and count == 1:
            return 0  # x86_cpu_pre_plug: die-id defaults to 0 with one die
        raise QmpFailure(f"CPU {name}-id is not set")
    if not 0 <= value <= count - 1:
        raise QmpFailure(f"Invalid CPU {name}-id: {value} must be in range 0:{count - 1}")
    return value


def _unplugged_cpu_id(vm: VM, dev_id: str) -> list[Event]:
    _later(vm, "CPU_RESIZE")
    return []


def _unplugged_topology(vm: VM, dev_id: str) -> list[Event]:
    return []


def _ejected_cpu_id(vm: VM, dev: Device) -> list[Event]:
    return []


def _ejected_topology(vm: VM, dev: Device) -> list[Event]:
    # Seen with QEMU 7.2 (TCG, Linux 6.1 guest; hw/acpi/cpu.c sends ACPI_DEVICE_OST for
    # each _OST the guest writes, naming the device while it exists): the guest first
    # reports the eject in progress (Linux drivers/acpi/scan.c
    # acpi_generic_hotplug_event: ACPI_OST_SC_EJECT_IN_PROGRESS, 0x84), then after its
    # _EJ0 only the vCPU's local APIC child is reported deleted, then its _OST for the
    # eject done (status 0); no DEVICE_DELETED names the vCPU itself.
    ost = {"source": 3, "slot": str(dev.addr), "slot-type": "CPU"}
    return [
        ("ACPI_DEVICE_OST", {"info": {"device": dev.id, **ost, "status": 0x84}}),
        ("DEVICE_DELETED", {"path": f"/machine/peripheral/{dev.id}/lapic"}),
        ("ACPI_DEVICE_OST", {"info": {**ost, "status": 0}}),
    ]


def _ged_refuses(vm: VM, args: JSON, dev_id: str, driver: str) -> QmpFailure:
    """QEMU 7.2 microvm: hw/i386/microvm.c sends a vCPU through x86_cpu_pre_plug (the
    topology checks), realizes it (its lapic child appears), then x86_cpu_plug hands it
    to the ACPI GED, which takes no vCPUs (hw/acpi/generic_event_device.c
    acpi_ged_device_plug_cb). The failed realize unparents the lapic: DEVICE_DELETED."""
    _plug_by_topology(vm, args, dev_id)
    return QmpFailure(
        f"virt: device plug request for unsupported device type: {driver}",
        events=[("DEVICE_DELETED", {"path": f"/machine/peripheral/{dev_id}/lapic"})],
    )


@dataclass(frozen=True)
class _Dialect:
    driver: Callable[[VM], str | None]  # the plug driver on this VM (None: not known)
    plug: Callable[[VM, JSON, str], int]  # the vCPU index, or QmpFailure
    unplug: Callable[[VM, str], list[Event]]  # device_del accepted: its events
    ejected: Callable[[VM, Device], list[Event]]  # the guest let the vCPU go
    qdev: bool  # a plugged vCPU lives at /machine/peripheral/<id> (QEMU qdev)
    props: Callable[[VM, int], JSON]  # a vCPU's props in the lists
    boot_index: Callable[[VM, int], int]  # a boot vCPU's /machine/unattached/device[N]
    slots_reversed: bool  # query-hotpluggable-cpus lists the last slot first
    creatable: frozenset[Arch]  # the architectures whose vCPU type device_add may create
    no_hotplug: Callable[[VM, JSON, str, str], QmpFailure]  # a machine without vCPU hotplug


_DIALECTS: Mapping[CpuPlug, _Dialect] = {
    CpuPlug.CPU_ID: _Dialect(
        lambda vm: GENERIC_X86_CPU if vm.arch is Arch.X86_64 else None,
        _plug_by_cpu_id,
        _unplugged_cpu_id,
        _ejected_cpu_id,
        qdev=False,  # StratoVirt's query-cpus names every vCPU /machine/unattached/device[i]
        props=_sv_props,
        boot_index=lambda vm, i: i,
        slots_reversed=False,
        creatable=frozenset({Arch.X86_64}),  # generic-x86-cpu is an x86_64 build's only
        no_hotplug=lambda vm, args, dev_id, driver: QmpFailure(
            f"CPU hotplug is not supported on machine {vm.spec.machine.value}"
        ),
    ),
    CpuPlug.TOPOLOGY: _Dialect(
        lambda vm: vm.profile.cpu_types[vm.arch],
        _plug_by_topology,
        _unplugged_topology,
        _ejected_topology,
        qdev=True,
        props=_qemu_props,
        boot_index=_qemu_boot_index,
        slots_reversed=True,
        # hw/core/cpu-common.c cpu_class_init clears user_creatable for every CPU;
        # only target/i386/cpu.c x86_cpu_common_class_init sets it again (Arm's stays
        # off: softmmu/qdev-monitor.c qdev_get_device_class refuses the driver)
        creatable=frozenset({Arch.X86_64}),
        no_hotplug=_ged_refuses,
    ),
}


def creatable(vm: VM) -> bool:
    """device_add may create this VM's vCPU type (else QEMU's qdev_get_device_class
    refuses the driver before anything else is looked at)."""
    return vm.arch in _DIALECTS[vm.profile.cpu_plug].creatable


def is_cpu_driver(vm: VM, driver: str) -> bool:
    """``driver`` plugs a vCPU on this VM's build."""
    return driver == _DIALECTS[vm.profile.cpu_plug].driver(vm)


def plug(vm: VM, args: JSON, dev_id: str, driver: str) -> tuple[Reply, list[Event]]:
    """device_add of a vCPU on a standard machine (the id checks already passed)."""
    dialect = _DIALECTS[vm.profile.cpu_plug]
    if not vm.rules.cpu_hotplug:
        raise dialect.no_hotplug(vm, args, dev_id, driver)
    index = dialect.plug(vm, args, dev_id)
    vm.online.add(index)
    vm.table.devices[dev_id] = Device(dev_id, DeviceClass.CPU, driver, addr=index, hotplugged=True)
    return {}, []


def unplug(vm: VM, dev: Device) -> tuple[Reply, list[Event]]:
    """device_del of a hot-plugged vCPU: a request the guest completes (``ejected``)."""
    vm.table.pending_unplug.add(dev.id)
    return {}, _DIALECTS[vm.profile.cpu_plug].unplug(vm, dev.id)


def ejected(vm: VM, dev: Device) -> list[Event]:
    """The guest ejected the vCPU: it is gone, and the events that says so."""
    vm.table.devices.pop(dev.id, None)
    if dev.addr is not None:
        vm.online.discard(int(dev.addr))
    return _DIALECTS[vm.profile.cpu_plug].ejected(vm, dev)
