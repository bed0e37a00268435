"""Cancel in the late phases of a QEMU migration, and post-copy recovery.

QEMU 7.2 (qapi/migration.json MigrationStatus; migration/migration.c
migrate_fd_cancel, migration_iteration_finish):
- pause-before-switchover stops the migration in "pre-switchover" with the source VM
  stopped; migrate_cancel there gives "cancelled" and the source VM runs again.
- in post-copy the destination runs the guest while pages still come from the source:
  docs/devel/migration.rst ("Postcopy") says a failure of either side or the link then
  loses the guest unless the migration is recovered (postcopy-paused, migrate-recover on
  the destination out of band, migrate with resume on the source).
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from harness import migration
from harness.errors import QMPCommandError
from harness.fixtures import VMFactory, destination
from harness.machine import Machine
from harness.migration import MigrationStatus, RunState, Transport
from harness.net.proxy import FaultProxy
from harness.runner import free_port
from harness.spec import VMSpec
from harness.waits import wait_for
from harness.workload import read_pattern, write_pattern
from suites.catalog import Expect
from suites.vmpair import SLOW_MIB, slow_start, survived


def _slow_postcopy(vm: Machine) -> None:
    """Post-copy sends the rest at max-postcopy-bandwidth (0: unlimited) once it starts
    (migration/migration.c postcopy_start); keep it as slow as the pre-copy phase so the
    harness acts while post-copy is still moving pages."""
    vm.qmp.execute("migrate-set-parameters", migration.slow_postcopy(20, SLOW_MIB))


def _caps(vm: Machine, **caps: bool) -> None:
    vm.qmp.execute(
        "migrate-set-capabilities",
        {
            "capabilities": [
                {"capability": k.replace("_", "-"), "state": v} for k, v in caps.items()
            ]
        },
    )


def _recover(dst: Machine, port: int) -> bool | None:
    """migrate-recover out of band: True once accepted, None while not yet paused (the
    destination notices the broken stream a moment after the source does)."""
    try:
        uri = f"tcp:127.0.0.1:{port}"
        return dst.qmp.execute("migrate-recover", {"uri": uri}, timeout=90, oob=True) == {}
    except QMPCommandError as exc:
        if "can only be run when postcopy is paused" in exc.desc:
            return None
        raise


def _host_port(uri: str) -> tuple[str, int]:
    host, _, port = uri.removeprefix("tcp:").rpartition(":")
    return host.strip("[]"), int(port)


@pytest.mark.catalog("CANCEL-SWITCHOVER")
def test_cancel_at_switchover(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """migrate_cancel while the migration waits before its switch-over.

    1. With pause-before-switchover the migration stops in "pre-switchover" and the
       source VM is stopped (finish-migrate).
    2. migrate_cancel returns {}; the migration ends with the cancel status.
    3. The source VM runs again, its memory intact; the destination exits, not with
       success; a retry to a fresh destination completes.
    """
    src = vms.launch(standard_spec, "src")
    digest = write_pattern(src, 16)
    dst = destination(vms, standard_spec, Transport.TCP)
    _caps(src, events=True, pause_before_switchover=True)
    watch = migration.start(src, migration.destination_uri(dst, Transport.TCP))
    watch.until(frozenset({MigrationStatus.PRE_SWITCHOVER}), timeout=120)
    assert migration.runstate(src) == "finish-migrate"
    assert src.qmp.execute("migrate_cancel") == {}
    final = watch.until(migration.TERMINAL, timeout=60)
    assert final["status"] == expect("CANCEL-SWITCHOVER").value
    assert dst.wait_exit(timeout=30) != 0
    _caps(src, pause_before_switchover=False)
    survived(vms, src, standard_spec, digest)


@pytest.mark.catalog("CANCEL-POSTCOPY")
def test_cancel_in_postcopy(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """migrate_cancel once the destination runs the guest (post-copy).

    1. migrate-start-postcopy moves the migration to postcopy-active; the destination runs.
    2. migrate_cancel returns {}; the source's migration ends cancelled, or (the cancel
       racing the post-copy pause of the broken stream) postcopy-paused, and either way
       the source VM stays stopped: its guest state moved on at the destination.
    3. The destination is left waiting for pages in postcopy-paused (its main loop no
       longer answers; migrate-recover, allowed out of band and only in that state, is
       accepted): the guest is lost, as documented.
    4. Neither side can quit any more; the test ends both with SIGKILL.
    """
    want = expect("CANCEL-POSTCOPY").value
    src = vms.launch(standard_spec, "src")
    write_pattern(src, SLOW_MIB)
    dst = destination(vms, standard_spec, Transport.TCP)
    _caps(dst, postcopy_ram=True)
    _caps(src, postcopy_ram=True)
    _slow_postcopy(src)
    watch = slow_start(vms, src, migration.destination_uri(dst, Transport.TCP))
    src.qmp.execute("migrate-start-postcopy")
    watch.until(frozenset({MigrationStatus.POSTCOPY_ACTIVE}), timeout=60)
    assert migration.wait_runstate(dst, {RunState.RUNNING}) == "running"
    assert src.qmp.execute("migrate_cancel") == {}
    final = watch.until(frozenset(want["src"]), timeout=120)
    assert final["status"] in want["src"] and migration.runstate(src) in want["src_runstate"]
    # query-migrate is not allowed out of band; migrate-recover is, and only in
    # postcopy-paused ("Migrate recover can only be run when postcopy is paused")
    assert want["dst"] == "postcopy-paused"
    wait_for(lambda: _recover(dst, free_port()), 120, f"{dst.name} to pause in post-copy")
    # 4. neither side finishes a quit any more (seen with QEMU 7.2: both outlast quit
    # and SIGTERM; the destination's main loop waits for pages in postcopy_pause,
    # migration/savevm.c, the source's cleanup for its migration thread): end them now
    # rather than through the teardown's timeouts
    for vm in (dst, src):
        vm.signal(signal.SIGKILL)
        vm.wait_exit(timeout=30)


@pytest.mark.catalog("POSTCOPY-RECOVER")
def test_postcopy_recovery(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """The link breaks in post-copy; both sides pause and the migration is recovered.

    1. In postcopy-active the harness's proxy cuts the stream: the source goes to
       postcopy-paused.
    2. migrate-recover (out of band) on the destination with a new address, then migrate
       with resume on the source: the migration completes.
    3. The destination runs and the guest's memory is intact.
    """
    src = vms.launch(standard_spec, "src")
    digest = write_pattern(src, SLOW_MIB)
    dst = destination(vms, standard_spec, Transport.TCP)
    _caps(dst, postcopy_ram=True)
    _caps(src, postcopy_ram=True)
    _slow_postcopy(src)
    with FaultProxy(_host_port(migration.destination_uri(dst, Transport.TCP))) as proxy:
        watch = slow_start(vms, src, proxy.uri)
        src.qmp.execute("migrate-start-postcopy")
        watch.until(frozenset({MigrationStatus.POSTCOPY_ACTIVE}), timeout=60)
        # only a destination that runs the guest pauses: a break while it still loads
        # the device state (POSTCOPY_INCOMING_LISTENING) fails its load and it exits
        # (migration/savevm.c qemu_loadvm_state_main, postcopy_ram_listen_thread)
        assert migration.wait_runstate(dst, {RunState.RUNNING}) == "running"
        proxy.cut()
        paused = watch.until(
            frozenset({MigrationStatus.POSTCOPY_PAUSED, *migration.TERMINAL}), timeout=240
        )
    assert paused["status"] == expect("POSTCOPY-RECOVER").value
    port = free_port()
    wait_for(lambda: _recover(dst, port), 120, f"{dst.name} to pause in post-copy")
    src.qmp.execute(
        "migrate-set-parameters", {"max-bandwidth": 1 << 30, "max-postcopy-bandwidth": 1 << 30}
    )
    src.qmp.execute("migrate", {"uri": f"tcp:127.0.0.1:{port}", "resume": True})
    final = watch.until(migration.TERMINAL, timeout=120)
    assert final["status"] == "completed", final
    assert migration.wait_runstate(dst, {RunState.RUNNING}, timeout=60) == "running"
    assert read_pattern(dst) == digest
