"""Real StratoVirt: command lines as its docs show them (seed 003/004, docs/config_guidebook.md).

StratoVirt has no TCG: it needs a working KVM (machine_manager needs /dev/kvm and
``Kvm::new()`` for every migration header), so this target is unavailable wherever the
KVM probe fails, with that reason shown as the skip.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

from harness.guest import GuestImage
from harness.runner import LOCAL, Runner
from harness.spec import Arch, MachineType, VMSpec
from harness.targets.base import RunPaths, device_args
from harness.targets.kvm import NO_KVM, KvmVerdict
from harness.targets.traits import (
    CpuHotplug,
    CpuQuery,
    GuestKind,
    QmpDialect,
    SnapshotMethod,
    SourceAfterMigration,
    Traits,
)

STRATOVIRT_TRAITS = Traits(
    guest=GuestKind.IMAGE,
    snapshot=SnapshotMethod.FILE_DIR,
    dialect=QmpDialect.STRATOVIRT,
    source_after_migration=SourceAfterMigration.EXITS,
    cpu_query=CpuQuery.QUERY_CPUS,
    cpu_hotplug=CpuHotplug.CPU_ID,
    qmp_during_incoming=False,
    migration_events=False,
    migration_tuning=False,
    boot_templates=False,
)


@dataclass(frozen=True)
class StratoVirtTarget:
    arch: Arch
    kvm: KvmVerdict = field(default=NO_KVM, compare=False)
    binary: str = "stratovirt"

    @property
    def name(self) -> str:
        return f"stratovirt-{self.arch.value}"

    @property
    def traits(self) -> Traits:
        return STRATOVIRT_TRAITS

    def unavailable_reason(self) -> str | None:
        reasons = []
        if shutil.which(self.binary) is None:
            reasons.append("stratovirt is not installed on this host")
        if not self.kvm.works:
            reasons.append(
                f"StratoVirt needs working KVM (it has no TCG) and here {self.kvm.detail}"
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

    def argv(
        self, spec: VMSpec, paths: RunPaths, image: GuestImage, runner: Runner = LOCAL
    ) -> list[str]:
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
        # a tap per VM: StratoVirt has no user-mode network, and a second process
        # attaching a tap another one holds gets EBUSY (TUNSETIFF)
        argv += device_args(spec, lambda netdev: f"tap,id={netdev},ifname={paths.tap(netdev)}")
        return argv
