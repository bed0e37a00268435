"""Faults during a migration: nothing lost, nothing leaked (QEMU docs; S003 "Cancel").

After every fault: the source runs on, the guest's memory pattern reads back intact,
query-migrate says what the catalog says, and a retry to a fresh destination completes.
The ``vms`` factory then fails the test if any process or socket is left.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from harness import migration
from harness.fixtures import VMFactory, destination
from harness.hostset import Placement
from harness.migration import MigrationStall, Transport
from harness.net import link
from harness.net.proxy import FaultProxy
from harness.spec import VMSpec
from harness.workload import write_pattern
from suites.catalog import Expect
from suites.vmpair import SLOW_MIB, STALL_S, migration_capabilities, slow_start, survived


@pytest.mark.usefixtures("placement")
@pytest.mark.catalog("FAULT-DST-KILLED")
def test_destination_killed(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """The destination process is SIGKILLed while pages are being sent.

    1. The migration ends with the documented status (failed).
    2. The source runs, its memory pattern is intact, a retry completes.
    """
    src = vms.launch(standard_spec, "src")
    digest = write_pattern(src, SLOW_MIB)
    dst = destination(vms, standard_spec, Transport.TCP)
    watch = slow_start(vms, src, migration.destination_uri(dst, Transport.TCP))
    dst.signal(signal.SIGKILL)
    final = watch.until(migration.TERMINAL, timeout=60)
    assert final["status"] == expect("FAULT-DST-KILLED").value, final
    survived(vms, src, standard_spec, digest)


@pytest.mark.usefixtures("placement")
@pytest.mark.catalog("FAULT-DST-STOPPED")
def test_destination_stopped_is_a_stall(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """The destination is SIGSTOPped: the hypervisor never notices, the watcher does.

    1. The watcher reports a stall ("no progress for N s") with the phase (active);
       the status stays what the catalog says (still running, not failed).
    2. migrate_cancel, the documented way out, ends it with the cancel status.
    3. The source runs, its memory pattern is intact, a retry completes.
    """
    src = vms.launch(standard_spec, "src")
    digest = write_pattern(src, SLOW_MIB)
    dst = destination(vms, standard_spec, Transport.TCP)
    watch = slow_start(vms, src, migration.destination_uri(dst, Transport.TCP))
    dst.signal(signal.SIGSTOP)
    with pytest.raises(MigrationStall) as stall:
        watch.until(migration.TERMINAL, timeout=120, stall=STALL_S)
    assert stall.value.context["phase"] == expect("FAULT-DST-STOPPED").value
    assert src.qmp.execute("migrate_cancel") == {}
    final = watch.until(migration.TERMINAL, timeout=60)
    assert final["status"] == expect("CANCEL-ACTIVE").value
    dst.signal(signal.SIGKILL)
    survived(vms, src, standard_spec, digest)


@pytest.mark.catalog("FAULT-LINK-CUT")
def test_link_cut(vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]) -> None:
    """The link under the stream breaks (a proxy the harness owns closes it both ways).

    1. The source sees the broken stream: the migration ends with the documented status.
    2. The destination gives up on the half-received stream (it exits, not with success).
    3. The source runs, its memory pattern is intact, a retry completes.
    """
    src = vms.launch(standard_spec, "src")
    digest = write_pattern(src, SLOW_MIB)
    dst = destination(vms, standard_spec, Transport.TCP)
    host, port = _tcp(migration.destination_uri(dst, Transport.TCP))
    with FaultProxy((host, port)) as proxy:
        watch = slow_start(vms, src, proxy.uri)
        proxy.cut()
        final = watch.until(migration.TERMINAL, timeout=60)
    assert final["status"] == expect("FAULT-LINK-CUT").value, final
    assert dst.wait_exit(timeout=30) != 0
    survived(vms, src, standard_spec, digest)


@pytest.mark.catalog("FAULT-LINK-CUT")
def test_lab_link_cut(
    vms: VMFactory,
    standard_spec: VMSpec,
    placement: Placement,
    expect: Callable[[str], Expect],
) -> None:
    """The lab link to the destination host drops the stream (nftables on that host).

    1. Nothing breaks the connection, so nobody notices: the watcher reports a stall.
    2. migrate_cancel ends it with the cancel status.
    3. With the link back, the source (running, memory intact) migrates to a fresh
       destination on that host.
    """
    if not placement.cross:
        pytest.skip("the lab link joins two hosts; on one host see test_link_cut (proxy)")
    src = vms.launch(standard_spec, "src")
    digest = write_pattern(src, SLOW_MIB)
    dst = destination(vms, standard_spec, Transport.TCP)
    uri = migration.destination_uri(dst, Transport.TCP)
    watch = slow_start(vms, src, uri)
    port = _tcp(uri)[1]
    link.drop_port_on(vms.placement.dst, port)
    try:
        with pytest.raises(MigrationStall):
            watch.until(migration.TERMINAL, timeout=120, stall=STALL_S)
        assert src.qmp.execute("migrate_cancel") == {}
        final = watch.until(migration.TERMINAL, timeout=60)
    finally:
        link.undrop_on(vms.placement.dst, port)
    assert final["status"] == expect("CANCEL-ACTIVE").value
    dst.signal(signal.SIGKILL)
    survived(vms, src, standard_spec, digest)


@pytest.mark.catalog("FAULT-CORRUPT")
def test_corrupted_stream_is_refused(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """The stream's first bytes (its magic) are flipped on the way.

    1. The destination refuses the stream: it exits, not with success.
    2. The source's migration ends with the documented status.
    3. The source runs, its memory pattern is intact, a retry completes.
    """
    src = vms.launch(standard_spec, "src")
    digest = write_pattern(src, 16)
    dst = destination(vms, standard_spec, Transport.TCP)
    with FaultProxy(_tcp(migration.destination_uri(dst, Transport.TCP))) as proxy:
        proxy.corrupt(at=0, count=4)
        watch = migration.start(src, proxy.uri, capabilities=migration_capabilities(vms))
        assert dst.wait_exit(timeout=60) != 0
        final = watch.until(migration.TERMINAL, timeout=60)
    assert proxy.corrupted == 4
    assert final["status"] == expect("FAULT-CORRUPT").value, final
    survived(vms, src, standard_spec, digest)


def _tcp(uri: str) -> tuple[str, int]:
    host, _, port = uri.removeprefix("tcp:").rpartition(":")
    return host.strip("[]"), int(port)
