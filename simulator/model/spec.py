"""VMSpec: the typed description a VM is launched from (command line equivalent)."""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.model.devices import CpuTopology, Device, MachineType
from simulator.model.host import Arch
from simulator.model.memory import MemoryLayout, Workload
from simulator.model.units import MiB


@dataclass(frozen=True)
class VMSpec:
    """-machine, -smp, -m, -device ... plus the guest's memory content and workload."""

    machine: MachineType = MachineType.Q35
    smp: CpuTopology = field(default_factory=CpuTopology)
    memory: int = 1024 * MiB
    resident: int = 128 * MiB
    devices: tuple[Device, ...] = ()
    workload: Workload = field(default_factory=Workload)
    start_paused: bool = False  # -S
    guest_id: str = "guest0"
    arch: Arch = Arch.X86_64  # the build: qemu-system-<arch>, StratoVirt's target_arch

    def layout(self, rom: int = 0, rom_nonzero: int | None = None) -> MemoryLayout:
        return MemoryLayout(
            size=self.memory,
            resident=min(self.resident, self.memory),
            rom=rom,
            rom_nonzero=rom if rom_nonzero is None else rom_nonzero,
        )
