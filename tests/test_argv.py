"""VMSpec -> argv for the QEMU and StratoVirt targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.guest import GuestImage
from harness.spec import Arch, DeviceSpec, MachineType, Topology, VMSpec
from harness.targets.base import RunPaths
from harness.targets.kvm import Accel, KvmVerdict
from harness.targets.qemu import QemuTarget
from harness.targets.stratovirt import StratoVirtTarget

PATHS = RunPaths(Path("/tmp/hvlab-x"), Path("/tmp/logs"))


def image(arch: Arch) -> GuestImage:
    return GuestImage(arch, Path("/img/vmlinuz"), Path("/img/initrd.gz"), "6.1")


def opt(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_qemu_q35_argv() -> None:
    """x86_64 q35 under TCG.

    1. The binary is qemu-system-x86_64 and the machine q35.
    2. TCG is chosen (multi-threaded) and no -cpu host.
    3. -smp carries sockets/cores/threads/maxcpus; -m the memory.
    4. The kernel command line uses ttyS0.
    5. QMP and the serial port are private unix sockets in the run dir.
    6. -S and -incoming appear when asked; devices become -device.
    """
    spec = VMSpec(
        machine=MachineType.Q35,
        topology=Topology(2, 2, 2, 1, 4),
        memory_mib=512,
        devices=(DeviceSpec("virtio-net-pci", "net0", (("mac", "52:54:00:12:34:56"),)),),
        start_paused=True,
        incoming="tcp:127.0.0.1:0",
    )
    argv = QemuTarget(Arch.X86_64).argv(spec, PATHS, image(Arch.X86_64))
    assert argv[0] == "qemu-system-x86_64"
    assert opt(argv, "-machine") == ["q35"]
    assert opt(argv, "-accel") == ["tcg,thread=multi"] and "host" not in opt(argv, "-cpu")
    assert opt(argv, "-smp") == ["2,sockets=2,cores=2,threads=1,maxcpus=4"]
    assert opt(argv, "-m") == ["512"]
    assert "console=ttyS0" in opt(argv, "-append")[0]
    assert opt(argv, "-qmp") == ["unix:/tmp/hvlab-x/qmp.sock,server=on,wait=off"]
    assert "path=/tmp/hvlab-x/serial.sock" in opt(argv, "-chardev")[0]
    assert "-S" in argv and opt(argv, "-incoming") == ["tcp:127.0.0.1:0"]
    assert opt(argv, "-device") == ["virtio-net-pci,id=net0,mac=52:54:00:12:34:56"]


def test_qemu_aarch64_virt_and_kvm_argv() -> None:
    """aarch64 virt, and KVM when the probe said it works.

    1. qemu-system-aarch64 with virt and GICv3 and a cortex-a57 under TCG.
    2. The console is ttyAMA0 (PL011).
    3. With accel=kvm: -accel kvm and -cpu host instead.
    4. No -S or -incoming unless asked.
    """
    spec = VMSpec(machine=MachineType.VIRT)
    argv = QemuTarget(Arch.AARCH64).argv(spec, PATHS, image(Arch.AARCH64))
    assert argv[0] == "qemu-system-aarch64"
    assert opt(argv, "-machine") == ["virt,gic-version=3"] and opt(argv, "-cpu") == ["cortex-a57"]
    assert "console=ttyAMA0" in opt(argv, "-append")[0]
    kvm = QemuTarget(Arch.AARCH64, accel=Accel.KVM).argv(spec, PATHS, image(Arch.AARCH64))
    assert opt(kvm, "-accel") == ["kvm"] and opt(kvm, "-cpu") == ["host"]
    assert "-S" not in argv and "-incoming" not in argv


def test_qemu_refuses_foreign_machine() -> None:
    """A machine of another architecture is unsupported, with the reason.

    1. virt on the x86_64 target is refused naming both.
    2. q35 on x86_64 is fine.
    """
    reason = QemuTarget(Arch.X86_64).unsupported_reason(VMSpec(machine=MachineType.VIRT))
    assert reason is not None and "virt" in reason and "x86_64" in reason
    assert QemuTarget(Arch.X86_64).unsupported_reason(VMSpec()) is None


def test_stratovirt_argv_follows_its_docs() -> None:
    """StratoVirt's command line as docs/config_guidebook.md and seed 003 show it.

    1. -qmp unix:PATH,server,nowait (StratoVirt needs both flags).
    2. -machine and -smp/-m as given.
    3. Without working KVM the target is unavailable, saying why.
    """
    target = StratoVirtTarget(Arch.X86_64, KvmVerdict.fixed(False, "guests hang"))
    argv = target.argv(VMSpec(machine=MachineType.MICROVM), PATHS, image(Arch.X86_64))
    assert opt(argv, "-qmp") == ["unix:/tmp/hvlab-x/qmp.sock,server,nowait"]
    assert opt(argv, "-machine") == ["microvm"]
    reason = target.unavailable_reason()
    assert reason is not None and "KVM" in reason and "guests hang" in reason


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"cpus": 2, "sockets": 2, "cores": 2, "threads": 1}, "must equal maxcpus"),
        ({"cpus": 5, "sockets": 2, "cores": 2, "threads": 1, "maxcpus": 4}, "exceeds maxcpus"),
        ({"cpus": 0}, "cpus must be >= 1"),
    ],
)
def test_bad_topology_is_refused(kwargs: dict[str, int], words: str) -> None:
    """An impossible -smp is refused before anything launches.

    1. Topology raises ValueError naming the rule broken.
    """
    with pytest.raises(ValueError, match=words):
        Topology(**kwargs)
