"""VM-level behaviour of the simulator core: lifecycle, hotplug, migration outcomes."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from simulator.model import (
    CpuTopology,
    Device,
    DeviceClass,
    MachineType,
    QmpError,
    VMSpec,
    Workload,
    World,
    guest_ack_unplug,
)
from simulator.model.migration.status import STRATOVIRT_TRANSITIONS, MigrationStatus
from simulator.model.units import MiB

URI = "tcp:127.0.0.1:4446"


def _pair(
    profile: str, spec: VMSpec, dst_spec: VMSpec | None = None
) -> tuple[World, object, object]:
    w = World(seed=0)
    src = w.create_vm("src", spec, profile)
    dst = w.create_vm("dst", dst_spec or spec, profile, incoming=URI)
    return w, src, dst


@given(
    st.sampled_from(["qemu-7.2", "stratovirt-2.4", "stratovirt-2.5"]),
    st.sampled_from(["none", "cancel", "fail", "kill-dst"]),
    st.floats(0.0, 20.0),
    st.integers(16, 512),
    st.floats(0, 300),
)
# found by a CI run: StratoVirt's cancel after the final stage began (the source paused)
# must let the migration complete (canceled -> completed), not leave a paused source
@example("stratovirt-2.4", "cancel", 1.0, 140, 163.0)
def test_exactly_one_copy_after_any_outcome(
    profile: str, what: str, at: float, ws: int, rate: float
) -> None:
    """Single-owner invariant over outcomes.

    1. migrate is accepted between two matching q35 VMs.
    2. at every step at most one VM runs the guest and exactly one holds it.
    3. after the migration settles exactly one VM holds the guest, and it runs.
    4. a completed migration leaves equal memory images on source and destination.
    """
    spec = VMSpec(machine=MachineType.Q35, workload=Workload(ws * MiB, rate * MiB))
    w, src, dst = _pair(profile, spec)
    reply, _ = src.execute("migrate", {"uri": URI})  # type: ignore[attr-defined]
    assert reply == {}
    t = 0.0
    while t < at:
        w.advance(0.25)
        t += 0.25
        assert len(w.running_copies("guest0")) <= 1 and len(w.copies("guest0")) == 1
    if what == "cancel":
        src.execute("migrate_cancel", {})  # type: ignore[attr-defined]
    elif what == "fail":
        w.fail_link(src)  # type: ignore[arg-type]
    elif what == "kill-dst" and not dst.owns_guest:  # type: ignore[attr-defined]
        w.kill(dst)  # type: ignore[arg-type]
    w.run_until_settled(limit=600)
    owners = w.copies("guest0")
    assert len(owners) == 1 and owners[0].running
    if dst.alive and dst.owns_guest:  # type: ignore[attr-defined]
        assert dst.memory == src.memory  # type: ignore[attr-defined]


@given(
    st.lists(
        st.sampled_from(["none", "setup", "active", "completed", "failed", "canceled"]), max_size=8
    )
)
def test_stratovirt_cancel_follows_transfer_table(seq: list[str]) -> None:
    """StratoVirt migrate_cancel on an idle standard VM.

    1. it succeeds exactly when (status -> canceled) is in protocol.rs transfer().
    2. the error text names both states.
    """
    w = World()
    vm = w.create_vm("v", VMSpec(machine=MachineType.Q35), "stratovirt-2.5")
    for name in seq:
        vm.migration_status = MigrationStatus(name)
        reply, _ = vm.execute("migrate_cancel", {})
        legal = (MigrationStatus(name), MigrationStatus.CANCELED) in STRATOVIRT_TRANSITIONS
        assert (reply == {}) == legal
        if not legal:
            assert isinstance(reply, QmpError) and f"from {name} to canceled" in reply.desc


def test_microvm_rules_per_profile() -> None:
    """Microvm on StratoVirt profiles.

    1. live migration is refused with "MicroVM does not support migration".
    2. a file: snapshot is accepted.
    3. blk slots: 4 in code (stratovirt-2.5), 6 in the docs (stratovirt-doc).
    4. device_del emits DEVICE_DELETED at once with path = id.
    """
    for profile, slots in (("stratovirt-2.5", 4), ("stratovirt-doc", 6)):
        w = World()
        vm = w.create_vm("m", VMSpec(machine=MachineType.MICROVM), profile)
        reply, _ = vm.execute("migrate", {"uri": URI})
        assert isinstance(reply, QmpError) and reply.desc == "MicroVM does not support migration"
        assert vm.execute("migrate", {"uri": "file:/tmp/snap"})[0] == {}
        ok = 0
        for i in range(7):
            vm.execute("blockdev-add", {"node-name": f"d{i}", "file": {"filename": f"/f{i}"}})
            r, _ = vm.execute(
                "device_add",
                {"id": f"d{i}", "driver": "virtio-blk-mmio", "addr": hex(i), "drive": f"d{i}"},
            )
            ok += r == {}
        assert ok == slots
        assert vm.execute("device_del", {"id": "d0"})[1] == [
            ("DEVICE_DELETED", {"device": "d0", "path": "d0"})
        ]


def test_pci_hotplug_root_port_and_guest_ack() -> None:
    """Standard VM hotplug.

    1. device_add needs a pcie-root-port bus at addr 0 (pcie.0 and addr 1 refused).
    2. device_del replies at once with no event.
    3. DEVICE_DELETED arrives only after the guest acknowledges.
    """
    port = Device("pcie.1", DeviceClass.ROOT_PORT, "pcie-root-port", "pcie.0", 1)
    w = World()
    vm = w.create_vm("q", VMSpec(machine=MachineType.Q35, devices=(port,)), "stratovirt-2.5")
    vm.execute("blockdev-add", {"node-name": "d", "file": {"filename": "/x"}})
    base = {"id": "d", "driver": "virtio-blk-pci", "drive": "d"}
    assert isinstance(
        vm.execute("device_add", {**base, "bus": "pcie.0", "addr": "0x0"})[0], QmpError
    )
    assert isinstance(
        vm.execute("device_add", {**base, "bus": "pcie.1", "addr": "0x1"})[0], QmpError
    )
    assert vm.execute("device_add", {**base, "bus": "pcie.1", "addr": "0x0"})[0] == {}
    assert vm.execute("device_del", {"id": "d"}) == ({}, [])
    assert guest_ack_unplug(vm, "d") == [
        ("DEVICE_DELETED", {"device": "d", "path": "/machine/peripheral/d"})
    ]


def test_destination_config_checks() -> None:
    """StratoVirt destination check_vm_config.

    1. a vCPU-count mismatch fails the migration; the source keeps running.
    2. the destination process exits with code 1.
    """
    w, src, dst = _pair(
        "stratovirt-2.5", VMSpec(smp=CpuTopology(cpus=2)), VMSpec(smp=CpuTopology(cpus=4))
    )
    assert src.execute("migrate", {"uri": URI})[0] == {}  # type: ignore[attr-defined]
    w.run_until_settled()
    assert src.execute("query-migrate", {})[0] == {"status": "failed"}  # type: ignore[attr-defined]
    assert src.running and dst.exit_code == 1  # type: ignore[attr-defined]


def test_queries_shapes() -> None:
    """query-cpus / query-hotpluggable-cpus in seed 004's shapes.

    1. query-cpus lists online vCPUs with CPU, arch, props, qom_path, thread_id.
    2. microvm query-hotpluggable-cpus has qom-path only for online vCPUs.
    """
    w = World()
    vm = w.create_vm(
        "m",
        VMSpec(machine=MachineType.MICROVM, smp=CpuTopology(cpus=2, maxcpus=3)),
        "stratovirt-2.5",
    )
    cpus, _ = vm.execute("query-cpus", {})
    assert isinstance(cpus, list) and [c["CPU"] for c in cpus] == [0, 1]
    assert set(cpus[0]) == {"CPU", "arch", "current", "halted", "props", "qom_path", "thread_id"}
    hp, _ = vm.execute("query-hotpluggable-cpus", {})
    assert isinstance(hp, list) and ["qom-path" in e for e in hp] == [True, True, False]


def test_profile_differences_in_hotplug_status_and_cancel() -> None:
    """Profile data, not ifs: the differences the suites observe.

    1. QEMU 7.2 plugs behind a root port at a slot other than 0 (no slot check).
    2. The doc profile's paused VM reports running true (S004's example); 2.5 false.
    3. After a completed snapshot, migrate_cancel errors on 2.5 and is {} on the doc.
    """
    port = Device("pcie.1", DeviceClass.ROOT_PORT, "pcie-root-port", "pcie.0", 1)
    w = World()
    q = w.create_vm("q", VMSpec(machine=MachineType.Q35, devices=(port,)), "qemu-7.2")
    q.execute("blockdev-add", {"driver": "raw", "node-name": "d", "file": {"filename": "/x"}})
    args = {"id": "d", "driver": "virtio-blk-pci", "drive": "d", "bus": "pcie.1", "addr": "0x1"}
    assert q.execute("device_add", args)[0] == {}
    for profile, running, cancel_ok in (
        ("stratovirt-doc", True, True),
        ("stratovirt-2.5", False, False),
    ):
        vm = w.create_vm(profile, VMSpec(machine=MachineType.Q35), profile)
        vm.execute("stop", {})
        assert vm.execute("query-status", {})[0]["running"] is running
        assert vm.execute("migrate", {"uri": "file:/tmp/snap"})[0] == {}
        reply = vm.execute("migrate_cancel", {})[0]
        assert (reply == {}) is cancel_ok
        assert vm.execute("query-migrate", {})[0] == {"status": "completed"}
