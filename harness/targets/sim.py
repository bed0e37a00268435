"""The simulator as a target: ``sim:<profile>``, launched exactly like a real hypervisor.

argv is the real product's command line (``QemuTarget.argv`` for ``qemu-7.2``,
``StratoVirtTarget.argv`` for the StratoVirt profiles) with the binary replaced by
``python -m simulator --profile P``, so the simulator parses what the real one would.
Capabilities mirror the product's, minus what the simulator does not model.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from harness.guest import GuestImage
from harness.spec import Arch, VMSpec
from harness.targets.base import RunPaths
from harness.targets.qemu import ARCH_CAPABILITIES, QEMU_CAPABILITIES, QemuTarget
from harness.targets.stratovirt import STRATOVIRT_CAPABILITIES, StratoVirtTarget

PROFILES = ("qemu-7.2", "stratovirt-doc", "stratovirt-2.4", "stratovirt-2.5")

#: QEMU 7.2 has no file: migration (snapshots go through exec:, which the simulator
#: models); it does not model savevm/loadvm.
_SIM_QEMU = (QEMU_CAPABILITIES - {"snapshot"}) | {"qmp-during-incoming"}
#: What harness/snapshot.py and harness/hotplug.py ask of a StratoVirt target: snapshots
#: are ``migrate file:DIR`` (memory + state), hotplug backends take StratoVirt's arguments
#: (``blockdev-add`` without driver, ``netdev_add`` with ifname). harness/targets/
#: stratovirt.py does not list these yet; the simulator's StratoVirt profiles need them.
_SIM_STRATOVIRT = STRATOVIRT_CAPABILITIES | {
    "snapshot-file-dir",
    "qmp-dialect-stratovirt",
    # migration/src/migration.rs clear_migration: the source exits 0 once completed (for
    # a harness/migration.py that reads the exit as the completion; see the issue-5 note)
    "source-exits-after-migration",
}
_CAPS = {
    "qemu-7.2": _SIM_QEMU,
    "stratovirt-doc": _SIM_STRATOVIRT,
    "stratovirt-2.4": _SIM_STRATOVIRT,
    "stratovirt-2.5": _SIM_STRATOVIRT,
}


@dataclass(frozen=True)
class SimTarget:
    profile: str
    arch: Arch = Arch.X86_64
    python: str = field(default=sys.executable)
    options: tuple[str, ...] = ()  # extra simulator options (--workload, --time-scale, ...)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown simulator profile {self.profile!r}")

    @property
    def name(self) -> str:
        return f"sim:{self.profile}"

    @property
    def capabilities(self) -> frozenset[str]:
        caps = _CAPS[self.profile]
        if self.profile == "qemu-7.2":
            caps = caps | ARCH_CAPABILITIES[self.arch]
        return frozenset(caps | {"simulator"})

    def unavailable_reason(self) -> str | None:
        return None

    def unsupported_reason(self, spec: VMSpec) -> str | None:
        if self.profile == "qemu-7.2":
            return QemuTarget(self.arch).unsupported_reason(spec)
        return StratoVirtTarget(self.arch, True).unsupported_reason(spec)

    def argv(self, spec: VMSpec, paths: RunPaths, image: GuestImage) -> list[str]:
        if self.profile == "qemu-7.2":
            real = QemuTarget(self.arch).argv(spec, paths, image)
        else:
            real = StratoVirtTarget(self.arch, True).argv(spec, paths, image)
        return [self.python, "-m", "simulator", "--profile", self.profile, *self.options, *real[1:]]


def sim_targets(arch: Arch = Arch.X86_64) -> list[SimTarget]:
    """One target per profile for an inventory's ``[simulator]`` group."""
    return [SimTarget(p, arch) for p in PROFILES]
