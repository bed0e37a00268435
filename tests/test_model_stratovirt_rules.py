"""StratoVirt rules the model follows (issue 17): vCPU hotplug, migration URIs, cold
microvm slots, device ids and build features, each beside QEMU's where it has one."""

from __future__ import annotations

import pytest

from simulator.cmdline import CmdlineError, parse
from simulator.model import (
    PROFILES,
    CpuTopology,
    Device,
    DeviceClass,
    MachineType,
    QmpError,
    VMSpec,
    World,
    guest_ack_unplug,
)
from simulator.model.vm import VM

#: 2 of 4 vCPUs online: 2 sockets x 2 cores x 1 thread (the suites' default topology).
SMP = CpuTopology(cpus=2, sockets=2, cores=2, threads=1, maxcpus=4)
QMP = ["-qmp", "unix:/tmp/hvlab-never-bound.sock,server,nowait"]
BOOT = ["-kernel", "k", "-initrd", "i"]


def _vm(profile: str, machine: MachineType = MachineType.Q35, **kw: object) -> tuple[World, VM]:
    w = World()
    spec = VMSpec(machine=machine, smp=kw.pop("smp", SMP), **kw)  # type: ignore[arg-type]
    return w, w.create_vm("vm", spec, profile)


def _desc(reply: object) -> str:
    assert isinstance(reply, QmpError), reply
    return reply.desc


# -- 1. vCPU hotplug ----------------------------------------------------------------------
def test_stratovirt_cpu_hotplug_by_cpu_id() -> None:
    """docs/cpu_hotplug.md and machine/src/standard_common/mod.rs plug_cpu_device.

    1. device_add generic-x86-cpu with cpu-id 2 returns {} with no event in the reply;
       CPU_RESIZE follows from the main loop.
    2. query-cpus still lists the two boot vCPUs (cpu/src/lib.rs online_mask).
    3. The refusals, in plug_cpu_device's order: no cpu-id, a boot vCPU's id, cpu-id at
       maxcpus ("Max cpu-id is 3"), the device id again, the running cpu-id again.
    4. device_del returns {} and CPU_RESIZE follows; once the guest ejected the vCPU its
       cpu-id plugs again.
    5. A VM with no offline vCPU has no hotpluggable cpu-id.
    """
    w, vm = _vm("stratovirt-2.5")
    add = {"id": "cpu2", "driver": "generic-x86-cpu", "cpu-id": 2}
    assert vm.execute("device_add", add) == ({}, [])
    w.advance(0.01)
    assert vm.take_events() == [("CPU_RESIZE", {})]
    cpus, _ = vm.execute("query-cpus", {})
    assert isinstance(cpus, list) and [c["CPU"] for c in cpus] == [0, 1]
    refusals = [
        ({"id": "c", "driver": "generic-x86-cpu"}, "Argument cpu-id is required."),
        ({**add, "id": "c", "cpu-id": 1}, "Cpu-id 1 already exist."),
        ({**add, "id": "c", "cpu-id": 4}, "Max cpu-id is 3"),
        ({**add, "cpu-id": 3}, "Device id cpu2 already existed."),
        ({**add, "id": "c"}, "Cpu-id 2 is running, device id is cpu2."),
    ]
    for args, text in refusals:
        assert _desc(vm.execute("device_add", args)[0]) == text
    assert vm.execute("device_del", {"id": "cpu2"}) == ({}, [])
    w.advance(0.01)
    assert vm.take_events() == [("CPU_RESIZE", {})]
    assert guest_ack_unplug(vm, "cpu2") == []
    assert vm.execute("device_add", {**add, "id": "cpu2b"})[0] == {}
    _, full = _vm("stratovirt-2.5", smp=CpuTopology(cpus=2, sockets=2, cores=1, maxcpus=2))
    reply, _ = full.execute("device_add", add)
    assert _desc(reply) == "There is no hotpluggable cpu-id for this VM."


