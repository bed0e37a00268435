"""QEMU 7.2's device and backend commands, in QEMU's order of checks and in its words.

The qemu-7.2 profile's ``hotplug_api`` points here (StratoVirt's rules stay in
vm_hotplug.py). Sources, QEMU 7.2:

- device_add: softmmu/qdev-monitor.c qmp_device_add -> qemu_opts_from_qdict (the id
  must be an identifier, util/id.c id_wellformed) -> qdev_device_add_from_qdict (driver,
  bus, "does not support hotplugging", "device_add not allowed while migrating",
  qdev_set_id's "Duplicate device ID", the properties: hw/core/qdev-properties-system.c
  set_drive_helper/set_netdev, then realize: hw/pci/pci.c do_pci_register_device's devfn
  checks). A virtio-*-pci proxy aliases its virtio-*-device child's properties
  (hw/virtio/virtio-pci.c virtio_instance_init_common), so errors name the child type.
- device_del: qmp_device_del (find_device_state, "already in the process of unplug"
  while pending_deleted_event is set), qdev_unplug, hw/pci/pcie.c
  pcie_cap_slot_unplug_request_cb: a slot the guest never powered on, or a device off
  function 0 of the port, goes at once without the guest; otherwise the attention
  button is pressed and the guest releases it later. Deleting a virtio proxy deletes
  its unnamed virtio-backend child first: two DEVICE_DELETED events.
- blockdev-add / -del: qapi BlockdevOptions (driver is mandatory), block.c
  bdrv_assign_node_name, block/file-posix.c raw_open_common, block/qcow2.c
  qcow2_do_open, blockdev.c qmp_blockdev_del.
- netdev_add / _del: net/net.c qmp_netdev_add, net_client_init1, qmp_netdev_del.
"""

from __future__ import annotations

from simulator.model import vm_cpus
from simulator.model.devices import DRIVERS, Device, DeviceClass, Hotplug
from simulator.model.errors import JSON, ErrorClass, Event, QmpFailure, Reply
from simulator.model.vm import GUEST_RUNS, VM
from simulator.model.vm_migration import migration_idle

#: qcow2's magic "QFI\xfb" (block/qcow2.h QCOW_MAGIC)
QCOW2_MAGIC = b"QFI\xfb"
#: Network backends the Debian build has (qapi/net.json NetClientDriver, CONFIG_* set)
NETDEV_TYPES = (
    *("none", "nic", "user", "tap", "l2tpv3", "socket", "stream", "dgram", "vde"),
    *("bridge", "hubport", "netmap", "vhost-user", "vhost-vdpa"),
)
#: Block drivers this model opens (others answer as unknown to the model)
BLOCK_DRIVERS = ("raw", "qcow2", "file")
#: the virtio device behind each virtio-*-pci proxy (its properties are aliased)
VIRTIO_CHILD = {"virtio-blk-pci": "virtio-blk-device", "virtio-net-pci": "virtio-net-device"}


def id_wellformed(text: str) -> bool:
    """util/id.c: a letter, then letters, digits, '-', '.' or '_'."""
    return (
        bool(text)
        and text[0].isascii()
        and text[0].isalpha()
        and all(c.isascii() and (c.isalnum() or c in "-._") for c in text[1:])
    )


