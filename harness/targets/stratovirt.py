"""Real StratoVirt: command lines as its docs show them (seed 003/004, docs/config_guidebook.md).

StratoVirt has no TCG: it needs a working KVM (machine_manager needs /dev/kvm and
``Kvm::new()`` for every migration header), so this target is unavailable wherever the
KVM probe fails, with that reason shown as the skip.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from harness.guest import GuestImage
from harness.spec import Arch, MachineType, VMSpec
from harness.targets.base import RunPaths, device_args

STRATOVIRT_CAPABILITIES = frozenset(
    {
        "qmp",
        "console",
        "stop-cont",
        "hotpluggable-cpus",
        "live-migration",
        "snapshot",
        "hotplug-pcie",
        "hotplug-mmio",
        # migrate file:DIR writes DIR/memory + DIR/state (migration/src/snapshot.rs)
        "snapshot-file-dir",
        # StratoVirt's argument shapes for blockdev-add/netdev_add (docs, seed 004)
        "qmp-dialect-stratovirt",
        # the source destroys its VM and exits 0 once "completed" is set
        # (migration/src/migration.rs clear_migration)
        "source-exits-after-migration",
    }
)


@dataclass(frozen=True)
class StratoVirtTarget:
    arch: Arch
    kvm_works: bool
    kvm_detail: str = ""
    binary: str = "stratovirt"

    @property
    def name(self) -> str:
        return f"stratovirt-{self.arch.value}"

    @property
    def capabilities(self) -> frozenset[str]:
        return STRATOVIRT_CAPABILITIES

    def unavailable_reason(self) -> str | None:
        reasons = []
        if shutil.which(self.binary) is None:
            reasons.append("stratovirt is not installed on this host")
        if not self.kvm_works:
            reasons.append(
                f"StratoVirt needs working KVM (it has no TCG) and here "
                f"{self.kvm_detail or 'there is no KVM'}"
            )
        return "; ".join(reasons) or None

    def unsupported_reason(self, spec: VMSpec) -> str | None:
        allowed = {
            Arch.X86_64: (MachineType.Q35, MachineType.MICROVM),
            Arch.AARCH64: (MachineType.VIRT, MachineType.MICROVM),
        }[self.arch]
        if spec.machine not in allowed:
            return f"StratoVirt has no {spec.machine.value} machine on {self.arch.value}"
        return None

    def argv(self, spec: VMSpec, paths: RunPaths, image: GuestImage) -> list[str]:
        # Shapes from docs/config_guidebook.md: -qmp needs both server and nowait.
        argv = [
            self.binary,
            "-machine",
            spec.machine.value,
            "-smp",
            spec.topology.smp_arg(),
            "-m",
            str(spec.memory_mib),
            "-kernel",
            str(image.kernel),
            "-initrd",
            str(image.initrd),
            "-append",
            image.append(spec.append),
            "-qmp",
            f"unix:{paths.qmp},server,nowait",
            "-chardev",
            f"socket,id=serial0,path={paths.serial},server,nowait",
            "-serial",
            "chardev:serial0",
        ]
        argv += device_args(spec, lambda netdev: f"tap,id={netdev},ifname=hv{netdev[:12]}")
        return argv