def test_doc_profile_lists_the_plugged_cpu() -> None:
    """The documents' profile shows a hot-plugged vCPU (S004 查询vCPU上线情况).

    1. After device_add of cpu-id 2, query-cpus lists vCPUs 0, 1 and 2.
    2. query-hotpluggable-cpus gives slot 2 a qom-path.
    """
    _, vm = _vm("stratovirt-doc")
    vm.execute("device_add", {"id": "cpu2", "driver": "generic-x86-cpu", "cpu-id": 2})
    cpus, _ = vm.execute("query-cpus", {})
    assert isinstance(cpus, list) and [c["CPU"] for c in cpus] == [0, 1, 2]
    slots, _ = vm.execute("query-hotpluggable-cpus", {})
    assert isinstance(slots, list) and sum("qom-path" in s for s in slots) == 3


def test_qemu_cpu_hotplug_by_topology() -> None:
    """QEMU 7.2 hw/i386/x86.c x86_cpu_pre_plug: the slot's type and socket/core/thread ids.

    1. The slot type is query-hotpluggable-cpus's; device_add of socket 1 core 0 returns
       {} with no event, and the vCPU is listed at /machine/peripheral/cpu2.
    2. Refusals: a socket beyond the topology, the same device id, the same slot.
    3. device_del returns {}; the guest's _OST says the eject is in progress (naming
       the vCPU), then when it ejected the vCPU DEVICE_DELETED comes for its lapic
       child, then its _OST for the eject done (as QEMU 7.2 with Linux 6.1 does here).
    """
    _, vm = _vm("qemu-7.2")
    slots, _ = vm.execute("query-hotpluggable-cpus", {})
    assert isinstance(slots, list)
    add = {"id": "cpu2", "driver": slots[0]["type"], "socket-id": 1, "core-id": 0, "thread-id": 0}
    assert vm.execute("device_add", add) == ({}, [])
    cpus, _ = vm.execute("query-cpus-fast", {})
    assert isinstance(cpus, list) and cpus[-1]["qom-path"] == "/machine/peripheral/cpu2"
    refusals = [
        ({**add, "id": "c", "socket-id": 2}, "Invalid CPU socket-id: 2 must be in range 0:1"),
        (add, "Duplicate device ID 'cpu2'"),
        ({**add, "id": "c"}, "CPU[2] with APIC ID 2 exists"),
    ]
    for args, text in refusals:
        assert _desc(vm.execute("device_add", args)[0]) == text
    assert vm.execute("device_del", {"id": "cpu2"}) == ({}, [])
    lapic = {"path": "/machine/peripheral/cpu2/lapic"}
    slot = {"source": 3, "slot": "2", "slot-type": "CPU"}
    busy = {"info": {"device": "cpu2", **slot, "status": 0x84}}
    done = {"info": {**slot, "status": 0}}
    assert guest_ack_unplug(vm, "cpu2") == [
        ("ACPI_DEVICE_OST", busy),
        ("DEVICE_DELETED", lapic),
        ("ACPI_DEVICE_OST", done),
    ]
    cpus, _ = vm.execute("query-cpus-fast", {})
    assert isinstance(cpus, list) and len(cpus) == 2


# -- 2. migration URIs --------------------------------------------------------------------
REFUSED = "Connection refused (os error 111)"
SNAPSHOT = "snapshot"


