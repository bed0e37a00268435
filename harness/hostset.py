"""The run's hosts: how each is reached, what it is, which targets and placements it offers.

A target is one kind of hypervisor (``qemu-x86_64``, ``sim:qemu-7.2``, ...) verified on
its *home*: the first usable host of the inventory that offers it. Placements say where
a migration's two VMs run: ``same-host`` (both on the home) or ``A->B`` for every host A
whose ``hvlab_peer`` is B, both offering the kind, with the stream over the lab link to
B's ``hvlab_lab_address``. A host that cannot be used (unreachable, key refused, host key
unknown, no QEMU) still names its targets and placements, skipped with that reason.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.hosts import HostFacts, gather_facts, kvm_verdict, probe_kvm
from harness.inventory import Host
from harness.lab.endpoint import endpoint
from harness.lab.ssh import SshRunner
from harness.leaks import owner_tag
from harness.runner import LOCAL, Runner, private_dir
from harness.spec import Arch
from harness.targets.base import Target
from harness.targets.kvm import KvmVerdict
from harness.targets.qemu import QemuTarget
from harness.targets.registry import targets_for
from harness.targets.stratovirt import StratoVirtTarget


@dataclass(frozen=True)
class Placement:
    """Where a test's source and destination run."""

    src_host: str
    dst_host: str
    src: Runner = field(compare=False, repr=False)
    dst: Runner = field(compare=False, repr=False)
    problem: str | None = None  # why it cannot run (a skip reason)

    @property
    def cross(self) -> bool:
        return self.src_host != self.dst_host

    @property
    def name(self) -> str:
        return f"{self.src_host}->{self.dst_host}" if self.cross else "same-host"


def same_host(name: str, runner: Runner) -> Placement:
    return Placement(name, name, runner, runner)


