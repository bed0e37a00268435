"""Targets of a lockstep run by name, the VM every example starts with, the backends.

``qemu-x86_64`` / ``qemu-aarch64`` are real QEMU 7.2 (TCG here: deterministic on any
host), ``sim:<profile>`` / ``sim:<arch>:<profile>`` the simulator. Every example's source
is the suites' standard machine (q35 or virt, 2 of 4 vCPUs, 256 MiB) with two root
ports for hotplug.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.conformance.backend import Backend
from harness.conformance.lockstep import Lockstep
from harness.errors import HarnessError
from harness.guest import guest_image
from harness.hotplug import root_ports, sparse_image
from harness.spec import Arch, MachineType, Topology, VMSpec
from harness.targets.base import Target
from harness.targets.qemu import QemuTarget
from harness.targets.sim import PROFILES, SimTarget
from harness.templates import TemplateStore

DISK_NODES = ("disk0", "disk1")


def resolve(name: str) -> Target:
    """A target by its name, available here, or a HarnessError naming what is known."""
    target: Target
    parts = name.split(":")
    if parts[0] == "sim" and len(parts) in (2, 3) and parts[-1] in PROFILES:
        arch = Arch.parse(parts[1]) if len(parts) == 3 else Arch.X86_64
        target = SimTarget(parts[-1], arch)
    elif name in ("qemu-x86_64", "qemu-aarch64"):
        target = QemuTarget(Arch.parse(name.removeprefix("qemu-")))
    else:
        known = ["qemu-x86_64", "qemu-aarch64"] + [f"sim:[aarch64:]{p}" for p in PROFILES]
        raise HarnessError(f"unknown target {name!r} (known: {', '.join(known)})")
    reason = target.unavailable_reason()
    if reason:
        raise HarnessError(f"{name}: {reason}")
    return target


def standard_spec(arch: Arch, machine: MachineType | None = None) -> VMSpec:
    """The example's source VM: the standard machine with two root ports, or ``machine``
    (a regression test's: microvm has no PCI, so no root ports)."""
    machine = machine or MachineType.standard(arch)
    return VMSpec(
        machine=machine,
        topology=Topology(cpus=2, sockets=2, cores=2, threads=1, maxcpus=4),
        memory_mib=256,
        devices=root_ports(2) if machine is not MachineType.MICROVM else (),
    )


def make_disks(folder: Path) -> Path:
    """One 1 MiB raw image per node name the state machine uses."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    for node in DISK_NODES:
        sparse_image(folder / f"{node}.raw", 1 << 20)
    return folder


@contextmanager
def lockstep_for(
    reference: str, candidate: str, work: Path, machine: MachineType | None = None
) -> Iterator[tuple[Lockstep, Path]]:
    """The two backends of a run in ``work`` (and its disk images); all closed after.
    ``machine`` replaces the architecture's standard machine."""
    ref, cand = resolve(reference), resolve(candidate)
    if ref.arch is not cand.arch:
        raise HarnessError(
            f"{reference} is {ref.arch.value} but {candidate} is {cand.arch.value}: "
            "lockstep needs one architecture"
        )
    work.mkdir(parents=True, exist_ok=True)
    disks = make_disks(work / "disks")
    boot = TemplateStore()
    images = functools.cache(guest_image)
    spec = standard_spec(ref.arch, machine)
    lockstep = Lockstep(
        Backend(ref, spec, work / "reference", images, boot, "reference"),
        Backend(cand, spec, work / "candidate", images, boot, "candidate"),
    )
    try:
        yield lockstep, disks
    finally:
        try:
            lockstep.close()
        finally:
            boot.close()