@pytest.mark.parametrize(
    ("profile", "machine", "uri", "outcome"),
    [
        ("stratovirt-2.5", MachineType.Q35, "tcp:localhost:4446", "Invalid uri: {uri}"),
        ("stratovirt-2.5", MachineType.Q35, "tcp:127.0.0.1:65536", "Invalid uri: {uri}"),
        ("stratovirt-2.5", MachineType.Q35, "tcp:127.0.0.1", "Invalid uri: {uri}"),
        ("stratovirt-2.5", MachineType.Q35, "unix:/tmp/a:b", "Invalid uri: {uri}"),
        ("stratovirt-2.5", MachineType.Q35, "file:/tmp/a:b", "Invalid uri: {uri}"),
        ("stratovirt-2.5", MachineType.Q35, "file:/tmp/s,x=y", "Invalid uri: {uri}"),
        ("stratovirt-2.5", MachineType.Q35, "file:/tmp/s,mapped=no", "Invalid uri: {uri}"),
        ("stratovirt-2.5", MachineType.Q35, "nocolon", "Invalid uri: {uri}"),
        ("stratovirt-2.5", MachineType.Q35, "exec:a:b:c", "Invalid uri: {uri}"),
        ("stratovirt-2.5", MachineType.Q35, "exec:cat", "Unknown mode: invalid uri: {uri}"),
        ("stratovirt-2.5", MachineType.Q35, "tCp:127.0.0.1:1", "Unknown mode: invalid uri: {uri}"),
        ("stratovirt-2.5", MachineType.Q35, "TCP:127.0.0.1:1", REFUSED),
        ("stratovirt-2.5", MachineType.Q35, "Tcp:127.0.0.1:+1", REFUSED),
        ("stratovirt-2.5", MachineType.Q35, "FILE:/tmp/s", SNAPSHOT),
        ("stratovirt-2.5", MachineType.Q35, "file:/tmp/s,mapped=false", SNAPSHOT),
        ("stratovirt-2.5", MachineType.MICROVM, "exec:cat", "Unknown mode: invalid uri {uri}"),
        ("stratovirt-2.5", MachineType.MICROVM, "tcp:127.0.0.1:1", "MicroVM does not support"),
        ("stratovirt-2.4", MachineType.Q35, "exec:cat", "Invalid uri: {uri}"),
        ("stratovirt-2.4", MachineType.Q35, "tcp:127.0.0.1:1,x", "Invalid uri: {uri}"),
        ("stratovirt-2.4", MachineType.Q35, "file:/tmp/s,mapped=false", SNAPSHOT),
        ("stratovirt-2.4", MachineType.MICROVM, "exec:cat", "Invalid uri: {uri}"),
    ],
)
def test_migrate_uri_validation(profile: str, machine: MachineType, uri: str, outcome: str) -> None:
    """migrate reads its URI as incoming.rs parse_incoming_uri of the version does.

    1. Unparsable URIs answer "Invalid uri: URI" (2.5: clap options, one ':' at most, none
       in file/unix paths, IPv4:u16 for tcp; 2.4: split at every ':', no options).
    2. A valid URI of an unknown mode answers "Unknown mode: ..." in 2.5, with a colon on
       a standard machine and without on microvm (2.4: "Invalid uri").
    3. A valid tcp URI, upper-case scheme and "+port" included, tries to connect; a valid
       file URI writes the snapshot to its path (2.4: options are part of the path).
    """
    w, vm = _vm(profile, machine)
    reply, _ = vm.execute("migrate", {"uri": uri})
    if outcome == SNAPSHOT:
        assert reply == {}
        path = uri.split(":", 1)[1]
        assert list(w.snapshots) == [path.split(",")[0] if profile == "stratovirt-2.5" else path]
    else:
        assert _desc(reply).startswith(outcome.format(uri=uri))


@pytest.mark.parametrize(
    ("profile", "uri", "text"),
    [
        ("stratovirt-2.5", "tcp:localhost:4446", "Invalid ip address localhost"),
        ("stratovirt-2.5", "tcp:127.0.0.1:70000", "Invalid ip port 70000"),
        ("stratovirt-2.5", "unix:/tmp/a:b", 'IncomingConfig { mode: Unix, uri: "/tmp/a:b"'),
        ("stratovirt-2.5", "exec:cat", "Unsupported incoming unix path type"),
        ("stratovirt-2.4", "exec:cat", "Invalid incoming uri exec:cat"),
    ],
)
def test_incoming_uri_validation(profile: str, uri: str, text: str) -> None:
    """-incoming uses the same parser; a refusal is a start-up error naming the cause.

    1. The command line is refused with incoming.rs's text for the URI.
    """
    argv = ["--profile", profile, "-machine", "q35", *BOOT, *QMP, "-incoming", uri]
    with pytest.raises(CmdlineError) as info:
        parse(argv)
    assert text in str(info.value)


# -- 4. cold-plugged microvm devices ------------------------------------------------------
def _cold_disks(n: int) -> list[str]:
    out: list[str] = []
    for i in range(n):
        out += [
            "-drive",
            f"id=d{i},file=/img{i}",
            "-device",
            f"virtio-blk-device,drive=d{i},id=b{i}",
        ]
    return out


