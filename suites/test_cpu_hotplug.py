"""vCPU hotplug on x86_64 q35 (StratoVirt docs/cpu_hotplug.md; QEMU's equivalent,
docs/system/cpu-hotplug.rst, by socket/core/thread ids). The catalog (suites/claims_cpu.py)
says how the products name and announce a vCPU; on aarch64 targets the q35 machine does
not exist, so these tests skip there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from harness import hotplug, migration
from harness.errors import QMPCommandError
from harness.fixtures import VMFactory, destination
from harness.migration import Transport
from harness.spec import MachineType, Topology, VMSpec
from harness.waits import wait_for
from harness.workload import read_pattern, write_pattern
from suites.catalog import ErrorReply, Expect

#: 2 of 4 vCPUs online (2 sockets x 2 cores x 1 thread): vCPU 2 is socket 1, core 0.
TOPOLOGY = Topology(cpus=2, sockets=2, cores=2, threads=1, maxcpus=4)
HOT = 2


@pytest.fixture
def q35_spec(standard_spec: VMSpec) -> VMSpec:
    """The q35 machine with room for two more vCPUs."""
    return dataclasses.replace(standard_spec, machine=MachineType.Q35, topology=TOPOLOGY)


@pytest.mark.catalog("CPU-HOTPLUG")
def test_vcpu_hotplug(vms: VMFactory, q35_spec: VMSpec, expect: Callable[[str], Expect]) -> None:
    """An offline vCPU is plugged into a running guest.

    1. device_add of vCPU 2 (named the target's way) returns {}.
    2. The event the catalog names for a plug arrives (none on QEMU).
    3. The guest has the vCPU (/sys/devices/system/cpu/present; an x86 guest without
       udev leaves it offline).
    """
    vm = vms.launch(q35_spec)
    mark = vm.qmp.events.mark()
    assert hotplug.add_cpu(vm, "cpu2", HOT, TOPOLOGY) == {}
    event = expect("CPU-HOTPLUG").value
    if event:
        vm.qmp.wait_event(event, since=mark, timeout=10)
    wait_for(lambda: HOT in hotplug.present_cpus(vm), 30, "the guest to have vCPU 2")


@pytest.mark.catalog("CPU-HOTPLUG-LISTED")
def test_hotplugged_vcpu_is_listed(vms: VMFactory, q35_spec: VMSpec) -> None:
    """The vCPU list follows a hotplug.

    1. Before: the list has the two boot vCPUs, at sockets 0 cores 0 and 1.
    2. device_add of vCPU 2 returns {}.
    3. After: the list has three vCPUs, the new one at socket 1, core 0, thread 0.
    """
    vm = vms.launch(q35_spec, wait_guest=False)
    before = sorted(hotplug.position(c["props"]) for c in hotplug.vcpus(vm))
    assert before == [(0, 0, 0), (0, 1, 0)]
    assert hotplug.add_cpu(vm, "cpu2", HOT, TOPOLOGY) == {}
    after = sorted(hotplug.position(c["props"]) for c in hotplug.vcpus(vm))
    assert after == [*before, TOPOLOGY.position(HOT)]


@pytest.mark.catalog("CPU-HOTPLUG-MAX")
def test_vcpu_beyond_maxcpus_is_refused(
    vms: VMFactory, q35_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """The topology bounds hotplug.

    1. device_add of vCPU 4 (maxcpus) is refused with the catalog's class and desc text.
    2. vCPU 3, the last slot, is then accepted.
    """
    expected = expect("CPU-HOTPLUG-MAX").value
    assert isinstance(expected, ErrorReply)
    vm = vms.launch(q35_spec, wait_guest=False)
    with pytest.raises(QMPCommandError) as info:
        hotplug.add_cpu(vm, "cpu4", TOPOLOGY.max_cpus, TOPOLOGY)
    problem = expected.mismatch(info.value.error_class, info.value.desc)
    assert problem is None, problem
    assert hotplug.add_cpu(vm, "cpu3", TOPOLOGY.max_cpus - 1, TOPOLOGY) == {}


@pytest.mark.catalog("CPU-UNPLUG")
def test_vcpu_unplug(vms: VMFactory, q35_spec: VMSpec, expect: Callable[[str], Expect]) -> None:
    """A hot-plugged vCPU is unplugged from a running guest.

    1. device_add of vCPU 2 returns {}; the guest has it (and its plug event, if any,
       arrived, so it is not taken for the unplug's).
    2. device_del of its id returns {}.
    3. The event the catalog names for an unplug arrives with its data (QEMU:
       DEVICE_DELETED for the vCPU's lapic, once the guest ejected the vCPU).
    4. The guest no longer has the vCPU.
    """
    event, data = expect("CPU-UNPLUG").value
    match = {key: value.format(id="cpu2") for key, value in data.items()}
    vm = vms.launch(q35_spec)
    mark = vm.qmp.events.mark()
    assert hotplug.add_cpu(vm, "cpu2", HOT, TOPOLOGY) == {}
    plugged = expect("CPU-HOTPLUG").value
    if plugged:
        vm.qmp.wait_event(plugged, since=mark, timeout=10)
    # the guest must be done with the plug: QEMU's guest drops an eject request that
    # arrives while it still inserts the vCPU
    wait_for(lambda: HOT in hotplug.present_cpus(vm), 30, "the guest to have vCPU 2")
    mark = vm.qmp.events.mark()
    assert vm.qmp.execute("device_del", {"id": "cpu2"}) == {}
    vm.qmp.wait_event(event, match, since=mark, timeout=60)
    wait_for(lambda: HOT not in hotplug.present_cpus(vm), 30, "the guest to drop vCPU 2")


@pytest.mark.catalog("CPU-HOTPLUG-MIGRATE")
def test_migrate_with_a_hotplugged_vcpu(
    vms: VMFactory, q35_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """A VM with a hot-plugged vCPU goes to a destination started without it.

    1. vCPU 2 is plugged and the guest has it.
    2. The migration to a destination with the boot command line (2 vCPUs) ends, on the
       source, as the catalog says (no return path: the source does not hear of it).
    3. The destination refuses the stream: it exits, not with success, naming the
       vCPU's section the catalog names.
    4. The source keeps its guest: its memory pattern reads back intact once it runs.
    """
    src = vms.launch(q35_spec, "src")
    assert hotplug.add_cpu(src, "cpu2", HOT, TOPOLOGY) == {}
    wait_for(lambda: HOT in hotplug.present_cpus(src), 30, "the guest to have vCPU 2")
    digest = write_pattern(src, 8)
    dst = destination(vms, q35_spec, Transport.TCP)
    watch = migration.start(src, migration.destination_uri(dst, Transport.TCP))
    final = watch.until(migration.TERMINAL, timeout=120)
    assert final["status"] == "completed", final
    assert dst.wait_exit(timeout=30) != 0
    assert expect("CPU-HOTPLUG-MIGRATE").value in dst.stderr_tail(3), dst.stderr_tail(60)
    if migration.runstate(src) != "running":
        src.qmp.execute("cont")
    assert read_pattern(src) == digest


@pytest.mark.catalog("CPU-UNPLUG-MIGRATE")
def test_migrate_after_vcpu_unplug(vms: VMFactory, q35_spec: VMSpec) -> None:
    """A hot-plugged vCPU is unplugged, then the VM migrates.

    1. vCPU 2 is plugged, then unplugged; the guest lets it go.
    2. The migration to a destination with the boot command line completes and the
       destination runs.
    3. The guest's memory reads back intact there.
    """
    src = vms.launch(q35_spec, "src")
    assert hotplug.add_cpu(src, "cpu2", HOT, TOPOLOGY) == {}
    wait_for(lambda: HOT in hotplug.present_cpus(src), 30, "the guest to have vCPU 2")
    assert src.qmp.execute("device_del", {"id": "cpu2"}) == {}
    wait_for(lambda: HOT not in hotplug.present_cpus(src), 30, "the guest to drop vCPU 2")
    digest = write_pattern(src, 8)
    dst = destination(vms, q35_spec, Transport.TCP)
    result = migration.migrate(src, dst, Transport.TCP)
    assert result.status == "completed" and result.dst_runstate == "running", result.final
    assert read_pattern(dst) == digest
