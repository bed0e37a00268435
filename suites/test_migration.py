"""Live migration over tcp and unix (S003 "Migration", S004 "虚拟机热迁移")."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness import migration
from harness.fixtures import VMFactory, VMPair
from harness.migration import Transport
from harness.workload import PATTERN_MIB, read_pattern, write_pattern
from simulator.guest_memory import pattern_md5
from suites.catalog import Expect
from suites.vmpair import migration_capabilities

TRANSPORTS = [
    pytest.param(Transport.TCP, id="tcp", marks=pytest.mark.catalog("MIG-TCP")),
    pytest.param(Transport.UNIX, id="unix", marks=pytest.mark.catalog("MIG-UNIX")),
]


def is_subsequence(observed: list[str], allowed: tuple[str, ...]) -> bool:
    it = iter(allowed)
    return all(any(s == a for a in it) for s in observed)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.catalog("MIG-STATUS-SEQUENCE", "MIG-GUEST-INTEGRITY", "MIG-SOURCE-AFTER")
def test_live_migration(
    vms: VMFactory, vm_pair: VMPair, transport: Transport, expect: Callable[[str], Expect]
) -> None:
    """A running guest moves to a destination started with the same command line.

    1. The destination listens with -incoming and is in "inmigrate" (or silent) before.
    2. migrate is accepted and the migration ends "completed".
    3. The statuses seen (events or polls) follow the documented order and end completed.
    4. The source is afterwards as documented (QEMU: postmigrate; StratoVirt: exits).
    5. The destination runs.
    6. Guest memory written before the migration reads back identical on the destination
       (and it is the pattern the simulator's guest models: its md5 is the same).
    7. The destination's guest answers on its console.
    """
    src, dst = vm_pair.src, vm_pair.dst
    digest = write_pattern(src)
    assert digest == pattern_md5(PATTERN_MIB, "7")
    if vms.target.traits.qmp_during_incoming:
        assert migration.runstate(dst) == "inmigrate"
    watch = migration.start(
        src, migration.destination_uri(dst, transport), capabilities=migration_capabilities(vms)
    )
    result = migration.finish(watch, dst, timeout=180)
    result.save(vms.artifacts / "src" / "migration.json")
    assert result.status == "completed", result.final
    sequence = result.events or result.history
    assert sequence[-1] == "completed" and is_subsequence(
        sequence, expect("MIG-STATUS-SEQUENCE").value
    ), sequence
    after = expect("MIG-SOURCE-AFTER").value
    if after == "exits":
        assert src.wait_exit(timeout=30) == 0
    else:
        assert result.src_runstate == after
    assert result.dst_runstate == "running"
    assert read_pattern(dst) == digest
    assert dst.console.run("echo migrated") == (0, "migrated")
