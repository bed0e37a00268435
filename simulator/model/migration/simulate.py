"""``simulate_precopy``: one QEMU migration from start to outcome, as a pure function."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.model.migration.effects import Sample
from simulator.model.migration.qemu_precopy import PrecopyConfig, QemuPrecopy
from simulator.model.migration.query import query_migrate


@dataclass(frozen=True)
class MigrationResult:
    """Outcome of one simulated migration."""

    status: str
    query: dict[str, Any]
    history: tuple[tuple[float, str], ...]
    samples: tuple[Sample, ...]
    throttle_steps: tuple[tuple[float, int], ...]
    dirty_sync_count: int
    transferred: int
    total_time: float | None
    setup_time: float
    downtime: float | None
    final_bytes: int
    generation: int

    @property
    def converged(self) -> bool:
        return self.status == "completed"


def simulate_precopy(
    cfg: PrecopyConfig,
    *,
    max_time: float = 600.0,
    postcopy_at: float | None = None,
    cancel_at: float | None = None,
    fail_at: float | None = None,
) -> MigrationResult:
    """Run a migration until it ends or ``max_time`` (virtual seconds) passes.

    ``postcopy_at``/``cancel_at``/``fail_at`` inject migrate-start-postcopy,
    migrate_cancel and a broken stream at those times.
    """
    e = QemuPrecopy(cfg)
    marks = sorted(
        (t, kind)
        for t, kind in ((postcopy_at, "postcopy"), (cancel_at, "cancel"), (fail_at, "fail"))
        if t is not None and t < max_time
    )
    for t, kind in marks:
        e.run_until(t)
        if kind == "postcopy":
            e.request_postcopy()
        elif kind == "cancel":
            e.cancel(t)
        else:
            e.fail(t, "Unable to write to socket: Connection reset by peer")
    e.run_until(max_time)
    q = query_migrate(e, max(e.t, max_time) if e.end is None else e.end)
    return MigrationResult(
        status=e.status.value,
        query=q,
        history=tuple(e.tl.history),
        samples=tuple(e.tl.samples),
        throttle_steps=tuple(e.tl.throttle_steps),
        dirty_sync_count=e.c.dirty_sync_count,
        transferred=e.c.transferred,
        total_time=None if e.end is None else e.end - e.start,
        setup_time=e.setup_end - e.start,
        downtime=e.downtime,
        final_bytes=e.c.downtime_bytes,
        generation=e.generation,
    )
