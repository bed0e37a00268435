"""Two simulator processes migrate over real sockets; snapshots round-trip through files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from harness import workload
from harness.fixtures import VMFactory
from harness.machine import Machine
from harness.migration import Transport, destination_uri, incoming_uri
from harness.spec import VMSpec
from harness.targets.sim import SimTarget
from harness.targets.traits import SourceAfterMigration
from harness.waits import wait_for

#: 1 GiB guest, 64 MiB written while it migrates; 20x faster than real time.
SIM_OPTS = ["--time-scale", "20", "--workload", "ws=64M,rate=32M", "--resident", "96M"]


def sim_factory(profile: str, options: list[str], logs: Path) -> VMFactory:
    """The suites' VM factory on a simulator target: it owns, stops and leak-checks."""
    return VMFactory(SimTarget(profile, options=tuple(options)), logs)


def _completed(vm: Machine) -> bool:
    return bool(vm.qmp.execute("query-migrate")["status"] == "completed")


@pytest.mark.parametrize("profile", ["qemu-7.2", "stratovirt-2.5"])
@pytest.mark.parametrize("transport_name", ["tcp", "unix"])
def test_migration_memory_arrives_identical(
    tmp_path: Path, profile: str, transport_name: str
) -> None:
    """A live migration between two simulator processes over a real socket.

    1. The source guest writes a memory pattern and runs a counter.
    2. migrate is accepted and the source reaches "completed".
    3. The destination verified the stream against the source's digest (else it exits 1)
       and runs; the digest it received equals the stopped source's memory digest.
    4. The destination guest reads back the same pattern md5.
    5. The counter carried over and keeps advancing on the destination.
    6. StratoVirt's source process exits 0 after completion; QEMU's stays postmigrate.
    """
    vms = sim_factory(profile, SIM_OPTS, tmp_path)
    try:
        src = vms.launch(VMSpec(memory_mib=1024), "src")
        transport = Transport(transport_name)
        dst = vms.launch(
            VMSpec(memory_mib=1024, incoming=incoming_uri(transport, vms.target.traits)),
            "dst",
            wait_guest=False,
        )
        md5 = workload.write_pattern(src, 32, 7)
        workload.start_counter(src)
        src.qmp.execute("migrate", {"uri": destination_uri(dst, transport)})
        src_digest = None
        if src.target.traits.source_after_migration is SourceAfterMigration.EXITS:
            assert src.wait_exit(60) == 0  # 6 (StratoVirt): the source exits after completion
        else:
            wait_for(lambda: _completed(src), 60, "the source to complete")
            assert src.qmp.execute("query-status")["status"] == "postmigrate"  # 6 (QEMU)
            src_digest = src.qmp.execute("x-hvlab-memory-digest")["digest"]
        wait_for(lambda: _completed(dst), 20, "the destination to complete")
        assert dst.qmp.execute("query-status")["status"] == "running"
        received = dst.qmp.execute("x-hvlab-memory-digest")["received"]
        if src_digest is not None:
            assert received == src_digest
        assert workload.read_pattern(dst) == md5
        first = workload.counter(dst)
        assert first > 0
        wait_for(lambda: workload.counter(dst) > first, 10, "the counter to advance")
    finally:
        vms.close()


def test_snapshot_restore_keeps_memory(tmp_path: Path) -> None:
    """migrate file:DIR writes memory and state; -incoming file:DIR restores them.

    1. The snapshot returns and leaves the source paused (2.5 auto-stops).
    2. DIR holds exactly "memory" and "state", both private (0600).
    3. The restored VM runs straight away (no -S) with the same memory digest.
    4. Its guest reads back the same pattern md5.
    """
    snap = tmp_path / "snap"
    opts = ["--workload", "ws=16M,rate=8M", "--time-scale", "10"]
    vms = sim_factory("stratovirt-2.5", opts, tmp_path / "logs")
    try:
        src = vms.launch(VMSpec(memory_mib=512), "src")
        md5 = workload.write_pattern(src, 16, 3)
        src.qmp.execute("migrate", {"uri": f"file:{snap}"})
        assert src.qmp.execute("query-status")["status"] == "paused"
        digest = src.qmp.execute("x-hvlab-memory-digest")["digest"]
        assert sorted(os.listdir(snap)) == ["memory", "state"]
        for name in ("memory", "state"):
            assert stat.S_IMODE((snap / name).stat().st_mode) == 0o600
        src.shutdown()
        dst = vms.launch(VMSpec(memory_mib=512, incoming=f"file:{snap}"), "dst", wait_guest=False)
        assert dst.qmp.execute("query-status")["status"] == "running"
        assert dst.qmp.execute("x-hvlab-memory-digest")["received"] == digest
        assert workload.read_pattern(dst) == md5
    finally:
        vms.close()
