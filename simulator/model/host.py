"""The simulated host: architecture, CPU, KVM, NIC and the migration thread's speed."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from simulator.model.units import GiB, MiB


class Arch(Enum):
    """Host/guest architecture (QEMU target names)."""

    X86_64 = "x86_64"
    AARCH64 = "aarch64"


@dataclass(frozen=True)
class Host:
    """One lab host as the model sees it.

    ``nic_bandwidth`` caps every migration stream (bytes/s). ``zero_scan_rate`` and
    ``copy_rate`` (pages/s) bound the QEMU migration stream: ram.c checks every page with
    ``buffer_is_zero`` in the migration thread (7.2, even with multifd), and a non-zero
    page is copied once on its way (the destination's ram_load), overlapping the send.
    ``first_touch_s``: what a non-zero page costs the first time it lands on the
    destination (fault in + zero fill before ram_load copies it). ``postcopy_fault_s``:
    a post-copy page request's round trip (userfaultfd fault -> return path -> source
    sends the page -> UFFDIO_COPY), during which the faulting vCPU waits. ``resume_s``:
    from the end of the source's downtime until the destination's guest runs again
    (the destination loads the last data and device state, then vm_start), so the
    guest-visible pause is downtime + resume_s. ``window_overrun_s``: how much later
    than BUFFER_DELAY a rate-limit window really closes (the migration thread's wake-up
    on a ms clock), which lowers the effective rate. ``switchover_s``: the completion's
    fixed CPU cost once the VM is stopped, besides the pages: the last
    migration_bitmap_sync and saving every device's state section
    (migration/savevm.c qemu_savevm_state_complete_precopy); it is in every downtime and
    in the stop of a post-copy switch. The calibrated constants of a real host
    are JSON (:func:`load_host`; ``python -m simulator --host FILE``).
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
    switchover_s: float = 0.0  # last bitmap sync + device state sections (see above)
    setup_fixed_s: float = 0.003
    setup_per_gib_s: float = 0.0004  # bitmap allocation in ram_save_setup
    kvm_api_version: int = 12
    disk_bandwidth: float = 1.0e9  # snapshot files
    first_touch_s: float = 1.0e-6
    postcopy_fault_s: float = 5.0e-4
    resume_s: float = 0.01
    window_overrun_s: float = 0.0
    socket_buffer_bytes: int = 6 * MiB

    def __post_init__(self) -> None:
        if self.nic_bandwidth <= 0 or self.zero_scan_rate <= 0 or self.copy_rate <= 0:
            raise ValueError("host rates must be positive")
        if min(self.first_touch_s, self.postcopy_fault_s, self.resume_s, self.switchover_s) < 0:
            raise ValueError("host costs must not be negative")

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["arch"] = self.arch.value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Host:
        """A host from :meth:`to_json` output; unknown keys are refused."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown host constant(s): {', '.join(unknown)}")
        values = dict(data)
        if "arch" in values:
            values["arch"] = Arch(values["arch"])
        return cls(**values)


def load_host(path: Path) -> Host:
    """Calibrated host constants from a JSON file (``hvlab bench fidelity`` writes one)."""
    try:
        return Host.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"host constants {path}: {exc}") from exc


def default_host(arch: Arch = Arch.X86_64) -> Host:
    """A 10 GbE KVM host of the given architecture."""
    vendor = "GenuineIntel" if arch is Arch.X86_64 else "ARM"
    return Host(arch=arch, cpu_vendor=vendor, memory=256 * GiB + 0 * MiB)
