"""Which targets a run has: from hosts.ini groups and the local host's facts."""

from __future__ import annotations

from harness.hosts import HostFacts
from harness.inventory import Host
from harness.spec import Arch
from harness.targets.base import Target
from harness.targets.qemu import QemuTarget
from harness.targets.sim import sim_targets
from harness.targets.stratovirt import StratoVirtTarget


def targets_for(hosts: list[Host], facts: dict[str, HostFacts]) -> list[Target]:
    """Targets offered by the inventory; remote hosts' targets are named but skipped."""
    out: list[Target] = []
    for host in hosts:
        if host.connection != "local":
            continue
        f = facts[host.name]
        native = Arch.parse(f.arch)
        if "qemu" in host.groups:
            for arch in _arches(host, default=(Arch.X86_64, Arch.AARCH64)):
                accel = "kvm" if (arch is native and f.kvm_works) else "tcg"
                out.append(QemuTarget(arch, accel=accel))
        if "stratovirt" in host.groups:
            for arch in _arches(host, default=(native,)):
                out.append(StratoVirtTarget(arch, f.kvm_works and arch is native, f.kvm_detail))
        if "simulator" in host.groups:
            out += sim_targets(_arches(host, default=(Arch.X86_64,))[0])
    return out


def _arches(host: Host, default: tuple[Arch, ...]) -> tuple[Arch, ...]:
    text = host.var("hvlab_arches")
    if not text:
        return default
    return tuple(Arch.parse(a) for a in text.split(",") if a.strip())


def select(targets: list[Target], wanted: list[str]) -> list[Target]:
    """Filter by --target names (exact, or a prefix such as 'qemu' or 'sim:')."""
    if not wanted:
        return targets
    chosen = [t for t in targets if any(t.name == w or t.name.startswith(w) for w in wanted)]
    unknown = [w for w in wanted if not any(t.name == w or t.name.startswith(w) for t in targets)]
    if unknown:
        names = ", ".join(t.name for t in targets) or "none"
        raise ValueError(f"unknown target(s) {', '.join(unknown)}; this run has: {names}")
    return chosen
