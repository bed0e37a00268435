"""What the migration-type suites ask of a target's migration knobs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from harness import migration
from harness.fixtures import VMFactory, destination
from harness.machine import Machine
from harness.migration import MigrationStatus, Transport, Watch
from harness.net.proxy import FaultProxy
from harness.spec import VMSpec
from harness.waits import wait_for
from harness.workload import read_pattern


def migration_capabilities(vms: VMFactory) -> dict[str, bool] | None:
    """QEMU announces status changes as MIGRATION events only with the events capability."""
    return {"events": True} if vms.target.traits.migration_events else None


def tuning(vms: VMFactory, **parameters: Any) -> dict[str, Any] | None:
    """Migration parameters, on targets that have the knobs (StratoVirt has none)."""
    return parameters if vms.target.traits.migration_tuning else None


SLOW_MIB = 24  # written before the migration and sent at a throttled rate
STALL_S = 3.0  # no byte moved this long while active: a stall (a capped stream moves each 0.1 s)


def slow_start(vms: VMFactory, src: Machine, uri: str) -> Watch:
    """A migration that lasts ~12 s, already active and moving bytes when this returns.

    Where the hypervisor has max-bandwidth, that slows it and ram.transferred shows it
    move. StratoVirt has neither (no migrate-set-parameters; query-migrate says only the
    status): its stream goes through a proxy capped at that rate, and the bytes the proxy
    forwarded show it move."""
    slow = migration.slow_enough(12, SLOW_MIB)
    moved: Callable[[], int]
    if vms.target.traits.migration_tuning:
        parameters = tuning(vms, **slow)

        def moved() -> int:
            return int((watch.poll().get("ram") or {}).get("transferred", 0))
    else:
        if vms.placement.cross:
            pytest.skip(
                f"{vms.target.name} has no max-bandwidth; its stream is slowed through a "
                "proxy on this host, which a source on another host does not reach"
            )
        link = FaultProxy(tcp_address(uri))
        vms.defer(link.close)
        link.rate(slow["max-bandwidth"])
        uri, parameters = link.uri, None

        def moved() -> int:
            watch.poll()
            return link.forwarded

    watch = migration.start(
        src, uri, parameters=parameters, capabilities=migration_capabilities(vms)
    )
    watch.until(frozenset({MigrationStatus.ACTIVE}), timeout=60)
    wait_for(lambda: moved() > (1 << 20) or None, 60, "the first MiB on the wire")
    return watch


def tcp_address(uri: str) -> tuple[str, int]:
    """(host, port) of a ``tcp:HOST:PORT`` migration URI."""
    host, _, port = uri.removeprefix("tcp:").rpartition(":")
    return host.strip("[]"), int(port)


def survived(vms: VMFactory, src: Machine, spec: VMSpec, digest: str) -> None:
    """The source runs, its memory is intact, and a retry to a fresh destination
    completes with that memory."""
    assert migration.runstate(src) == "running"
    assert read_pattern(src) == digest
    retry = destination(vms, spec, Transport.TCP, name="retry")
    result = migration.migrate(
        src, retry, Transport.TCP, parameters=tuning(vms, **{"max-bandwidth": 1 << 30})
    )
    assert result.status == "completed" and result.dst_runstate == "running", result.final
    assert read_pattern(retry) == digest
