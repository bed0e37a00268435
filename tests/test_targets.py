"""Targets: typed traits, simulator targets composed from their product, the lazy KVM probe."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.guest import GuestImage
from harness.hosts import HostFacts, _boot_under_kvm
from harness.inventory import Host
from harness.spec import Arch, VMSpec
from harness.targets.base import RunPaths
from harness.targets.kvm import Accel, KvmVerdict
from harness.targets.qemu import QemuTarget
from harness.targets.registry import select, targets_for
from harness.targets.sim import PROFILES, SimTarget
from harness.targets.stratovirt import StratoVirtTarget
from harness.targets.traits import GuestKind

ROOT = Path(__file__).resolve().parents[1]
LOCAL = Host(
    name="localhost",
    connection="local",
    address="localhost",
    groups=frozenset({"qemu", "stratovirt", "simulator"}),
)
FACTS = {"localhost": HostFacts(host="localhost", arch="x86_64", kernel="6.1", kvm_device=True)}


def test_simulator_targets_compose_their_product() -> None:
    """A sim target is its product with a modelled guest, not a list of its own.

    1. Every profile's traits equal its product's, but for the guest (simulated) and
       boot templates (nothing to boot, so nothing to save).
    2. Its argv is the product's argv after ``python -m simulator --profile P``.
    """
    paths = RunPaths(Path("/tmp/hvlab-x"), Path("/tmp/logs"))
    image = GuestImage(Arch.X86_64, Path("/k"), Path("/i"), "t")
    for profile in PROFILES:
        sim = SimTarget(profile)
        product = sim.product
        assert isinstance(product, QemuTarget | StratoVirtTarget)
        # a modelled guest, nothing to boot, one socket for the whole stream, no
        # guest memory contents to dump
        expected = dataclasses.replace(
            product.traits,
            guest=GuestKind.SIMULATED,
            boot_templates=False,
            migration_channels=False,
            ram_dump=False,
        )
        assert sim.traits == expected
        argv = sim.argv(VMSpec(), paths, image)
        assert argv[:5] == [sys.executable, "-m", "simulator", "--profile", profile]
        assert argv[5:] == product.argv(VMSpec(), paths, image)[1:]


def test_kvm_is_probed_only_when_a_selected_target_needs_it() -> None:
    """The KVM verdict is a question asked on first use, never while targets are listed.

    1. Listing every target of the inventory and selecting ``sim`` asks nothing.
    2. A selected QEMU target asks once, at its first command line, and then remembers.
    3. The verdict decides the accelerator (here: works -> -accel kvm).
    """
    asked: list[Arch] = []

    def kvm(host: Host, arch: Arch) -> KvmVerdict:
        return KvmVerdict(lambda: (asked.append(arch), (True, "probe says yes"))[1])

    offered = targets_for([LOCAL], FACTS, kvm)
    chosen = select(offered, ["sim"])
    assert chosen and all(t.name.startswith("sim:") for t in chosen)
    assert asked == []
    qemu = select(offered, ["qemu-x86_64"])[0]
    assert isinstance(qemu, QemuTarget)
    paths = RunPaths(Path("/tmp/hvlab-x"), Path("/tmp/logs"))
    image = GuestImage(Arch.X86_64, Path("/k"), Path("/i"), "t")
    argv = qemu.argv(VMSpec(), paths, image)
    qemu.argv(VMSpec(), paths, image)
    assert asked == [Arch.X86_64]
    assert argv[argv.index("-accel") + 1] == "kvm"


def test_boot_probe_sees_a_kernel_print(tmp_path: Path) -> None:
    """The KVM probe's detection, run under TCG where the guest does boot.

    1. The probe launches the test guest through Machine and reads the kernel's first
       line from the serial log without a console client: the verdict is "works".
    2. Nothing it started is left running (its own leak check would raise).
    """
    works, detail = _boot_under_kvm(Arch.X86_64, "qemu-system-x86_64", 60.0, Accel.TCG)
    assert works, detail
    assert "TCG" in detail


def test_run_on_simulator_builds_no_guest_image(tmp_path: Path) -> None:
    """``hvlab run --target sim`` neither builds guest images nor probes KVM.

    1. The run passes.
    2. The (empty) cache it was given is still without guest images and KVM verdicts.
    """
    cache = tmp_path / "cache"
    cache.mkdir()
    env = dict(os.environ, HVLAB_CACHE=str(cache))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            "--target",
            "sim:qemu-7.2",
            "--report-dir",
            str(tmp_path / "reports"),
            "-k",
            "test_greeting_shape",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert sorted(p.name for p in cache.iterdir()) == []


@pytest.mark.parametrize("profile", PROFILES)
def test_simulator_target_needs_no_kvm(profile: str) -> None:
    """The simulator runs anywhere: no sim target is unavailable for want of KVM.

    1. unavailable_reason is None for every profile.
    """
    assert SimTarget(profile).unavailable_reason() is None
