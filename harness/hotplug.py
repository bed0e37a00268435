"""Disk and NIC hotplug over QMP, in each hypervisor's argument dialect.

Standard machines (q35, virt) plug into a pcie-root-port created at boot, at addr 0x0
(S004 "热插拔磁盘"; StratoVirt machine/src/standard_common/mod.rs; QEMU
hw/pci-bridge/pcie_root_port.c has one slot). Unplug is a request: DEVICE_DELETED
arrives only after the guest has released the device (pciehp), then the backend goes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, assert_never

from harness.errors import HarnessError, QMPCommandError
from harness.machine import Machine
from harness.spec import DeviceSpec, Topology
from harness.targets.traits import CpuHotplug, CpuQuery, QmpDialect
from harness.waits import wait_for


def sparse_image(path: Path, size: int) -> Path:
    """A private (0600) raw disk image of ``size`` bytes that takes no space until written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, size)
    finally:
        os.close(fd)
    return path


def root_ports(count: int) -> tuple[DeviceSpec, ...]:
    """``count`` root ports named pcie.1.. on pcie.0, as the StratoVirt guide names them."""
    return tuple(
        DeviceSpec(
            "pcie-root-port",
            f"pcie.{i}",
            (("bus", "pcie.0"), ("chassis", str(i)), ("addr", f"0x{i + 1:x}")),
        )
        for i in range(1, count + 1)
    )


def add_disk_backend(vm: Machine, node: str, image: str) -> Any:
    args: dict[str, Any]
    match vm.target.traits.dialect:
        case QmpDialect.STRATOVIRT:
            args = {
                "node-name": node,
                "file": {"driver": "file", "filename": image},
                "cache": {"direct": False},
                "read-only": False,
            }
        case QmpDialect.QEMU:
            args = {
                "driver": "raw",
                "node-name": node,
                "file": {"driver": "file", "filename": image},
            }
        case other:
            assert_never(other)
    return vm.qmp.execute("blockdev-add", args)


def add_disk(vm: Machine, dev_id: str, node: str, bus: str, addr: str = "0x0") -> Any:
    return vm.qmp.execute(
        "device_add",
        {"driver": "virtio-blk-pci", "id": dev_id, "drive": node, "bus": bus, "addr": addr},
    )


def add_nic_backend(vm: Machine, netdev: str, tap: str | None = None) -> Any:
    """A network backend: on tap ``tap`` (created in the VM's namespace), else QEMU's user
    mode (StratoVirt always uses a tap, by default one named for this VM and netdev)."""
    match vm.target.traits.dialect:
        case QmpDialect.STRATOVIRT:
            ifname = tap or vm.paths.tap(netdev)
            return vm.qmp.execute("netdev_add", {"id": netdev, "ifname": ifname})
        case QmpDialect.QEMU:
            if tap is not None:
                args = {
                    "type": "tap",
                    "id": netdev,
                    "ifname": tap,
                    "script": "no",
                    "downscript": "no",
                }
                return vm.qmp.execute("netdev_add", args)
            return vm.qmp.execute("netdev_add", {"type": "user", "id": netdev})
        case other:
            assert_never(other)


def add_nic(vm: Machine, dev_id: str, netdev: str, mac: str, bus: str, addr: str = "0x0") -> Any:
    return vm.qmp.execute(
        "device_add",
        {
            "driver": "virtio-net-pci",
            "id": dev_id,
            "netdev": netdev,
            "mac": mac,
            "bus": bus,
            "addr": addr,
        },
    )


def vcpus(vm: Machine) -> list[dict[str, Any]]:
    """The vCPU list (StratoVirt query-cpus; QEMU query-cpus-fast, query-cpus is gone)."""
    match vm.target.traits.cpu_query:
        case CpuQuery.QUERY_CPUS:
            out: list[dict[str, Any]] = vm.qmp.execute("query-cpus")
        case CpuQuery.QUERY_CPUS_FAST:
            out = vm.qmp.execute("query-cpus-fast")
        case other:
            assert_never(other)
    return out


def position(props: dict[str, Any]) -> tuple[int, int, int]:
    """(socket, core, thread) of a vCPU list entry's or hotpluggable slot's props."""
    return (int(props["socket-id"]), int(props["core-id"]), int(props.get("thread-id", 0)))


def present_cpus(vm: Machine) -> set[int]:
    """The vCPUs the guest has (online or not): /sys/devices/system/cpu/present."""
    status, out = vm.console.run("cat /sys/devices/system/cpu/present")
    if status != 0:
        raise HarnessError(f"{vm.name}: cannot read the guest's present vCPUs: {out}")
    cpus: set[int] = set()
    for part in filter(None, out.strip().split(",")):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def add_cpu(vm: Machine, dev_id: str, index: int, topology: Topology) -> Any:
    """device_add of vCPU ``index`` (x86_64 q35), in the target's way of naming it.

    StratoVirt (docs/cpu_hotplug.md): driver generic-x86-cpu and cpu-id ``index``. QEMU
    (docs/system/cpu-hotplug.rst): the type query-hotpluggable-cpus lists and the
    socket/core/thread ids of ``index`` in the -smp topology.
    """
    args: dict[str, Any] = {"id": dev_id}
    match vm.target.traits.cpu_hotplug:
        case CpuHotplug.CPU_ID:
            args.update({"driver": "generic-x86-cpu", "cpu-id": index})
        case CpuHotplug.TOPOLOGY:
            slots = vm.qmp.execute("query-hotpluggable-cpus")
            socket, core, thread = topology.position(index)
            args.update(
                {
                    "driver": slots[0]["type"],
                    "socket-id": socket,
                    "core-id": core,
                    "thread-id": thread,
                }
            )
        case other:
            assert_never(other)
    return vm.qmp.execute("device_add", args)


def unplug(vm: Machine, dev_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """device_del, then wait for DEVICE_DELETED of ``dev_id``; return the event.

    Right after a hot-add the guest's pciehp may still be blinking the slot's power
    indicator; QEMU then refuses the request ("guest is busy (power indicator
    blinking)", hw/pci/pcie.c pcie_cap_slot_unplug_request_cb). That is transient: ask
    again until the guest has settled.
    """
    mark = vm.qmp.events.mark()

    def request() -> bool | None:
        try:
            vm.qmp.execute("device_del", {"id": dev_id})
        except QMPCommandError as exc:
            if "busy" in exc.desc:
                return None
            raise
        return True

    wait_for(request, 30.0, f"the guest to accept the unplug of {dev_id}", interval=0.5)
    return vm.qmp.wait_event("DEVICE_DELETED", {"device": dev_id}, since=mark, timeout=timeout)
