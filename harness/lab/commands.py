"""``hvlab hosts check`` and ``hvlab leaks``: what the lab's hosts are, and what is left.

``hosts check`` connects to every host of the inventory (ssh hosts through the same
client the runs use), prints its facts, the KVM verdict (probed for real unless
``--no-probe``), and the targets and placements it can run.

``leaks`` lists what hvlab leaves behind on this machine (processes tagged with an
owner, sockets under /tmp/hvlab-*, namespace labs, labs' folders) and on every ssh host
of the inventory with ``--hosts``.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness import reap
from harness.errors import HarnessError
from harness.hostset import HostSet
from harness.inventory import load_inventory
from harness.lab.netlab import lab_namespaces
from harness.leaks import LAB_ROOT, leftover_sockets, tagged_processes
from harness.spec import Arch


def hosts_check(inventory: Path, probe: bool, as_json: bool) -> int:
    hosts = HostSet(load_inventory(inventory))
    status = 0
    try:
        targets = hosts.targets()
        report: dict[str, object] = {}
        for host in hosts.hosts:
            facts = hosts.facts(host.name)
            if facts is None:
                status = 1
                problem = hosts.problem(host.name)
                report[host.name] = {"reachable": False, "problem": problem}
                if not as_json:
                    print(f"{host.name}: unreachable or unusable: {problem}")
                continue
            native = Arch.parse(facts.arch)
            verdict = hosts.kvm_for(host, native)
            kvm = (verdict.works, verdict.detail) if probe else (False, "not probed (--no-probe)")
            offered = [t for t in targets if hosts.offers(host, t)]
            homed = [t.name for t in offered if hosts.home(t) == host.name]
            peer = host.var("hvlab_peer")
            placements = ["same-host"] + ([f"{host.name}->{peer}"] if peer else [])
            entry = {
                **facts.to_json(),
                "reachable": True,
                "kvm_works": kvm[0],
                "kvm_detail": kvm[1],
                "targets": [t.name for t in offered],
                "home_of": homed,
                "placements": placements,
            }
            report[host.name] = entry
            if as_json:
                continue
            qemu = ", ".join(f"{a} {v}" for a, v in facts.qemu.items()) or "none"
            print(
                f"{host.name}: reachable ({host.connection}), {facts.arch}, kernel {facts.kernel}"
            )
            print(
                f"  qemu: {qemu}; stratovirt: {facts.stratovirt or 'absent'}; "
                f"libvirt: {facts.libvirt or 'absent'}"
            )
            print(f"  kvm: {'works' if kvm[0] else 'no'} ({kvm[1]})")
            mem = f"{facts.mem_available_kib // 1024} MiB" if facts.mem_available_kib else "?"
            tools = ", ".join(t for t, ok in sorted(facts.tools.items()) if ok) or "none"
            print(f"  free memory: {mem}; hugepages: {facts.hugepages_total}; tools: {tools}")
            print(f"  targets: {', '.join(t.name for t in offered) or 'none'}")
            print(
                f"  placements: {', '.join(placements)}; groups: {', '.join(sorted(host.groups))}"
            )
        if as_json:
            print(json.dumps(report, indent=2, default=str))
    finally:
        hosts.close()
    return status


def leaks(tmp: Path, inventory: Path | None, run: str | None, reap_dead: bool) -> int:
    """Print what is left; 1 if anything is.

    ``run``: only what that run left (its processes, folders, labs and namespaces), so
    concurrent runs on one machine do not fail each other; None: everything hvlab.
    ``reap_dead``: first remove what runs that are gone left, and say so.
    """
    if reap_dead:
        with reap.reaper_lock():
            dead = reap.find(None, tmp)
            for line in dead.lines():
                print(f"reaped {line}")
            reap.reap(dead)
    if run is not None:
        found = reap.find(run, tmp).lines()
        found += [f"leaked socket {s}" for s in leftover_sockets(tmp, run)]
    else:
        found = [f"leaked process {p.pid}: {p.cmdline[:150]}" for p in tagged_processes(None)]
        found += [f"leaked socket {s}" for s in leftover_sockets(tmp)]
        found += [f"leaked network namespace {n}" for n in lab_namespaces()]
        if LAB_ROOT.exists():
            found += [f"leaked lab {p}" for p in sorted(LAB_ROOT.iterdir())]
        found += [f"left by a dead run: {line}" for line in reap.find(None, tmp).lines()]
    if inventory is not None:
        found += _remote_leaks(inventory, run)
    for line in found:
        print(line)
    if found:
        return 1
    scope = f"run {run}" if run else "any run"
    print(f"no hvlab process, socket, folder, namespace or lab left behind ({scope})")
    return 0


def _remote_leaks(inventory: Path, run: str | None) -> list[str]:
    found: list[str] = []
    hosts = HostSet(load_inventory(inventory))
    try:
        for host in hosts.hosts:
            if host.connection == "local" or hosts.facts(host.name) is None:
                continue
            try:
                left = hosts.runner(host.name).tagged(None)
            except HarnessError as exc:
                found.append(f"host {host.name}: cannot check: {exc}")
                continue
            found += [
                f"host {host.name}: leaked process {p.pid}: {p.cmdline[:99]}"
                for p in left
                if run is None or p.owner.startswith(f"{run}/")
            ]
    finally:
        hosts.close()
    return found


def export(inventory: Path, folder: Path) -> int:
    """``hvlab lab export``: exporter configs and the places script from hosts.ini."""
    from harness.lab.pool import write_exports

    hosts = load_inventory(inventory)
    written = write_exports(hosts, folder)
    for path in written:
        print(f"wrote {path}")
    exporters = [p for p in written if p.suffix == ".yaml"]
    if not exporters:
        print("hvlab: the inventory has no ssh host: nothing to export")
        return 1
    print("on each lab host:  labgrid-exporter -c COORDINATOR --name HOST HOST.yaml")
    print(f"once:              LG_COORDINATOR=COORDINATOR sh {folder / 'places.sh'}")
    return 0
