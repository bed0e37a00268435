"""The suites' fixtures in two tiers (registered by harness/pytest_plugin.py).

Dimension fixtures say *what* a test runs with: ``topology``, ``standard_spec`` and
``transport`` have defaults and are overridden per test through ``request.param``
(``@pytest.mark.parametrize("transport", [...])`` or ``indirect=True``).

Consumer fixtures give a test what it works on, built from the dimensions by the
``vms`` factory (a ``VMFactory`` the plugin makes per test, which owns, shuts down and
leak-checks every VM): ``booted_vm``, ``paused_vm``, ``vm_pair`` (a source and a
destination listening on ``transport``) and ``saved_guest`` (a paused guest saved to
files, with what it held).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, assert_never

import pytest

from harness import snapshot, templates, workload
from harness.errors import HarnessError, SetupError
from harness.guest import GuestImage
from harness.hostset import Placement, same_host
from harness.leaks import check_no_leaks, owner_tag
from harness.machine import Machine
from harness.migration import Transport, incoming_uri
from harness.runner import LOCAL, Runner
from harness.spec import Arch, MachineType, Topology, VMSpec
from harness.targets.base import Target
from harness.targets.sim import simulated_image
from harness.targets.traits import GuestKind

Role = Literal["src", "dst"]
#: seed 003 "Migration": a unix socket is a local transport (both VMs on one host)
UNIX_CROSS_HOST = "unix-socket migration is same-host only (S003 Migration): n/a across hosts"


class VMFactory:
    """Owns every VM a test starts: launches them, shuts all down, then checks leaks on
    every host it used."""

    def __init__(
        self,
        target: Target,
        artifacts: Path,
        images: Callable[[Arch], GuestImage] | None = None,
        boot: templates.TemplateStore | None = None,
        placement: Placement | None = None,
        on_host: Callable[[Target, str], Target] | None = None,
    ) -> None:
        """``images`` builds the guest image of an arch (targets with a real guest);
        ``boot`` keeps boot templates (None: every booted VM boots cold); ``placement``
        says where sources and destinations run (default: both here); ``on_host`` gives
        the target as it runs on another host (that host's KVM verdict)."""
        self.target = target
        self._images = images
        self._boot = boot
        self.placement = placement or same_host("localhost", LOCAL)
        self._on_host = on_host
        self.artifacts = artifacts
        self.owner = owner_tag(f"t-{uuid.uuid4().hex[:16]}")
        self.machines: list[Machine] = []
        self._deferred: list[Callable[[], object]] = []

    def defer(self, cleanup: Callable[[], object]) -> None:
        """Run ``cleanup`` when the test's VMs are shut down (a proxy, a link the test set
        up for them)."""
        self._deferred.append(cleanup)

    def _where(self, role: Role) -> tuple[str, Runner]:
        p = self.placement
        return (p.dst_host, p.dst) if role == "dst" else (p.src_host, p.src)

    def create(
        self,
        spec: VMSpec,
        name: str | None = None,
        role: Role = "src",
        netns: str | None = None,
        variant: Target | None = None,
    ) -> Machine:
        """A VM (not started) on the placement's source host, or its destination host;
        in network namespace ``netns`` of that host if given. ``variant`` is this test's
        target with other launch options (a simulator told its guest's workload)."""
        reason = self.target.unsupported_reason(spec)
        if reason:
            pytest.skip(f"{self.target.name}: {reason}")
        host, runner = self._where(role)
        base = variant or self.target
        target = self._on_host(base, host) if self._on_host else base
        vm_name = name or f"vm{len(self.machines)}"
        machine = Machine(
            target,
            spec,
            self._image(self.target.arch, runner),
            vm_name,
            self.artifacts / vm_name,
            self.owner,
            runner,
            netns,
        )
        self.machines.append(machine)
        return machine

    def _image(self, arch: Arch, runner: Runner) -> GuestImage:
        """The real guest for hypervisors (copied to the host it runs on); the simulator
        models its guest, so it gets none."""
        match self.target.traits.guest:
            case GuestKind.SIMULATED:
                return simulated_image(arch)
            case GuestKind.IMAGE:
                if self._images is None:
                    raise SetupError(f"{self.target.name}: no guest image builder given")
                image = self._images(arch)
                if runner is LOCAL:
                    return image
                return dataclasses.replace(
                    image, kernel=runner.stage(image.kernel), initrd=runner.stage(image.initrd)
                )
            case other:
                assert_never(other)

    def launch(
        self,
        spec: VMSpec,
        name: str | None = None,
        wait_guest: bool = True,
        role: Role = "src",
        netns: str | None = None,
        variant: Target | None = None,
    ) -> Machine:
        """A running VM; a booted guest comes from a restored template where the target
        can (see harness/templates.py), which is what a cold boot would give, faster."""
        if (
            wait_guest
            and self._boot is not None
            and templates.enabled(self.target, spec)
            and netns is None  # a template restores without the namespace's taps
            and variant is None
        ):
            if reason := self.target.unsupported_reason(spec):
                pytest.skip(f"{self.target.name}: {reason}")
            host, runner = self._where(role)
            restored = self._boot.restore_spec(
                self._on_host(self.target, host) if self._on_host else self.target,
                spec,
                self._image(self.target.arch, runner),
                self.owner,
                self.artifacts / "boot-template",
                runner,
            )
            return self.create(restored, name, role).launch(wait_guest=False, restored=True)
        return self.create(spec, name, role, netns, variant).launch(wait_guest=wait_guest)

    def close(self) -> None:
        errors = []
        for m in reversed(self.machines):
            try:
                m.shutdown()
            except Exception as exc:
                errors.append(f"{m.name}: {exc}")
        for cleanup in reversed(self._deferred):
            try:
                cleanup()
            except Exception as exc:
                errors.append(f"cleanup: {exc}")
        remote = {id(m.runner): m.runner for m in self.machines if m.runner is not LOCAL}
        for runner in remote.values():
            try:
                left = runner.kill_tagged(self.owner)
            except HarnessError as exc:
                errors.append(f"host {runner.name}: leak check failed: {exc}")
                continue
            errors += [f"host {runner.name}: pid {p.pid} ({p.cmdline[:100]}) left" for p in left]
        local = [m for m in self.machines if m.runner is LOCAL]
        sockets = [p for m in local for p in (m.paths.qmp, m.paths.serial)]
        check_no_leaks(self.owner, sockets)
        if errors:
            raise HarnessError("shutdown failed: " + "; ".join(errors))


# -- dimensions ----------------------------------------------------------------------------
@pytest.fixture
def topology(request: pytest.FixtureRequest) -> Topology:
    """2 of 4 possible vCPUs online: 2 sockets x 2 cores x 1 thread."""
    return getattr(request, "param", Topology(cpus=2, sockets=2, cores=2, threads=1, maxcpus=4))


@pytest.fixture
def standard_spec(request: pytest.FixtureRequest, target: Target, topology: Topology) -> VMSpec:
    """The target's standard machine (q35 on x86_64, virt on aarch64), 256 MiB."""
    default = VMSpec(machine=MachineType.standard(target.arch), topology=topology, memory_mib=256)
    return getattr(request, "param", default)


@pytest.fixture
def placement(request: pytest.FixtureRequest) -> Placement:
    """Where the source and destination run (the plugin parametrizes it from the
    inventory: same-host, and A->B for each host A whose hvlab_peer is B)."""
    return getattr(request, "param", same_host("localhost", LOCAL))


@pytest.fixture
def transport(request: pytest.FixtureRequest) -> Transport:
    """The migration stream's transport (tcp unless a test parametrizes it)."""
    return getattr(request, "param", Transport.TCP)


# -- consumers -----------------------------------------------------------------------------
@dataclass
class VMPair:
    src: Machine
    dst: Machine
    transport: Transport


@dataclass(frozen=True)
class SavedGuest:
    """A guest saved while paused, and what it held: its counter and memory pattern."""

    snapshot: snapshot.Snapshot
    spec: VMSpec
    counter: int
    digest: str
    saved_at: float


def destination(vms: VMFactory, spec: VMSpec, transport: Transport, name: str = "dst") -> Machine:
    """A destination with the source's command line plus -incoming (S003 "Migration"), on
    the placement's destination host, listening on its lab address."""
    if vms.placement.cross and transport is Transport.UNIX:
        pytest.skip(f"{UNIX_CROSS_HOST} ({vms.placement.name})")
    incoming = incoming_uri(transport, vms.target.traits, vms.placement.dst)
    return vms.launch(
        dataclasses.replace(spec, incoming=incoming), name, wait_guest=False, role="dst"
    )


def save_paused(vms: VMFactory, spec: VMSpec, name: str = "src") -> SavedGuest:
    """Boot, start the guest counter, write a pattern, pause, save; the VM is then shut down."""
    vm = vms.launch(spec, name)
    workload.start_counter(vm)
    digest = workload.write_pattern(vm, 16)
    before = workload.counter(vm)
    vm.pause()
    state = vm.qmp.execute("query-status")["status"]
    if state != "paused":
        raise HarnessError(f"{vm.name}: runstate {state} after stop, not paused")
    snap, result = snapshot.save(vm, vms.artifacts / "snapshot")
    if result.status != "completed":
        raise HarnessError(f"{vm.name}: snapshot ended {result.status}: {result.final}")
    vm.shutdown()
    return SavedGuest(snap, spec, before, digest, time.monotonic())


@pytest.fixture
def booted_vm(vms: VMFactory, standard_spec: VMSpec) -> Machine:
    """A running VM of the standard spec whose guest shell answers."""
    return vms.launch(standard_spec, "src")


@pytest.fixture
def paused_vm(booted_vm: Machine) -> Machine:
    """The booted VM after ``stop`` and its STOP event."""
    booted_vm.pause()
    return booted_vm


@pytest.fixture
def vm_pair(
    vms: VMFactory, standard_spec: VMSpec, transport: Transport, placement: Placement
) -> VMPair:
    """A booted source and a destination listening on ``transport``, where ``placement``
    puts them (``vms`` already follows it)."""
    src = vms.launch(standard_spec, "src")
    return VMPair(src, destination(vms, standard_spec, transport), transport)


@pytest.fixture
def saved_guest(vms: VMFactory, standard_spec: VMSpec) -> SavedGuest:
    """The standard VM saved while paused (its process is gone; restore from the files)."""
    return save_paused(vms, standard_spec)
