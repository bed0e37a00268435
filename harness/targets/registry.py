"""Which targets a run has: from hosts.ini groups and the hosts' facts."""

from __future__ import annotations

from collections.abc import Callable

from harness.hosts import HostFacts
from harness.inventory import Host
from harness.spec import Arch
from harness.targets.base import Target
from harness.targets.kvm import KvmVerdict
from harness.targets.qemu import QemuTarget
from harness.targets.sim import SIM_ARCHES, sim_targets
from harness.targets.stratovirt import StratoVirtTarget

KvmFor = Callable[[Host, Arch], KvmVerdict]


def targets_for(hosts: list[Host], facts: dict[str, HostFacts], kvm: KvmFor) -> list[Target]:
    """Targets offered by the hosts in ``facts`` (hosts without facts offer nothing).

    ``kvm(host, arch)`` gives a verdict that is probed only when a target asks for it
    (a selected target's first launch), never while targets are listed.
    """
    out: list[Target] = []
    for host in hosts:
        if host.name not in facts:
            continue
        native = Arch.parse(facts[host.name].arch)
        if "qemu" in host.groups:
            for arch in _arches(host, default=(Arch.X86_64, Arch.AARCH64)):
                out.append(QemuTarget(arch, kvm=kvm(host, arch)))
        if "stratovirt" in host.groups:
            for arch in _arches(host, default=(native,)):
                out.append(StratoVirtTarget(arch, kvm(host, arch)))
        if "simulator" in host.groups:
            features = host.var("hvlab_stratovirt_features")
            sims = sim_targets(_arches(host, default=SIM_ARCHES), features)
            wanted = host.var("hvlab_sim_targets")  # e.g. "sim:qemu-7.2": only these
            if wanted:
                names = {w.strip() for w in wanted.split(",") if w.strip()}
                sims = [t for t in sims if t.name in names]
            out += sims
    return out


def _arches(host: Host, default: tuple[Arch, ...]) -> tuple[Arch, ...]:
    text = host.var("hvlab_arches")
    if not text:
        return default
    return tuple(Arch.parse(a) for a in text.split(",") if a.strip())


def select(
    targets: list[Target], wanted: list[str], other_names: list[str] | None = None
) -> list[Target]:
    """Filter by --target names (exact, or a prefix such as 'qemu' or 'sim:').

    ``other_names`` are targets of another axis (the libvirt targets): naming them is
    not an error, and selects no hypervisor target.
    """
    if not wanted:
        return targets
    chosen = [t for t in targets if any(t.name.startswith(w) for w in wanted)]
    known = [t.name for t in targets] + list(other_names or [])
    unknown = [w for w in wanted if not any(n.startswith(w) for n in known)]
    if unknown:
        names = ", ".join(known) or "none"
        raise ValueError(f"unknown target(s) {', '.join(unknown)}; this run has: {names}")
    return chosen