# -- backends --------------------------------------------------------------------------------
def blockdev_add(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    if "driver" not in args:
        raise QmpFailure("Parameter 'driver' is missing")
    driver = args["driver"]
    if driver not in BLOCK_DRIVERS:
        raise QmpFailure(f"Parameter 'driver' does not accept value '{driver}'")
    # the variant's mandatory members (BlockdevOptionsGenericFormat: file;
    # BlockdevOptionsFile: filename), then blockdev.c qmp_blockdev_add's node name
    member = "filename" if driver == "file" else "file"
    if member not in args:
        raise QmpFailure(f"Parameter '{member}' is missing")
    if "node-name" not in args:
        raise QmpFailure("'node-name' must be specified for the root node")
    node = str(args["node-name"])
    # block.c bdrv_open_inherit opens the "file" child before the format node takes its
    # name (bdrv_open_common -> bdrv_assign_node_name), whose driver then reads the header
    file = args.get("file")
    filename = str(file.get("filename", "")) if isinstance(file, dict) else ""
    head = vm.world.host_file(filename) if vm.world.host_file is not None else b""
    if head is None:
        raise QmpFailure(f"Could not open '{filename}': No such file or directory")
    if node in vm.table.blockdevs:
        raise QmpFailure(f"Duplicate nodes with node-name='{node}'")
    if node in vm.table.devices:
        raise QmpFailure(f"node-name={node} is conflicting with a device id")
    if driver == "qcow2" and head[:4] != QCOW2_MAGIC:
        raise QmpFailure("Image is not in qcow2 format")
    vm.table.blockdevs[node] = filename
    return {}, []


def blockdev_del(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    node = str(args["node-name"])
    if node not in vm.table.blockdevs:
        raise QmpFailure(f"Failed to find node with node-name='{node}'")
    if any(d.backend == node and d.cls is DeviceClass.BLK for d in vm.table.devices.values()):
        raise QmpFailure(f"Node {node} is in use")
    del vm.table.blockdevs[node]
    return {}, []


def netdev_add(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    kind, nid = args["type"], str(args["id"])
    if kind not in NETDEV_TYPES:
        raise QmpFailure(f"Parameter 'type' does not accept value '{kind}'")
    if not id_wellformed(nid):
        raise QmpFailure("Parameter 'id' expects an identifier")
    if nid in vm.table.netdevs:
        raise QmpFailure(f"Duplicate ID '{nid}'")
    vm.table.netdevs[nid] = str(args.get("ifname", ""))
    if kind == "user":
        vm.table.slirp.add(nid)
    return {}, []


def netdev_del(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    """qemu_del_net_client: a backend a NIC uses goes from the list (its NIC's link goes
    down), so its id can be added again."""
    nid = str(args["id"])
    if vm.table.netdevs.pop(nid, None) is None:
        raise QmpFailure(f"Device '{nid}' not found", ErrorClass.DEVICE_NOT_FOUND)
    vm.table.slirp.discard(nid)
    return {}, []


# -- devices ---------------------------------------------------------------------------------
def _bus(vm: VM, args: JSON, driver: str) -> str:
    """qbus_find, then whether the bus takes hotplug (QERR_BUS_NO_HOTPLUG)."""
    path = args.get("bus")
    root = vm.rules.buses[0] if vm.rules.buses else None
    if path is None:
        if root is None:
            raise QmpFailure(f"No 'PCI' bus found for device '{driver}'")
        path = root
    port = vm.table.devices.get(str(path))
    if path != root and (port is None or port.cls is not DeviceClass.ROOT_PORT):
        raise QmpFailure(f"Bus '{path}' not found")
    if path == root and vm.rules.pci and root == "pcie.0":
        raise QmpFailure(f"Bus '{root}' does not support hotplugging")
    return str(path)


def _devfn(raw: object, driver: str) -> int:
    text = str(raw)
    try:
        slot, _, func = text.partition(".")
        return int(slot, 16) * 8 + (int(func, 16) if func else 0)
    except ValueError:
        raise QmpFailure(f"Property '{driver}.addr' doesn't take value '{text}'") from None


def _pc_slot(vm: VM, args: JSON, bus: str, driver: str) -> int:
    """QEMU pc: devices go onto the root bus (ACPI hotplug, hw/acpi/pcihp.c); without
    ``addr`` the first free slot (hw/pci/pci.c do_pci_register_device; slots 0 and 1 hold
    the host bridge and the PIIX3). The model keeps slot numbers on this bus."""
    used = {d.addr for d in vm.table.devices.values() if d.bus == bus}
    if "addr" in args:
        slot = _devfn(args["addr"], driver) // 8
        if slot in used or slot < 2:
            raise QmpFailure(f"PCI: slot {slot} function 0 not available for {driver}")
        return slot
    free = [n for n in range(2, 32) if n not in used]
    if not free:
        raise QmpFailure(f"PCI: no slot/function available for {driver}, all in use")
    return free[0]


def device_add(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    dev_id = args.get("id")
    if isinstance(dev_id, str) and not id_wellformed(dev_id):
        raise QmpFailure("Parameter 'id' expects an identifier")
    if "driver" not in args:
        raise QmpFailure("Parameter 'driver' is missing")
    driver = str(args["driver"])
    cpu = vm_cpus.is_cpu_driver(vm, driver)
    cls = DRIVERS.get(driver)
    if not cpu and cls not in (DeviceClass.BLK, DeviceClass.NET, DeviceClass.VFIO):
        raise QmpFailure(f"'{driver}' is not a valid device model name")
    if cpu and not vm_cpus.creatable(vm):
        raise QmpFailure("Parameter 'driver' expects a pluggable device type")
    bus = None if cpu else _bus(vm, args, driver)
    if not migration_idle(vm):
        raise QmpFailure("device_add not allowed while migrating")
    dev_id = str(dev_id) if dev_id is not None else ""
    if dev_id in vm.table.devices:
        raise QmpFailure(f"Duplicate device ID '{dev_id}'")
    if cpu:
        reply, events = vm_cpus.plug(vm, args, dev_id, driver)
        if vm.running:
            vm.pending.extend(vm_cpus.inserted(vm, dev_id))
        else:
            vm.table.unannounced.add(dev_id)
        return reply, events
    assert bus is not None and cls is not None
    child = VIRTIO_CHILD.get(driver, driver)
    backend = None
    if cls is DeviceClass.BLK:
        backend = str(args.get("drive", ""))
        if backend not in vm.table.blockdevs:
            raise QmpFailure(f"Property '{child}.drive' can't find value '{backend}'")
        if any(d.backend == backend and d.cls is cls for d in vm.table.devices.values()):
            raise QmpFailure(f"Drive '{backend}' is already in use by another device")
        if backend in vm.table.inactive:  # realize: blk_set_perm on an inactive node
            raise QmpFailure("Block node is read-only")
    elif cls is DeviceClass.NET:
        backend = str(args.get("netdev", ""))
        if backend not in vm.table.netdevs:
            raise QmpFailure(f"Property '{child}.netdev' can't find value '{backend}'")
        if any(d.backend == backend and d.cls is cls for d in vm.table.devices.values()):
            raise QmpFailure(f"Property '{child}.netdev' can't take value '{backend}', it's in use")
    if vm.rules.hotplug is Hotplug.ACPI_PCI:
        devfn = _pc_slot(vm, args, bus, driver)
    else:
        devfn = _devfn(args.get("addr", "0x0"), driver)
    there = next((d for d in vm.table.devices.values() if d.bus == bus and d.addr == devfn), None)
    if there is not None:
        raise QmpFailure(
            f"PCI: slot {devfn // 8} function {devfn % 8} not available for {driver}, "
            f"in use by {there.driver},id={there.id}"
        )
    dev = Device(dev_id, cls, driver, bus, devfn, args.get("mac"), backend, hotplugged=True)
    vm.table.devices[dev_id] = dev
    if vm.running:
        vm.table.powered.add(dev_id)  # the guest's pciehp powers the slot on at once
    return {}, []


def deleted_events(vm: VM, dev: Device) -> list[Event]:
    """DEVICE_DELETED for the proxy's unnamed virtio child, then for the device."""
    path = vm.profile.deleted_path_prefix + dev.id
    out: list[Event] = []
    if dev.driver in VIRTIO_CHILD:
        out.append(("DEVICE_DELETED", {"path": f"{path}/virtio-backend"}))
    out.append(("DEVICE_DELETED", {"device": dev.id, "path": path}))
    return out


def device_del(vm: VM, args: JSON) -> tuple[Reply, list[Event]]:
    dev_id = str(args["id"])
    dev = vm.table.devices.get(dev_id)
    if dev is None:
        raise QmpFailure(f"Device '{dev_id}' not found", ErrorClass.DEVICE_NOT_FOUND)
    if dev_id in vm.table.pending_unplug:
        raise QmpFailure(f"Device {dev_id} is already in the process of unplug")
    if dev.cls is DeviceClass.ROOT_PORT or (not dev.hotplugged and dev.bus == "pcie.0"):
        raise QmpFailure("Bus 'pcie.0' does not support hotplugging")
    if not migration_idle(vm):
        raise QmpFailure("device_del not allowed while migrating")
    if dev.cls is DeviceClass.CPU:
        return vm_cpus.unplug(vm, dev)
    if dev.addr != 0 or dev_id not in vm.table.powered:
        # no round trip to the guest: a function it cannot see, or a slot it never
        # powered on (pcie_cap_slot_unplug_request_cb -> pcie_cap_slot_do_unplug)
        del vm.table.devices[dev_id]
        return {}, deleted_events(vm, dev)
    vm.table.pending_unplug.add(dev_id)
    return {}, []


def guest_runs(vm: VM) -> list[Event]:
    """The guest runs again: it powers on the slots plugged while it was paused and
    handles the vCPU insertions it was told of (hw/acpi/cpu.c: its _OST)."""
    vm.table.powered.update(
        d.id for d in vm.table.devices.values() if d.hotplugged and d.cls is not DeviceClass.CPU
    )
    out: list[Event] = []
    for dev_id in sorted(vm.table.unannounced):
        if dev_id in vm.table.devices:
            out += vm_cpus.inserted(vm, dev_id)
    vm.table.unannounced.clear()
    return out


GUEST_RUNS.append(guest_runs)