class HostSet:
    """Runners, facts and problems of the inventory's hosts (ssh ones connected lazily)."""

    def __init__(self, hosts: list[Host], owner: str = "") -> None:
        self.hosts = hosts
        self.owner = owner or owner_tag(f"ssh-{uuid.uuid4().hex[:12]}")
        self._runners: dict[str, Runner] = {}
        self._facts: dict[str, HostFacts] = {}
        self._problems: dict[str, str] = {}
        self._kvm: dict[tuple[str, Arch], KvmVerdict] = {}
        self._control: Path | None = None
        self._homes: dict[str, str] = {}

    # -- hosts -----------------------------------------------------------------------------
    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def runner(self, name: str) -> Runner:
        if name not in self._runners:
            host = self.host(name)
            if host.connection == "local":
                self._runners[name] = LOCAL
            else:
                if self._control is None:
                    self._control = private_dir("hvlab-ssh-")
                self._runners[name] = SshRunner(endpoint(host), self._control, self.owner)
        return self._runners[name]

    def facts(self, name: str) -> HostFacts | None:
        """The host's facts, or None when it cannot be used (see ``problem``)."""
        if name not in self._facts and name not in self._problems:
            host = self.host(name)
            try:
                if host.connection == "local":
                    self._facts[name] = gather_facts(host, probe=False)
                else:
                    self._facts[name] = _remote_facts(host, self.runner(name))
            except HarnessError as exc:
                self._problems[name] = str(exc)
        return self._facts.get(name)

    def problem(self, name: str) -> str | None:
        self.facts(name)
        return self._problems.get(name)

    def usable(self) -> dict[str, HostFacts]:
        return {h.name: f for h in self.hosts if (f := self.facts(h.name)) is not None}

    def kvm_for(self, host: Host, arch: Arch) -> KvmVerdict:
        key = (host.name, arch)
        if key not in self._kvm:
            facts = self.facts(host.name)
            if facts is None:
                self._kvm[key] = KvmVerdict.fixed(False, "host unusable")
            elif host.connection == "local":
                self._kvm[key] = kvm_verdict(host, facts, arch)
            elif not facts.kvm_device or facts.arch != arch.value:
                self._kvm[key] = KvmVerdict.fixed(False, f"no KVM for {arch.value} there")
            else:
                runner, kernel = self.runner(host.name), facts.kernel_key
                self._kvm[key] = KvmVerdict(lambda: probe_kvm(arch, kernel, runner))
        return self._kvm[key]

    # -- targets and placements --------------------------------------------------------------
    def targets(self) -> list[Target]:
        """One target per kind, homed on the first host offering it (usable ones first)."""
        seen: dict[str, Target] = {}
        ordered = sorted(self.hosts, key=lambda h: self.facts(h.name) is None)
        for host in ordered:
            facts = self.facts(host.name)
            if facts is None:
                facts = HostFacts(
                    host=host.name, arch=host.var("hvlab_arch") or "x86_64", kernel=""
                )
            for t in targets_for([host], {host.name: facts}, self.kvm_for):
                if t.name not in seen:
                    seen[t.name] = t
                    self._homes[t.name] = host.name
        return list(seen.values())

    def home(self, target: Target) -> str:
        if not self._homes:
            self.targets()
        return self._homes.get(target.name, "localhost")

    def offers(self, host: Host, target: Target) -> bool:
        facts = self.facts(host.name) or _assumed(host)
        offered = targets_for([host], {host.name: facts}, self.kvm_for)
        return any(t.name == target.name for t in offered)

    def unavailable(self, target: Target) -> str | None:
        """Why ``target`` cannot run on its home, or None."""
        home = self.home(target)
        if problem := self.problem(home):
            return f"host {home}: {problem}"
        if self.host(home).connection == "local":
            return target.unavailable_reason()
        facts = self.facts(home)
        assert facts is not None
        if isinstance(target, QemuTarget) and target.arch.value not in facts.qemu:
            return f"host {home}: {target.executable} is not installed"
        if isinstance(target, StratoVirtTarget):
            if facts.stratovirt is None:
                return f"host {home}: stratovirt is not installed"
            if not target.kvm.works:
                return f"host {home}: StratoVirt needs working KVM and {target.kvm.detail}"
        return None

    def placements(self, target: Target) -> list[Placement]:
        home = self.home(target)
        out = [dataclasses.replace(same_host(home, LOCAL), problem=self.problem(home))]
        for host in self.hosts:
            peer = host.var("hvlab_peer")
            if not peer or not self.offers(host, target):
                continue
            if not any(h.name == peer for h in self.hosts):
                problem: str | None = f"hvlab_peer={peer} is not a host of the inventory"
            else:
                problem = self.problem(host.name) or self.problem(peer)
                if problem is None and not self.offers(self.host(peer), target):
                    problem = f"peer {peer} does not offer {target.name}"
            out.append(Placement(host.name, peer, LOCAL, LOCAL, problem))
        return out

    def resolve(self, placement: Placement) -> Placement:
        """The placement with its hosts' runners (connected on first use)."""
        return dataclasses.replace(
            placement, src=self.runner(placement.src_host), dst=self.runner(placement.dst_host)
        )

    def on_host(self, target: Target, name: str) -> Target:
        """``target`` as it runs on host ``name`` (that host's KVM verdict)."""
        if isinstance(target, QemuTarget | StratoVirtTarget):
            return dataclasses.replace(target, kvm=self.kvm_for(self.host(name), target.arch))
        return target

    def facts_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for host in self.hosts:
            facts = self._facts.get(host.name)
            out[host.name] = (
                facts.to_json() if facts else {"problem": self._problems.get(host.name)}
            )
        for (name, arch), verdict in self._kvm.items():
            entry = out.get(name, {})
            if verdict.decided and entry.get("arch") == arch.value:
                entry.update(kvm_works=verdict.works, kvm_detail=verdict.detail)
        return out

    def close(self) -> None:
        for runner in self._runners.values():
            if isinstance(runner, SshRunner):
                runner.close()
        self._runners.clear()
        if self._control is not None:
            import shutil

            shutil.rmtree(self._control, ignore_errors=True)
            self._control = None


def _assumed(host: Host) -> HostFacts:
    """What an unusable host would offer, from the inventory alone (its targets are named
    and skipped with its problem)."""
    return HostFacts(host=host.name, arch=host.var("hvlab_arch") or "x86_64", kernel="")


def _remote_facts(host: Host, runner: Runner) -> HostFacts:
    assert isinstance(runner, SshRunner)
    data = runner.facts()
    return HostFacts(
        host=host.name,
        arch=str(data["arch"]),
        kernel=str(data["kernel"]),
        qemu={str(k): str(v) for k, v in data.get("qemu", {}).items()},
        stratovirt=data.get("stratovirt"),
        libvirt=data.get("libvirt"),
        kvm_device=bool(data.get("kvm_device")),
        kvm_works=False,
        kvm_detail="probed when a target needs it",
        hugepages_total=int(data.get("hugepages_total", 0)),
        tools={str(k): bool(v) for k, v in data.get("tools", {}).items()},
        mem_available_kib=int(data.get("mem_available_kib", 0)),
        kernel_key=str(data.get("kernel_key", "")),
    )
