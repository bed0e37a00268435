"""The simulated host: architecture, CPU, KVM, NIC and the migration thread's speed."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from simulator.model.units import GiB, MiB


class Arch(Enum):
    """Host/guest architecture (QEMU target names)."""

    X86_64 = "x86_64"
    AARCH64 = "aarch64"


@dataclass(frozen=True)
class Host:
    """One lab host as the model sees it.

    ``nic_bandwidth`` caps every migration stream (bytes/s). ``zero_scan_rate`` and
    ``copy_rate`` (pages/s) bound the QEMU migration thread: ram.c checks every page with
    ``buffer_is_zero`` and copies non-zero pages in that thread (7.2, even with multifd).
    """

    name: str = "sim0"
    arch: Arch = Arch.X86_64
    cpu_model: str = "host"
    cpu_vendor: str = "GenuineIntel"
    kvm_usable: bool = True
    nic_bandwidth: float = 1.25e9  # 10 GbE
    memory: int = 256 * GiB
    zero_scan_rate: float = 2.5e6  # pages/s (~10 GB/s buffer_is_zero)
    copy_rate: float = 1.5e6  # pages/s one thread can frame and copy
    stop_overhead_s: float = 0.004  # vm_stop + final sync bookkeeping
    setup_fixed_s: float = 0.003
    setup_per_gib_s: float = 0.0004  # bitmap allocation in ram_save_setup
    kvm_api_version: int = 12
    disk_bandwidth: float = 1.0e9  # snapshot files

    def __post_init__(self) -> None:
        if self.nic_bandwidth <= 0 or self.zero_scan_rate <= 0 or self.copy_rate <= 0:
            raise ValueError("host rates must be positive")


def default_host(arch: Arch = Arch.X86_64) -> Host:
    """A 10 GbE KVM host of the given architecture."""
    vendor = "GenuineIntel" if arch is Arch.X86_64 else "ARM"
    return Host(arch=arch, cpu_vendor=vendor, memory=256 * GiB + 0 * MiB)
