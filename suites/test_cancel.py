"""Cancelling a migration (S003 "Cancel Migration", S004 "取消热迁移")."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest

from harness import migration, snapshot
from harness.fixtures import VMFactory, destination
from harness.migration import MigrationStatus, Transport
from harness.spec import VMSpec
from harness.workload import write_pattern
from suites.catalog import Expect
from suites.vmpair import migration_capabilities, tuning

SLOW_MIB = 48  # guest data sent at a throttled rate so the transfer lasts a while


@pytest.mark.usefixtures("placement")
@pytest.mark.catalog("CANCEL-ACTIVE", "CANCEL-SOURCE-RUNS", "CANCEL-DST-EXITS", "CANCEL-RETRY")
def test_cancel_during_transfer_then_retry(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """migrate_cancel while pages are being sent, then migrate again.

    1. The migration reaches "active".
    2. migrate_cancel returns {}.
    3. The migration ends with the documented cancel status.
    4. The source still runs and its guest answers.
    5. The destination exits (it leaves the migration task), not with success.
    6. A second migration to a fresh destination completes and the guest runs there.
    """
    src = vms.launch(standard_spec, "src")
    write_pattern(src, SLOW_MIB)
    dst = destination(vms, standard_spec, Transport.TCP)
    watch = migration.start(
        src,
        migration.destination_uri(dst, Transport.TCP),
        parameters=tuning(vms, **migration.slow_enough(20, SLOW_MIB)),
        capabilities=migration_capabilities(vms),
    )
    watch.until(frozenset({MigrationStatus.ACTIVE}), timeout=60)
    assert src.qmp.execute("migrate_cancel") == {}
    final = watch.until(migration.TERMINAL, timeout=60)
    assert final["status"] == expect("CANCEL-ACTIVE").value
    assert migration.runstate(src) == "running"
    assert src.console.run("echo still-here") == (0, "still-here")
    assert dst.wait_exit(timeout=30) != 0
    retry = destination(vms, standard_spec, Transport.TCP, name="dst2")
    parameters = tuning(vms, **{"max-bandwidth": 1 << 30})
    watch = migration.start(
        src, migration.destination_uri(retry, Transport.TCP), parameters=parameters
    )
    result = migration.finish(watch, retry, timeout=180)
    assert result.status == "completed" and result.dst_runstate == "running"


class UnansweredPort:
    """A loopback port whose accept queue is full: connects hang in SYN_SENT.

    This holds a migration in "setup" deterministically: the listener never accepts and
    one queued connection fills its backlog of 0, so the kernel drops further SYNs.
    ``release`` closes it; the connect's next SYN retry then gets a reset.
    """

    def __init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port = int(self._listener.getsockname()[1])
        self._filler = socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def release(self) -> None:
        self._filler.close()
        self._listener.close()


@pytest.fixture
def unanswered_port() -> Iterator[UnansweredPort]:
    port = UnansweredPort()
    yield port
    port.release()


@pytest.mark.catalog("CANCEL-SETUP")
def test_cancel_during_setup(
    vms: VMFactory,
    standard_spec: VMSpec,
    unanswered_port: UnansweredPort,
    expect: Callable[[str], Expect],
) -> None:
    """migrate_cancel before any page moves.

    1. migrate to a destination that never answers leaves the status in "setup".
    2. migrate_cancel returns {}.
    3. Once the pending connection attempt fails (the port is released; QEMU stays
       "cancelling" until then), the migration ends with the documented cancel status.
    4. The source runs on and its guest answers.
    """
    src = vms.launch(standard_spec, "src")
    watch = migration.start(
        src,
        f"tcp:127.0.0.1:{unanswered_port.port}",
        capabilities=migration_capabilities(vms),
        # a hypervisor that connects inside the handler (StratoVirt) answers only once the
        # connect ends, which against this port is when the kernel gives up (~2 min):
        # 3 s show that it blocks
        timeout=3,
    )
    assert watch.poll()["status"] == "setup"
    assert src.qmp.execute("migrate_cancel") == {}
    unanswered_port.release()
    final = watch.until(migration.TERMINAL, timeout=60)
    assert final["status"] == expect("CANCEL-SETUP").value
    assert migration.runstate(src) == "running"
    assert src.console.run("echo still-here") == (0, "still-here")


@pytest.mark.catalog("CANCEL-AFTER-COMPLETE")
def test_cancel_after_completion(
    vms: VMFactory, standard_spec: VMSpec, expect: Callable[[str], Expect]
) -> None:
    """migrate_cancel once the migration is over does not undo it.

    The migration is a snapshot (``migrate`` to a file): the one completed migration
    whose source stays up on every target (StratoVirt's live-migration source exits).

    1. A migration of the paused VM to a file completes.
    2. migrate_cancel is then a no-op: it returns {} (S003 "Cancel Migration").
    3. query-migrate still says completed.
    """
    src = vms.launch(standard_spec, "src")
    src.pause()
    _, result = snapshot.save(src, vms.artifacts / "snapshot")
    assert result.status == "completed", result.final
    assert src.qmp.execute("migrate_cancel") == {}
    assert src.qmp.execute("query-migrate")["status"] == expect("CANCEL-AFTER-COMPLETE").value
