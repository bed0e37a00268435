"""How a live migration run ends, behind a Protocol so simulator.model can replace it.

Plug point: pass any object with this ``converges`` method as
``simulator.libvirt.api.set_engine(engine)`` (e.g. an adapter over
``simulator.model``'s pre-copy/post-copy engine). The default is QEMU 7.2's
closed-form rule (/work/shared/reference/qemu-7.2-migration.md 2.4, 2.5): a
cyclic writer at rate r over a working set W converges iff r < B or
W < B x downtime_limit; auto-converge throttles the guest until it does;
post-copy (once started) always completes.
"""

from __future__ import annotations

import enum
from typing import Protocol


class RunOutcome(enum.Enum):
    """How the migration job ends (before libvirt's finish/confirm phases)."""

    COMPLETED = "completed"
    COMPLETED_THROTTLED = "completed-throttled"  # auto-converge had to act
    NEEDS_POSTCOPY = "needs-postcopy"  # converges only after migrateStartPostCopy
    NEVER_CONVERGES = "never-converges"  # runs until abortJob


class ConvergenceEngine(Protocol):
    """What the libvirt model needs from a migration engine."""

    def converges(
        self,
        dirty_rate: float,
        working_set: float,
        bandwidth: float,
        downtime_limit: float,
        auto_converge: bool,
        postcopy: bool,
    ) -> RunOutcome:
        """Outcome of a live pre-copy run; rates in MiB/s, sizes MiB, time s."""
        ...


class ClosedFormEngine:
    """QEMU 7.2 geometric rule (V_{k+1} = min(W, r V_k / B))."""

    def converges(
        self,
        dirty_rate: float,
        working_set: float,
        bandwidth: float,
        downtime_limit: float,
        auto_converge: bool,
        postcopy: bool,
    ) -> RunOutcome:
        if dirty_rate < bandwidth or working_set < bandwidth * downtime_limit:
            return RunOutcome.COMPLETED
        if auto_converge:
            # cpu-throttle rises to 99%: the writer's rate falls below B (2.5).
            return RunOutcome.COMPLETED_THROTTLED
        if postcopy:
            return RunOutcome.NEEDS_POSTCOPY
        return RunOutcome.NEVER_CONVERGES


#: libvirt's default when bandwidth is 0: QEMU's max-bandwidth is unlimited for
#: libvirt-started QEMU (QEMU_DOMAIN_MIG_BANDWIDTH_MAX, 8 PiB/s in MiB/s terms).
UNLIMITED_MIB_S = float(8 * 1024**3)
#: QEMU's default downtime-limit, 300 ms.
DEFAULT_DOWNTIME_S = 0.3
