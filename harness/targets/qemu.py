"""Real QEMU: x86_64 (q35, microvm) and aarch64 (virt) command lines from a VMSpec."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from harness.guest import GuestImage
from harness.runner import LOCAL, Runner
from harness.spec import Arch, MachineType, TlsCreds, VMSpec
from harness.targets.base import RunPaths, device_args
from harness.targets.kvm import NO_KVM, Accel, KvmVerdict
from harness.targets.traits import (
    CpuHotplug,
    CpuQuery,
    GuestKind,
    QmpDialect,
    SnapshotMethod,
    SourceAfterMigration,
    Traits,
)

QEMU_BINARY = {Arch.X86_64: "qemu-system-x86_64", Arch.AARCH64: "qemu-system-aarch64"}
MACHINES = {Arch.X86_64: (MachineType.Q35, MachineType.MICROVM), Arch.AARCH64: (MachineType.VIRT,)}

#: QEMU 7.2 on both architectures.
QEMU_TRAITS = Traits(
    guest=GuestKind.IMAGE,
    snapshot=SnapshotMethod.EXEC_STREAM,
    dialect=QmpDialect.QEMU,
    source_after_migration=SourceAfterMigration.POSTMIGRATE,
    cpu_query=CpuQuery.QUERY_CPUS_FAST,
    cpu_hotplug=CpuHotplug.TOPOLOGY,
    qmp_during_incoming=True,
    migration_events=True,
    migration_tuning=True,
    boot_templates=True,
    ram_dump=True,
)


@dataclass(frozen=True)
class QemuTarget:
    arch: Arch
    binary: str = ""
    #: KVM or TCG forces the accelerator; AUTO asks ``kvm`` (probed on first use)
    accel: Accel = Accel.AUTO
    kvm: KvmVerdict = field(default=NO_KVM, compare=False)
    extra: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return f"qemu-{self.arch.value}"

    @property
    def traits(self) -> Traits:
        return QEMU_TRAITS

    @property
    def accelerator(self) -> Accel:
        if self.accel is Accel.AUTO:
            return Accel.KVM if self.kvm.works else Accel.TCG
        return self.accel

    @property
    def executable(self) -> str:
        return self.binary or QEMU_BINARY[self.arch]

    def unavailable_reason(self) -> str | None:
        if shutil.which(self.executable) is None:
            return f"{self.executable} not installed (make setup installs it)"
        return None

    def unsupported_reason(self, spec: VMSpec) -> str | None:
        if spec.machine not in MACHINES[self.arch]:
            return f"machine {spec.machine.value} does not exist for {self.arch.value}"
        return None

    def argv(
        self, spec: VMSpec, paths: RunPaths, image: GuestImage, runner: Runner = LOCAL
    ) -> list[str]:
        argv = [self.executable, "-name", f"hvlab-{paths.dir.name},debug-threads=on"]
        argv += ["-machine", _machine_arg(spec.machine)]
        if self.accelerator is Accel.KVM:
            argv += ["-accel", "kvm", "-cpu", "host"]
        else:
            argv += ["-accel", "tcg,thread=multi"]
            if self.arch is Arch.AARCH64:
                argv += ["-cpu", "cortex-a57"]
        argv += ["-smp", spec.topology.smp_arg(), "-m", str(spec.memory_mib)]
        argv += ["-nodefaults", "-no-user-config", "-display", "none"]
        argv += [
            "-kernel",
            str(image.kernel),
            "-initrd",
            str(image.initrd),
            "-append",
            image.append(_kernel_args(spec)),
        ]
        argv += [
            "-chardev",
            f"socket,id=serial0,path={opt(paths.serial)},server=on,wait=off,"
            f"logfile={opt(paths.serial_log)}",
            "-serial",
            "chardev:serial0",
            "-qmp",
            f"unix:{opt(paths.qmp)},server=on,wait=off",
        ]
        argv += device_args(spec, lambda netdev: f"user,id={netdev}", ",script=no,downscript=no")
        if spec.tls is not None:
            argv += ["-object", _tls_object(spec.tls)]
        argv += list(self.extra)
        return argv


def opt(value: object) -> str:
    """A value inside a QEMU option string: a comma is written twice (util/qemu-option.c
    get_opt_value), so a path such as a report folder with a comma stays one value."""
    return str(value).replace(",", ",,")


def _tls_object(tls: TlsCreds) -> str:
    """crypto/tlscredsx509.c, tlscredspsk.c: the folder holds the PEM files / keys.psk."""
    text = f"tls-creds-{tls.kind},id={tls.id},dir={opt(tls.dir)},endpoint={tls.endpoint}"
    if tls.kind == "x509" and tls.endpoint == "server":
        text += ",verify-peer=on"
    if tls.kind == "psk" and tls.username:
        text += f",username={opt(tls.username)}"
    return text


def _host_tsc_khz() -> int:
    """The host's TSC rate: under TCG a guest's rdtsc counts host ticks."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return int(float(line.split(":", 1)[1]) * 1000)
    except (OSError, ValueError):
        pass
    return 2_000_000


def _kernel_args(spec: VMSpec) -> str:
    """Extra guest kernel arguments a machine needs.

    microvm has no HPET and no ACPI PM timer (hw/i386/microvm.c), so Linux calibrates
    the TSC against the PIT alone; under TCG that fails now and then ("tsc: Unable to
    calibrate against PIT ... No reference") and the boot hangs in the timer check
    (seen here in about 1 boot of 8). Giving the TSC rate and skipping the check avoids
    the calibration (12 of 12 boots).
    """
    if spec.machine is MachineType.MICROVM:
        return f"tsc_early_khz={_host_tsc_khz()} no_timer_check {spec.append}".strip()
    return spec.append


def _machine_arg(machine: MachineType) -> str:
    if machine is MachineType.VIRT:
        return "virt,gic-version=3"
    return str(machine.value)
