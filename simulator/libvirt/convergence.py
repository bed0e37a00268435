"""How a live migration run ends: simulator.model's pre-copy engine behind a Protocol.

There is one model of convergence: :class:`PrecopyEngine` runs
``simulator.model.simulate_precopy`` (QEMU 7.2's pre-copy engine: dirty bitmap rounds,
bandwidth, downtime limit, auto-converge throttling) for the guest and parameters of
the call and maps its outcome to a :class:`RunOutcome`. ``set_engine`` in
:mod:`simulator.libvirt.api` still accepts any object with this ``converges`` method
(a test double, or a faster engine for benchmarks).
"""

from __future__ import annotations

import enum
from typing import Protocol

from simulator.model import (
    Capability,
    MemoryLayout,
    MigrationParameters,
    PrecopyConfig,
    Workload,
    simulate_precopy,
)

MIB = 1 << 20


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


#: libvirt's default when bandwidth is 0: QEMU's max-bandwidth is unlimited for
#: libvirt-started QEMU (QEMU_DOMAIN_MIG_BANDWIDTH_MAX, 8 PiB/s in MiB/s terms).
UNLIMITED_MIB_S = float(8 * 1024**3)
#: QEMU's default downtime-limit, 300 ms.
DEFAULT_DOWNTIME_S = 0.3
#: The scenario guests' RAM (32 MiB, simulator.libvirt.scenario.DomainSpec).
GUEST_MIB = 32
#: How long a run may go before it counts as never converging (virtual seconds).
HORIZON_S = 600.0
#: The pre-copy engine's bandwidth parameter is a signed 64-bit byte rate.
_MAX_BYTES_S = (1 << 62) - 1


class PrecopyEngine:
    """simulator.model's pre-copy engine for a cyclic writer over its working set."""

    def __init__(self, guest_mib: int = GUEST_MIB, horizon_s: float = HORIZON_S) -> None:
        self.guest_mib, self.horizon_s = guest_mib, horizon_s

    def converges(
        self,
        dirty_rate: float,
        working_set: float,
        bandwidth: float,
        downtime_limit: float,
        auto_converge: bool,
        postcopy: bool,
    ) -> RunOutcome:
        size = max(self.guest_mib, int(working_set) + 1) * MIB
        ws = min(int(working_set * MIB), size) // 4096 * 4096
        caps = frozenset({Capability.AUTO_CONVERGE}) if auto_converge else frozenset()
        cfg = PrecopyConfig(
            layout=MemoryLayout(size=size, resident=ws),
            workload=Workload(working_set=ws, dirty_rate=dirty_rate * MIB if ws else 0.0),
            params=MigrationParameters(
                max_bandwidth=min(int(bandwidth * MIB), _MAX_BYTES_S),
                downtime_limit=int(downtime_limit * 1000),
            ),
            caps=caps,
        )
        result = simulate_precopy(cfg, max_time=self.horizon_s)
        if result.converged:
            return RunOutcome.COMPLETED_THROTTLED if result.throttle_steps else RunOutcome.COMPLETED
        return RunOutcome.NEEDS_POSTCOPY if postcopy else RunOutcome.NEVER_CONVERGES
