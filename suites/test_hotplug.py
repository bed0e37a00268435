"""Disk, NIC and balloon management on standard machines (S004 "管理虚拟机资源")."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from harness import hotplug
from harness.errors import QMPCommandError
from harness.fixtures import VMFactory
from harness.machine import Machine
from harness.spec import DeviceSpec, MachineType, VMSpec
from harness.waits import wait_for
from suites.catalog import ErrorReply, Expect, SlotLimit

MAC = "52:54:00:12:34:56"


@pytest.fixture
def hotplug_spec(standard_spec: VMSpec) -> VMSpec:
    """The standard machine with two root ports (pcie.1, pcie.2) configured before boot."""
    return dataclasses.replace(standard_spec, devices=hotplug.root_ports(2))


def assert_error_reply(error: QMPCommandError, expected: ErrorReply) -> None:
    """The QMP error has the expected class and contains the expected desc text."""
    problem = expected.mismatch(error.error_class, error.desc)
    assert problem is None, problem


def guest_has(vm: Machine, command: str, expected: str | None, timeout: float = 60) -> str:
    """Poll a guest command until its output contains ``expected`` (None: until it is empty)."""

    def probe() -> str | None:
        out = vm.console.run(command)[1].strip()
        if expected is None:
            return "gone" if not out else None
        return out if expected in out else None

    return wait_for(probe, timeout, f"guest output of '{command}' to show {expected!r}")


@pytest.mark.catalog("HP-BLK-STD", "HP-BLK-UNPLUG")
def test_disk_hotplug_and_unplug(vms: VMFactory, hotplug_spec: VMSpec) -> None:
    """A disk goes into a root port and comes out again.

    1. blockdev-add of an image file returns {}.
    2. device_add of virtio-blk-pci on bus pcie.1, addr 0x0, returns {}.
    3. The guest sees a new block device vda.
    4. device_del returns and DEVICE_DELETED names the device once the guest lets go.
    5. The guest no longer has vda.
    6. blockdev-del of the backend returns {}.
    """
    vm = vms.launch(hotplug_spec)
    image = hotplug.sparse_image(vms.artifacts / "disk0.raw", 16 << 20)
    assert hotplug.add_disk_backend(vm, "drive-0", str(image)) == {}
    assert hotplug.add_disk(vm, "drive-0", "drive-0", "pcie.1") == {}
    guest_has(vm, "ls /sys/block", "vda")
    event = hotplug.unplug(vm, "drive-0")
    assert event["data"]["device"] == "drive-0"
    guest_has(vm, "ls /sys/block | grep vd || true", None)
    assert vm.qmp.execute("blockdev-del", {"node-name": "drive-0"}) == {}


@pytest.mark.catalog("HP-NET-STD", "HP-NET-UNPLUG")
def test_nic_hotplug_and_unplug(vms: VMFactory, hotplug_spec: VMSpec) -> None:
    """A NIC goes into a root port and comes out again.

    1. netdev_add returns {}.
    2. device_add of virtio-net-pci on pcie.2, addr 0x0, with a MAC returns {}.
    3. The guest sees a new interface with that MAC.
    4. device_del returns and DEVICE_DELETED names the device.
    5. The interface is gone from the guest.
    6. netdev_del of the backend returns {}.
    """
    vm = vms.launch(hotplug_spec)
    assert hotplug.add_nic_backend(vm, "net-0") == {}
    assert hotplug.add_nic(vm, "net-0", "net-0", MAC, "pcie.2") == {}
    guest_has(vm, "cat /sys/class/net/eth*/address 2>/dev/null || true", MAC)
    event = hotplug.unplug(vm, "net-0")
    assert event["data"]["device"] == "net-0"
    guest_has(vm, "cat /sys/class/net/eth*/address 2>/dev/null || true", None)
    assert vm.qmp.execute("netdev_del", {"id": "net-0"}) == {}


@pytest.mark.catalog("HP-STD-ADDR0")
def test_root_port_slot_other_than_zero_is_refused(
    vms: VMFactory, hotplug_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """A root port has one slot: addr must be 0x0.

    1. device_add on pcie.1 with addr 0x1 is refused with the catalog's error class and
       desc text.
    2. The same device at addr 0x0 is then accepted (the port was left usable).
    """
    expected = expect("HP-STD-ADDR0").value
    assert isinstance(expected, ErrorReply)
    vm = vms.launch(hotplug_spec, wait_guest=False)
    image = hotplug.sparse_image(vms.artifacts / "disk1.raw", 1 << 20)
    hotplug.add_disk_backend(vm, "drive-1", str(image))
    with pytest.raises(QMPCommandError) as info:
        hotplug.add_disk(vm, "drive-1", "drive-1", "pcie.1", addr="0x1")
    assert_error_reply(info.value, expected)
    assert hotplug.add_disk(vm, "drive-1", "drive-1", "pcie.1") == {}


@pytest.mark.catalog("HP-STD-ROOTPORT")
def test_documented_slot_rules(
    vms: VMFactory, hotplug_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """StratoVirt-only rule (applied by the catalog; QEMU marks it n/a).

    1. Hotplug straight onto pcie.0 is refused (root ports only) with the catalog's
       error class and desc text.
    """
    expected = expect("HP-STD-ROOTPORT").value
    assert isinstance(expected, ErrorReply)
    vm = vms.launch(hotplug_spec, wait_guest=False)
    image = hotplug.sparse_image(vms.artifacts / "disk2.raw", 1 << 20)
    hotplug.add_disk_backend(vm, "drive-2", str(image))
    with pytest.raises(QMPCommandError) as info:
        hotplug.add_disk(vm, "drive-2", "drive-2", "pcie.0", addr="0x9")
    assert_error_reply(info.value, expected)


@pytest.mark.catalog("HP-VFIO")
def test_vfio_hotplug_into_root_port(vms: VMFactory, hotplug_spec: VMSpec) -> None:
    """A passed-through device goes into a root port (S004 "热插拔直通设备").

    1. device_add of vfio-pci with the host device's address on pcie.1, addr 0x0,
       returns {}.
    """
    vm = vms.launch(hotplug_spec, wait_guest=False)
    args = {"id": "vfio-0", "driver": "vfio-pci", "bus": "pcie.1", "addr": "0x0"}
    assert vm.qmp.execute("device_add", {**args, "host": "0000:1a:00.3"}) == {}


def _microvm(vms: VMFactory, spec: VMSpec) -> Machine:
    return vms.launch(dataclasses.replace(spec, machine=MachineType.MICROVM), wait_guest=False)


@pytest.mark.catalog("HP-MMIO-BLK-MAX")
def test_microvm_disk_slots(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """microvm takes hot-plugged disks up to the documented maximum (S004 "热插磁盘").

    1. Each documented slot takes a disk: blockdev-add, then device_add of
       virtio-blk-mmio at the next addr, both {}.
    2. One disk more is refused with the catalog's error class and desc text.
    """
    vm = _microvm(vms, standard_spec)
    limit = expect("HP-MMIO-BLK-MAX").value
    assert isinstance(limit, SlotLimit)

    def plug(i: int) -> Any:
        image = hotplug.sparse_image(vms.artifacts / f"slot{i}.raw", 1 << 20)
        node = f"drive-{i}"
        hotplug.add_disk_backend(vm, node, str(image))
        args = {"id": node, "driver": "virtio-blk-mmio", "addr": hex(i), "drive": node}
        return vm.qmp.execute("device_add", args)

    fill_slots(plug, limit)


def fill_slots(plug: Callable[[int], Any], limit: SlotLimit) -> None:
    """Plug ``limit.count`` devices (each answered {}), then one more, refused as expected."""
    for i in range(limit.count):
        assert plug(i) == {}, i
    with pytest.raises(QMPCommandError) as info:
        plug(limit.count)
    assert_error_reply(info.value, limit.refusal)


@pytest.mark.catalog("HP-MMIO-NET-MAX")
def test_microvm_nic_slots(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """microvm takes hot-plugged NICs up to the documented maximum (S004 "热插网卡").

    1. Each documented slot takes a NIC: netdev_add, then device_add of
       virtio-net-mmio at the next addr, both {}.
    2. One NIC more is refused with the catalog's error class and desc text.
    """
    vm = _microvm(vms, standard_spec)
    limit = expect("HP-MMIO-NET-MAX").value
    assert isinstance(limit, SlotLimit)

    def plug(i: int) -> Any:
        nid = f"net-{i}"
        hotplug.add_nic_backend(vm, nid)
        args = {
            "id": nid,
            "driver": "virtio-net-mmio",
            "addr": hex(i),
            "netdev": nid,
            "chardev": nid,
            "mac": f"52:54:00:12:35:{i:02x}",
        }
        return vm.qmp.execute("device_add", args)

    fill_slots(plug, limit)


@pytest.mark.catalog("BALLOON")
def test_balloon_sets_guest_size(vms: VMFactory, standard_spec: VMSpec) -> None:
    """balloon asks the guest to give memory back; query-balloon reports it.

    1. balloon to half the memory returns {}.
    2. query-balloon's actual reaches that value once the guest driver complies.
    """
    spec = dataclasses.replace(
        standard_spec, devices=(DeviceSpec("virtio-balloon-pci", "balloon0"),)
    )
    vm = vms.launch(spec)
    target_bytes = spec.memory_mib * (1 << 20) // 2
    assert vm.qmp.execute("balloon", {"value": target_bytes}) == {}
    wait_for(
        lambda: vm.qmp.execute("query-balloon")["actual"] == target_bytes,
        60,
        "query-balloon actual to reach the balloon target",
    )
