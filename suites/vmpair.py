"""What the migration-type suites ask of a target's migration knobs."""

from __future__ import annotations

from typing import Any

from harness import migration
from harness.fixtures import VMFactory, destination
from harness.machine import Machine
from harness.migration import Transport, Watch
from harness.spec import VMSpec
from harness.waits import wait_for
from harness.workload import read_pattern


def migration_capabilities(vms: VMFactory) -> dict[str, bool] | None:
    """QEMU announces status changes as MIGRATION events only with the events capability."""
    return {"events": True} if vms.target.traits.migration_events else None


def tuning(vms: VMFactory, **parameters: Any) -> dict[str, Any] | None:
    """Migration parameters, on targets that have the knobs (StratoVirt has none)."""
    return parameters if vms.target.traits.migration_tuning else None


SLOW_MIB = 48  # written before the migration and sent at a throttled rate
STALL_S = 5.0  # no byte moved for this long while active: a stall


def slow_start(vms: VMFactory, src: Machine, uri: str) -> Watch:
    """A migration that lasts ~20 s, already active and moving bytes when this returns."""
    watch = migration.start(
        src,
        uri,
        parameters=tuning(vms, **migration.slow_enough(20, SLOW_MIB)),
        capabilities=migration_capabilities(vms),
    )
    watch.until(frozenset({"active"}), timeout=60)
    wait_for(
        lambda: (watch.poll().get("ram") or {}).get("transferred", 0) > (1 << 20) or None,
        60,
        "the first MiB on the wire",
    )
    return watch


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
