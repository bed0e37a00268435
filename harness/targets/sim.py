"""The simulator as a target, launched exactly like a real hypervisor.

Names: ``sim:<profile>`` stands in for the product's x86_64 build, ``sim:<arch>:<profile>``
for another architecture's (``sim:aarch64:qemu-7.2`` is qemu-system-aarch64,
``sim:aarch64:stratovirt-2.5`` an aarch64 StratoVirt build). A simulator target composes
the product it simulates: argv is that product's command line for that architecture
(``QemuTarget.argv`` for ``qemu-7.2``, ``StratoVirtTarget.argv`` for the StratoVirt
profiles) with the binary replaced by ``python -m simulator --profile P [--arch A]``, so
the simulator parses what the real one would, and its traits are the product's with a
modelled guest.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.guest import GuestImage
from harness.runner import LOCAL, Runner
from harness.spec import Arch, VMSpec
from harness.targets.base import RunPaths
from harness.targets.kvm import KvmVerdict
from harness.targets.qemu import QemuTarget
from harness.targets.stratovirt import StratoVirtTarget
from harness.targets.traits import GuestKind, Traits

Product = QemuTarget | StratoVirtTarget

#: The simulator needs no KVM: its StratoVirt product is never refused for want of it.
_SIM_KVM = KvmVerdict.fixed(True, "simulated")

#: Which product each simulator profile stands in for.
PRODUCTS: dict[str, Callable[[Arch], Product]] = {
    "qemu-7.2": lambda arch: QemuTarget(arch),
    "stratovirt-doc": lambda arch: StratoVirtTarget(arch, _SIM_KVM),
    "stratovirt-2.4": lambda arch: StratoVirtTarget(arch, _SIM_KVM),
    "stratovirt-2.5": lambda arch: StratoVirtTarget(arch, _SIM_KVM),
}
PROFILES = tuple(PRODUCTS)


def simulated_image(arch: Arch) -> GuestImage:
    """The simulator models its guest: these paths only fill the product's command line."""
    return GuestImage(
        arch, Path("/hvlab-simulated/vmlinuz"), Path("/hvlab-simulated/initrd.gz"), "simulated"
    )


@dataclass(frozen=True)
class SimTarget:
    profile: str
    arch: Arch = Arch.X86_64
    python: str = field(default=sys.executable)
    options: tuple[str, ...] = ()  # extra simulator options (--workload, --time-scale, ...)

    def __post_init__(self) -> None:
        if self.profile not in PRODUCTS:
            raise ValueError(f"unknown simulator profile {self.profile!r}")

    @property
    def product(self) -> Product:
        return PRODUCTS[self.profile](self.arch)

    @property
    def name(self) -> str:
        if self.arch is Arch.X86_64:
            return f"sim:{self.profile}"
        return f"sim:{self.arch.value}:{self.profile}"

    @property
    def traits(self) -> Traits:
        # nothing to boot, so nothing to save as a boot template; one stream socket
        return dataclasses.replace(
            self.product.traits,
            guest=GuestKind.SIMULATED,
            boot_templates=False,
            migration_channels=False,
            ram_dump=False,
        )

    def unavailable_reason(self) -> str | None:
        return None

    def unsupported_reason(self, spec: VMSpec) -> str | None:
        return self.product.unsupported_reason(spec)

    def argv(
        self, spec: VMSpec, paths: RunPaths, image: GuestImage, runner: Runner = LOCAL
    ) -> list[str]:
        real = self.product.argv(spec, paths, image, runner)
        launcher = runner.simulator_command() if runner is not LOCAL else self._local()
        build = () if self.arch is Arch.X86_64 else ("--arch", self.arch.value)
        return [*launcher, "--profile", self.profile, *build, *self.options, *real[1:]]

    def _local(self) -> list[str]:
        return [self.python, "-m", "simulator"]


#: The architectures an inventory's ``[simulator]`` group covers unless it says otherwise.
SIM_ARCHES = (Arch.X86_64, Arch.AARCH64)


def sim_targets(
    arches: tuple[Arch, ...] = SIM_ARCHES, stratovirt_features: str | None = None
) -> list[SimTarget]:
    """One target per profile and architecture for an inventory's ``[simulator]`` group.

    ``stratovirt_features``: the cargo features of the lab's StratoVirt build (hosts.ini
    ``hvlab_stratovirt_features``, e.g. ``vfio``), given to the StratoVirt profiles as
    ``--build-features``; None keeps each profile's default build.
    """
    out: list[SimTarget] = []
    for arch in arches:
        for profile in PROFILES:
            target = SimTarget(profile, arch)
            if stratovirt_features is not None and isinstance(target.product, StratoVirtTarget):
                target = dataclasses.replace(
                    target, options=("--build-features", stratovirt_features)
                )
            out.append(target)
    return out
