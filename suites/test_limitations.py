"""Documented limitations: blockers and source/destination mismatches (S003 "Limitations",
S004 "约束与限制")."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from harness import hotplug, migration
from harness.errors import QMPCommandError
from harness.fixtures import VMFactory, destination
from harness.migration import Transport
from harness.spec import DeviceSpec, MachineType, Topology, VMSpec
from suites.catalog import FAILED, ErrorReply, Expect

#: every limitation is checked with both VMs on one host and, where the inventory has a
#: pair, from host A to host B over the lab link
pytestmark = pytest.mark.usefixtures("placement")


def assert_migration_refused(
    vms: VMFactory, src_spec: VMSpec, dst_spec: VMSpec, refusal: ErrorReply | str
) -> None:
    """Migrate src -> dst and check it fails as the catalog says, without losing the source.

    ``refusal`` is the catalog's value for the target: an ``ErrorReply`` (``migrate``
    itself is refused with that class and desc text) or ``FAILED`` (``migrate`` returns
    and the transfer ends with status failed). Either way the source runs on and its
    guest answers.
    """
    src = vms.launch(src_spec, "src")
    dst = destination(vms, dst_spec, Transport.TCP)
    uri = migration.destination_uri(dst, Transport.TCP)
    if isinstance(refusal, ErrorReply):
        with pytest.raises(QMPCommandError) as info:
            migration.start(src, uri)
        problem = refusal.mismatch(info.value.error_class, info.value.desc)
        assert problem is None, problem
    else:
        assert refusal == FAILED, refusal
        watch = migration.start(src, uri)
        result = migration.finish(watch, None, timeout=120)
        assert result.status == FAILED, result.final
    assert migration.runstate(src) == "running"
    assert src.console.run("echo survived") == (0, "survived")


@pytest.mark.catalog("LIM-MISMATCH-MEM")
def test_memory_size_mismatch_is_refused(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """-m differs between source and destination.

    1. The migration fails as the catalog says (here: migrate returns, status failed).
    2. The source keeps running and its guest answers.
    """
    other = dataclasses.replace(standard_spec, memory_mib=standard_spec.memory_mib * 2)
    assert_migration_refused(vms, standard_spec, other, expect("LIM-MISMATCH-MEM").value)


@pytest.mark.catalog("LIM-MISMATCH-SMP")
def test_vcpu_count_mismatch_is_refused(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """-smp cpus differs (same maxcpus) between source and destination.

    1. The migration fails as the catalog says (migrate returns, status failed).
    2. The source keeps running and its guest answers.
    """
    topo = standard_spec.topology
    fewer = Topology(
        cpus=topo.cpus - 1,
        sockets=topo.sockets,
        cores=topo.cores,
        threads=topo.threads,
        maxcpus=topo.max_cpus,
    )
    assert_migration_refused(
        vms,
        standard_spec,
        dataclasses.replace(standard_spec, topology=fewer),
        expect("LIM-MISMATCH-SMP").value,
    )


def _with_nic(spec: VMSpec, mac: str) -> VMSpec:
    nic = DeviceSpec(
        "virtio-net-pci",
        "net0",
        (("netdev", "n0"), ("mac", mac), ("bus", "pcie.1"), ("addr", "0x0")),
    )
    return dataclasses.replace(spec, netdevs=("n0",), devices=(*hotplug.root_ports(1), nic))


@pytest.mark.catalog("LIM-MISMATCH-MAC")
def test_mac_mismatch_is_refused(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """virtio-net's MAC differs between source and destination.

    1. The migration fails as the catalog says (migrate returns, status failed).
    2. The source keeps running and its guest answers.
    """
    assert_migration_refused(
        vms,
        _with_nic(standard_spec, "52:54:00:00:00:01"),
        _with_nic(standard_spec, "52:54:00:00:00:02"),
        expect("LIM-MISMATCH-MAC").value,
    )


@pytest.mark.catalog("LIM-MIG-BLOCKERS")
def test_balloon_blocks_migration(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """A documented blocker (virtio balloon) prevents live migration.

    1. migrate of a VM with a balloon device is refused with the catalog's error class
       (and desc text, where upstream has one).
    2. The source keeps running and its guest answers.
    """
    spec = dataclasses.replace(
        standard_spec, devices=(DeviceSpec("virtio-balloon-pci", "balloon0"),)
    )
    assert_migration_refused(vms, spec, spec, expect("LIM-MIG-BLOCKERS").value)


@pytest.mark.catalog("MIG-MACHINE-TYPES")
def test_microvm_refuses_live_migration(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """microvm does not live-migrate (q35 and virt do: see test_migration).

    1. migrate from a microvm is refused with the catalog's error class and desc text.
    2. The source keeps running and its guest answers.
    """
    micro = dataclasses.replace(standard_spec, machine=MachineType.MICROVM)
    assert_migration_refused(vms, micro, micro, expect("MIG-MACHINE-TYPES").value)
