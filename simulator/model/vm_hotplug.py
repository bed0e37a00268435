"""device_add / device_del / blockdev-* / netdev_* (hotplug rules per machine + profile).

Microvm: replaceable virtio-mmio slots (machine/src/micro_common/mod.rs: 4 blk + 2 net in
code, 6 blk in the docs); the device id must equal the backend id; DEVICE_DELETED at once.
PCI machines: only into a pcie-root-port at addr 0 (devices/src/pci/root_port.rs);
QEMU pc: onto pci.0 (ACPI PCI hotplug); isapc has no PCI bus. DEVICE_DELETED only after
the guest acknowledges (``guest_ack_unplug``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from simulator.model import qemu_qdev, vm_cpus
from simulator.model.devices import DRIVERS, SLOT_BUS, Device, DeviceClass, Hotplug
from simulator.model.errors import JSON, Event, QmpFailure, Reply
from simulator.model.profile_kinds import HotplugApi
from simulator.model.vm import VM, command

Handler = Callable[[VM, JSON], tuple[Reply, list[Event]]]
#: The qemu-7.2 profile's device and backend commands (qemu_qdev.py).
QEMU: Mapping[str, Handler] = {
    "blockdev-add": qemu_qdev.blockdev_add,
    "blockdev-del": qemu_qdev.blockdev_del,
    "netdev_add": qemu_qdev.netdev_add,
    "netdev_del": qemu_qdev.netdev_del,
    "device_add": qemu_qdev.device_add,
    "device_del": qemu_qdev.device_del,
}


def _api(name: str) -> Callable[[Handler], Handler]:
    """Register ``name``: StratoVirt's rules below, QEMU's where the profile says so."""

    def deco(fn: Handler) -> Handler:
        def run(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
            if vm.profile.hotplug_api is HotplugApi.QEMU_QDEV:
                return QEMU[name](vm, args)
            return fn(vm, args)

        command(name)(run)
        return fn

    return deco


def _addr(vm: VM, dev_id: str, raw: object) -> int:
    if not isinstance(raw, str):
        raise QmpFailure(f"Invalid addr for device {dev_id}")
    try:
        return int(raw, 16) if raw.lower().startswith("0x") else int(raw)
    except ValueError as exc:
        raise QmpFailure(f"Invalid addr for device {dev_id}") from exc


@_api("blockdev-add")
def _blockdev_add(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    node = str(args["node-name"])
    if node in vm.table.blockdevs:
        if vm.rules.hotplug is Hotplug.MMIO_SLOTS:
            raise QmpFailure(f"{node} is already registered.")
        raise QmpFailure(f"Drive {node} has been added")
    used = len(vm.table.blockdevs) + len(vm.table.netdevs)
    limit = vm.profile.microvm_config_limit
    if vm.rules.hotplug is Hotplug.MMIO_SLOTS and limit and used >= limit:
        raise QmpFailure(f"A maximum of  {limit} replaceable devices are supported.")
    vm.table.blockdevs[node] = str(args.get("file", {}).get("filename", ""))
    return {}, []


@_api("blockdev-del")
def _blockdev_del(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    if vm.rules.hotplug is Hotplug.MMIO_SLOTS:
        raise QmpFailure("blockdev_del not support yet")
    node = str(args["node-name"])
    if vm.table.blockdevs.pop(node, None) is None:
        raise QmpFailure(f"Drive {node} not found")
    return {}, []


@_api("netdev_add")
def _netdev_add(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    nid = str(args["id"])
    if nid in vm.table.netdevs:
        raise QmpFailure(f'Netdev "{nid}" has been added')
    vm.table.netdevs[nid] = str(args.get("ifname", ""))
    return {}, []


@_api("netdev_del")
def _netdev_del(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    if vm.rules.hotplug is Hotplug.MMIO_SLOTS:
        raise QmpFailure("netdev_del not support yet")
    nid = str(args["id"])
    if vm.table.netdevs.pop(nid, None) is None:
        raise QmpFailure(f"Netdev {nid} not found")
    return {}, []


def _mmio_add(vm: VM, args: JSON, dev_id: str, driver: str) -> Device:
    p = vm.profile
    if "addr" in args:
        slot = _addr(vm, dev_id, args["addr"])
    else:
        slot = int(args["lun"]) + 1 if "lun" in args else 0
    if "net" in driver:
        cls, limit, backends, need = (
            DeviceClass.NET,
            p.microvm_net_slots,
            vm.table.netdevs,
            "chardev",
        )
        text = f"A maximum of net {limit} replaceable devices are supported."
    elif "blk" in driver:
        cls, limit, backends, need = (
            DeviceClass.BLK,
            p.microvm_blk_slots,
            vm.table.blockdevs,
            "drive",
        )
        text = f"A maximum of block {limit} replaceable devices are supported."
    else:
        raise QmpFailure("Unsupported replaceable device type.")
    if dev_id not in vm.table.blockdevs and dev_id not in vm.table.netdevs:
        raise QmpFailure("Failed to find device configuration.")
    if slot >= limit:
        raise QmpFailure(text)
    if dev_id not in backends:
        raise QmpFailure(
            f"The device type is {cls.value.split('-')[1]}, "
            "but the target config is not for this type."
        )
    if p.microvm_needs_backend_arg and need not in args:
        raise QmpFailure(f"No {need} set")
    bus = SLOT_BUS[cls]
    if vm.table.at(bus, slot) is not None:
        raise QmpFailure(f"The slot {slot} is occupied already.")
    return Device(dev_id, cls, driver, bus, slot, args.get("mac"), dev_id, hotplugged=True)


def _pci_class(vm: VM, args: JSON, driver: str) -> DeviceClass:
    """The device class of a PCI device_add, once its driver and backend are checked
    (the id was checked by device_add)."""
    cls = DRIVERS.get(driver)
    if cls not in (DeviceClass.BLK, DeviceClass.NET, DeviceClass.VFIO) or not _built(vm, driver):
        raise QmpFailure(f"Failed to add device: Driver {driver} is not support")
    if cls is DeviceClass.BLK and args.get("drive") not in vm.table.blockdevs:
        raise QmpFailure("Failed to add virtio pci blk: No drive configured matched for blk device")
    if cls is DeviceClass.NET and args.get("netdev") not in vm.table.netdevs:
        raise QmpFailure(
            f'Failed to add virtio pci net: Netdev: "{args.get("netdev")}" not found for net device'
        )
    return cls


def _acpi_pci_add(vm: VM, args: JSON, dev_id: str, driver: str) -> Device:
    """QEMU pc: onto the root bus (hw/i386/acpi-build.c, hw/acpi/pcihp.c); without ``addr``
    the first free slot (slots 0 and 1 hold the host bridge and the PIIX3)."""
    root = vm.rules.buses[0]
    bus = str(args.get("bus", root))
    if bus != root:
        raise QmpFailure(f"Bus '{bus}' not found")
    cls = _pci_class(vm, args, driver)
    used = {d.addr for d in vm.table.devices.values() if d.bus == root}
    if "addr" in args:
        slot = _addr(vm, dev_id, args["addr"])
        if slot in used or slot < 2:
            raise QmpFailure(f"PCI: slot {slot} function 0 not available for {driver}")
    else:
        free = [n for n in range(2, 32) if n not in used]
        if not free:
            raise QmpFailure(f"PCI: no slot/function available for {driver}, all in use")
        slot = free[0]
    backend = args.get("drive") or args.get("netdev")
    return Device(dev_id, cls, driver, root, slot, args.get("mac"), backend, hotplugged=True)


def _pci_add(vm: VM, args: JSON, dev_id: str, driver: str) -> Device:
    cls = _pci_class(vm, args, driver)
    bus = args.get("bus")
    port = vm.table.devices.get(str(bus)) if bus else None
    if bus == "pcie.0":
        raise QmpFailure(
            "Failed to plug device: No hot plug controller found for bus pcie.0 when plug"
        )
    if port is None or port.cls is not DeviceClass.ROOT_PORT:
        raise QmpFailure(f"Failed to add virtio pci device: Parent bus :{bus} not found")
    addr = _addr(vm, dev_id, args.get("addr", "0x0"))
    if addr != 0 and vm.profile.root_port_slot_check:
        raise QmpFailure(
            f"Failed to plug device: HotPlug is not supported for device with devfn {addr * 8}"
        )
    if vm.table.at(str(bus), addr) is not None:
        raise QmpFailure("Failed to plug device: Guest is still on the fly of another (un)plugging")
    backend = args.get("drive") or args.get("netdev")
    return Device(dev_id, cls, driver, str(bus), addr, args.get("mac"), backend, hotplugged=True)


def _built(vm: VM, driver: str) -> bool:
    """The build has the driver (a feature-gated one needs its cargo feature)."""
    feature = vm.profile.driver_features.get(driver)
    return feature is None or feature in vm.profile.build_features


@_api("device_add")
def _device_add(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    dev_id, driver = str(args["id"]), str(args["driver"])
    if not dev_id and (vm.rules.pci or vm.profile.empty_id_checked_on_microvm):
        raise QmpFailure(vm.profile.empty_id_error)
    if vm.rules.hotplug is Hotplug.MMIO_SLOTS:
        dev = _mmio_add(vm, args, dev_id, driver)
    else:
        # machine/src/lib.rs check_device_id_existed: devices on the PCI buses
        known = vm.table.devices.get(dev_id)
        if known is not None and known.cls is not DeviceClass.CPU:
            raise QmpFailure(f"Device id {dev_id} existed")
        if vm_cpus.is_cpu_driver(vm, driver):
            return vm_cpus.plug(vm, args, dev_id, driver)
        if vm.rules.hotplug is Hotplug.NONE:
            raise QmpFailure(f"No 'PCI' bus found for device '{driver}'")
        if vm.rules.hotplug is Hotplug.ACPI_PCI:
            dev = _acpi_pci_add(vm, args, dev_id, driver)
        else:
            dev = _pci_add(vm, args, dev_id, driver)
    vm.table.devices[dev_id] = dev
    return {}, []


@_api("device_del")
def _device_del(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    dev_id = str(args["id"])
    dev = vm.table.devices.get(dev_id)
    if dev is None:
        raise QmpFailure(f"Device {dev_id} not found")
    if dev.cls is DeviceClass.CPU:
        return vm_cpus.unplug(vm, dev)
    if vm.rules.hotplug is Hotplug.MMIO_SLOTS:
        del vm.table.devices[dev_id]
        vm.table.blockdevs.pop(dev_id, None)
        vm.table.netdevs.pop(dev_id, None)
        return {}, [("DEVICE_DELETED", {"device": dev_id, "path": dev_id})]
    if dev.bus == "pcie.0":
        raise QmpFailure("No hot plug controller found for bus pcie.0 when unplug request")
    if dev_id in vm.table.pending_unplug:
        raise QmpFailure("Guest is still on the fly of another (un)plugging")
    vm.table.pending_unplug.add(dev_id)
    return {}, []


def guest_ack_unplug(vm: VM, dev_id: str) -> list[Event]:
    """The guest powers the slot off: the device goes and DEVICE_DELETED is raised."""
    if dev_id not in vm.table.pending_unplug:
        return []
    vm.table.pending_unplug.discard(dev_id)
    dev = vm.table.devices.pop(dev_id, None)
    if dev is not None and dev.cls is DeviceClass.CPU:
        ev = vm_cpus.ejected(vm, dev)
    elif dev is not None and vm.profile.hotplug_api is HotplugApi.QEMU_QDEV:
        vm.table.powered.discard(dev_id)
        ev = qemu_qdev.deleted_events(vm, dev)
    else:
        path = vm.profile.deleted_path_prefix + dev_id
        ev = [("DEVICE_DELETED", {"device": dev_id, "path": path})]
    vm.pending.extend(ev)
    return ev