def test_cold_disks_take_microvm_slots() -> None:
    """machine/src/micro_common/mod.rs: a command-line disk fills a replaceable slot.

    1. Five cold disks are refused at start-up ("A maximum of 4 block ...").
    2. With one cold disk, hot-adding into slot 0 is "occupied already".
    3. Slots 1-3 take hot disks; slot 4 is beyond the 4 slots.
    4. The cold disk's config is registered under its device id.
    """
    with pytest.raises(CmdlineError, match="A maximum of 4 block replaceable devices"):
        parse(["--profile", "stratovirt-2.5", "-machine", "microvm", *BOOT, *QMP, *_cold_disks(5)])
    cold = Device("b0", DeviceClass.BLK, "virtio-blk-device", backend="d0")
    _, vm = _vm("stratovirt-2.5", MachineType.MICROVM, devices=(cold,))
    vm.attach_backends({"d0": "/img0"}, {})
    for slot in range(5):
        node = f"drive-{slot}"
        assert vm.execute("blockdev-add", {"node-name": node, "file": {"filename": "/x"}})[0] == {}
        args = {"id": node, "driver": "virtio-blk-mmio", "addr": hex(slot), "drive": node}
        reply, _ = vm.execute("device_add", args)
        if slot == 0:
            assert _desc(reply) == "The slot 0 is occupied already."
        elif slot == 4:
            assert _desc(reply) == "A maximum of block 4 replaceable devices are supported."
        else:
            assert reply == {}, slot
    reply, _ = vm.execute("blockdev-add", {"node-name": "b0", "file": {"filename": "/y"}})
    assert _desc(reply) == "b0 is already registered."


# -- 5. device ids ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("profile", "driver", "text"),
    [
        ("stratovirt-2.5", "virtio-blk-pci", "Device id is empty"),
        ("stratovirt-2.5", "generic-x86-cpu", "Device id is empty"),
        ("stratovirt-2.4", "virtio-net-pci", "Device id is empty"),
        ("qemu-7.2", "virtio-blk-pci", "Parameter 'id' expects an identifier"),
    ],
)
def test_empty_device_id_is_refused(profile: str, driver: str, text: str) -> None:
    """machine/src/lib.rs check_device_id_existed (QEMU: qdev-monitor.c id check).

    1. device_add with id "" on q35 is refused before the driver is looked at.
    """
    _, vm = _vm(profile)
    reply, _ = vm.execute("device_add", {"id": "", "driver": driver, "bus": "pcie.1"})
    assert _desc(reply) == text


# -- 6. build features --------------------------------------------------------------------
ROOT_PORT = Device("pcie.1", DeviceClass.ROOT_PORT, "pcie-root-port", "pcie.0", 2)
VFIO = {"id": "vfio0", "driver": "vfio-pci", "bus": "pcie.1", "addr": "0x0", "host": "0:1a.3"}


def test_vfio_needs_the_vfio_feature() -> None:
    """Cargo.toml [features] vfio = ["machine/vfio_device"], default = [].

    1. A default 2.5 build does not know vfio-pci: device_add is refused, and so is a
       -device vfio-pci on the command line.
    2. A 2.5 build with the vfio feature (--build-features vfio) accepts both.
    3. 2.4 built vfio-pci always.
    """
    _, vm = _vm("stratovirt-2.5", devices=(ROOT_PORT,))
    reply, _ = vm.execute("device_add", VFIO)
    assert _desc(reply) == "Failed to add device: Driver vfio-pci is not support"
    argv = ["--profile", "stratovirt-2.5", "-machine", "q35", *BOOT, *QMP]
    cold = ["-device", "vfio-pci,id=v0,host=0000:1a:00.3,bus=pcie.0,addr=0x5"]
    with pytest.raises(CmdlineError, match='Unsupported device: "vfio-pci"'):
        parse(argv + cold)
    cfg = parse(["--build-features", "vfio", *argv, *cold])
    built = cfg.product_profile()
    assert built.build_features and not PROFILES["stratovirt-2.5"].build_features
    w = World()
    vm = w.create_vm("vm", VMSpec(machine=MachineType.Q35, devices=(ROOT_PORT,)), built)
    assert vm.execute("device_add", VFIO)[0] == {}
    _, old = _vm("stratovirt-2.4", devices=(ROOT_PORT,))
    assert old.execute("device_add", VFIO)[0] == {}
