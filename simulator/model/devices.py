"""Devices, machine types and vCPU topology: the static shape of a VM."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum


class DeviceClass(Enum):
    """What a device is, independent of its transport."""

    BLK = "virtio-blk"
    NET = "virtio-net"
    VFIO = "vfio-pci"
    VHOST_NET = "vhost-net"
    VHOST_USER_NET = "vhost-user-net"
    BALLOON = "virtio-balloon"
    ROOT_PORT = "pcie-root-port"
    CPU = "cpu"


#: -device / device_add driver names (QEMU and StratoVirt spellings).
DRIVERS: dict[str, DeviceClass] = {
    "virtio-blk-pci": DeviceClass.BLK,
    "virtio-blk-device": DeviceClass.BLK,
    "virtio-blk-mmio": DeviceClass.BLK,
    "virtio-net-pci": DeviceClass.NET,
    "virtio-net-device": DeviceClass.NET,
    "virtio-net-mmio": DeviceClass.NET,
    "vfio-pci": DeviceClass.VFIO,
    "virtio-balloon-pci": DeviceClass.BALLOON,
    "virtio-balloon-device": DeviceClass.BALLOON,
    "pcie-root-port": DeviceClass.ROOT_PORT,
    "generic-x86-cpu": DeviceClass.CPU,
}


@dataclass(frozen=True)
class Device:
    """One device instance; ``bus``/``addr`` form its BDF on PCI machines."""

    id: str
    cls: DeviceClass
    driver: str
    bus: str | None = None
    addr: int | None = None
    mac: str | None = None
    backend: str | None = None
    hotplugged: bool = False


class MachineType(Enum):
    MICROVM = "microvm"
    Q35 = "q35"
    VIRT = "virt"
    PC = "pc"  # QEMU i440FX + PIIX (the x86_64 default machine)
    ISAPC = "isapc"  # QEMU ISA-only PC: no PCI bus


class Hotplug(Enum):
    MMIO_SLOTS = "mmio-replaceable-slots"  # machine/src/micro_common/mod.rs
    PCIE_ROOT_PORT = "pcie-root-port"  # devices/src/pci/root_port.rs
    ACPI_PCI = "acpi-pci"  # QEMU pc: straight onto pci.0, ejected through ACPI (hw/acpi/pcihp.c)
    NONE = "none"  # QEMU isapc: "No 'PCI' bus found for device"


@dataclass(frozen=True)
class MachineRules:
    """Per machine type: buses, hotplug style, whether vCPUs hotplug (the architectures a
    machine exists on are the profile's: CmdlineRules.machines)."""

    buses: tuple[str, ...]
    hotplug: Hotplug
    cpu_hotplug: bool  # x86_64 q35 only (docs/cpu_hotplug.md; QEMU 7.2 virt has none)
    pci: bool


MACHINES: dict[MachineType, MachineRules] = {
    MachineType.MICROVM: MachineRules(("virtio-mmio",), Hotplug.MMIO_SLOTS, False, False),
    MachineType.Q35: MachineRules(("pcie.0",), Hotplug.PCIE_ROOT_PORT, True, True),
    MachineType.VIRT: MachineRules(("pcie.0",), Hotplug.PCIE_ROOT_PORT, False, True),
    MachineType.PC: MachineRules(("pci.0",), Hotplug.ACPI_PCI, True, True),
    MachineType.ISAPC: MachineRules((), Hotplug.NONE, False, False),
}

#: The replaceable slots' bus names on microvm, per device class.
SLOT_BUS = {DeviceClass.BLK: "virtio-mmio-virtio-blk", DeviceClass.NET: "virtio-mmio-virtio-net"}


def place_cold_devices(
    devices: tuple[Device, ...], slots: dict[DeviceClass, int]
) -> tuple[Device, ...]:
    """microvm: command-line virtio-blk/-net devices fill the replaceable slots in order.

    machine/src/micro_common/mod.rs add_virtio_mmio_block / add_virtio_mmio_net: the
    n-th cold disk takes blk slot n (``block_count``), the n-th NIC net slot n; one more
    than the slots is a start-up error. Devices already in a slot (a restored or
    migrated configuration) keep it. ValueError carries the upstream text.
    """
    used = {
        cls: {d.addr for d in devices if d.bus == bus and d.addr is not None}
        for cls, bus in SLOT_BUS.items()
    }
    kind = {DeviceClass.BLK: "block", DeviceClass.NET: "net"}
    out: list[Device] = []
    for d in devices:
        limit = slots.get(d.cls)
        if limit is None or d.bus == SLOT_BUS[d.cls]:
            out.append(d)
            continue
        free = next((i for i in range(limit) if i not in used[d.cls]), None)
        if free is None:
            raise ValueError(
                f"A maximum of {limit} {kind[d.cls]} replaceable devices are supported."
            )
        used[d.cls].add(free)
        out.append(dataclasses.replace(d, bus=SLOT_BUS[d.cls], addr=free))
    return tuple(out)


@dataclass(frozen=True)
class CpuTopology:
    """-smp cpus,maxcpus,sockets,dies|clusters,cores,threads (machine_config.rs rules)."""

    cpus: int = 1
    sockets: int = 0
    dies: int = 1
    cores: int = 0
    threads: int = 1
    maxcpus: int = 0

    def resolved(self) -> CpuTopology:
        """Fill derived fields; ValueError with StratoVirt's texts when inconsistent."""
        if not 1 <= self.cpus <= 254:
            raise ValueError("Number of vcpus must be in range [1, 254]")
        maxcpus = self.maxcpus or (
            self.sockets * self.dies * self.cores * self.threads
            if self.sockets and self.cores
            else self.cpus
        )
        cores = self.cores or max(
            1, maxcpus // max(1, (self.sockets or 1) * self.dies * self.threads)
        )
        sockets = self.sockets or max(1, maxcpus // (self.dies * cores * self.threads))
        if sockets * self.dies * cores * self.threads != maxcpus:
            raise ValueError(
                "sockets * dies * clusters * cores * threads must be equal to max_cpus"
            )
        if not self.cpus <= maxcpus <= 254:
            raise ValueError(f"MAX CPU number must >= {self.cpus} and <= 254")
        return CpuTopology(self.cpus, sockets, self.dies, cores, self.threads, maxcpus)

    def props(self, i: int) -> tuple[int, int, int, int]:
        """(socket, die, core, thread) of vCPU index ``i``."""
        t = self.threads
        c = self.cores
        return i // (c * t * self.dies), (i // (c * t)) % self.dies, (i // t) % c, i % t


@dataclass
class DeviceTable:
    """The devices of one VM by id, with the blockdev/netdev backends."""

    devices: dict[str, Device] = field(default_factory=dict)
    blockdevs: dict[str, str] = field(default_factory=dict)  # node-name -> filename
    netdevs: dict[str, str] = field(default_factory=dict)  # id -> ifname
    pending_unplug: set[str] = field(default_factory=set)
    # QEMU: hot-plugged devices whose slot the guest has powered on (pciehp), and vCPUs
    # whose insertion the guest has not acknowledged yet (it was paused)
    powered: set[str] = field(default_factory=set)
    unannounced: set[str] = field(default_factory=set)
    #: block nodes a completed outgoing migration inactivated (QEMU migration.c
    #: migration_completion -> bdrv_inactivate_all); cont activates them again
    inactive: set[str] = field(default_factory=set)
    #: user (slirp) netdevs: each registers a "slirp" savevm section (QEMU net/slirp.c
    #: register_savevm_live), so the destination must have as many
    slirp: set[str] = field(default_factory=set)

    def classes(self) -> set[DeviceClass]:
        return {d.cls for d in self.devices.values()}

    def at(self, bus: str, addr: int) -> Device | None:
        for d in self.devices.values():
            if d.bus == bus and d.addr == addr:
                return d
        return None
