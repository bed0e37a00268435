"""The fidelity configurations: everything a user sets or knows before a migration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.model.units import MiB

#: Every configuration's guest: 1 GiB, 2 vCPUs (fixed so runs compare).
GUEST_MIB = 1024
#: query-migrate period of the recorder (guestperf polls every 50 ms too).
POLL_S = 0.05


@dataclass(frozen=True)
class Config:
    """One migration configuration.

    ``ws_mib``/``rate_mib``/``pattern``: hvlab-stress's working set, rate (MiB/s) and
    pattern (0 MiB/s: filled, then only the heartbeat). ``params``: migrate-set-parameters
    (QMP names). ``caps``: capabilities (set on both sides where QEMU needs both).
    ``postcopy_after_syncs``: migrate-start-postcopy once dirty-sync-count reaches it
    (guestperf's post_copy_iters). ``max_s``: cancelled if not completed by then (the
    run counts as not converged). ``runs``: default repetitions.
    """

    name: str
    ws_mib: int = 1
    rate_mib: int = 0
    pattern: str = "cyclic"
    bandwidth_mib: int = 100
    downtime_ms: int = 300
    caps: tuple[str, ...] = ()
    extra_params: tuple[tuple[str, Any], ...] = ()
    postcopy_after_syncs: int | None = None
    max_s: float = 30.0
    runs: int = 3
    guest_mib: int = GUEST_MIB
    tags: tuple[str, ...] = field(default=())

    @property
    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "max-bandwidth": self.bandwidth_mib * MiB,
            "downtime-limit": self.downtime_ms,
        }
        out.update(dict(self.extra_params))
        return out

    def scenario(self) -> dict[str, Any]:
        """guestperf's Scenario fields for this configuration."""
        xbzrle_cache = dict(self.extra_params).get("xbzrle-cache-size", 64 * MiB)
        return {
            "name": self.name,
            "downtime": self.downtime_ms,
            "bandwidth": self.bandwidth_mib,
            "max_iters": 1000,
            "max_time": self.max_s,
            "pause": False,
            "pause_iters": 5,
            "post_copy": "postcopy-ram" in self.caps,
            "post_copy_iters": self.postcopy_after_syncs or 0,
            "auto_converge": "auto-converge" in self.caps,
            "auto_converge_step": dict(self.extra_params).get("cpu-throttle-increment", 10),
            "compression_mt": False,
            "compression_mt_threads": 1,
            "compression_xbzrle": "xbzrle" in self.caps,
            "compression_xbzrle_cache": round(100 * xbzrle_cache / (self.guest_mib * MiB)),
            "multifd": "multifd" in self.caps,
            "multifd_channels": dict(self.extra_params).get("multifd-channels", 2),
            # hvlab's own fields: the workload
            "hvlab_ws_mib": self.ws_mib,
            "hvlab_rate_mib": self.rate_mib,
            "hvlab_pattern": self.pattern,
        }


MATRIX: tuple[Config, ...] = (
    Config("idle", tags=("calibration",)),
    Config("static-512", ws_mib=512, rate_mib=0),
    Config("moderate-bw100", ws_mib=256, rate_mib=20, bandwidth_mib=100),
    Config("moderate-bw50", ws_mib=256, rate_mib=20, bandwidth_mib=50),
    Config("heavy", ws_mib=256, rate_mib=200, max_s=20.0),
    Config("heavy-autoconverge", ws_mib=256, rate_mib=200, caps=("auto-converge",), max_s=90.0),
    Config(
        "heavy-xbzrle",
        ws_mib=256,
        rate_mib=200,
        caps=("xbzrle",),
        extra_params=(("xbzrle-cache-size", 512 * MiB),),
    ),
    Config(
        "heavy-postcopy", ws_mib=256, rate_mib=200, caps=("postcopy-ram",), postcopy_after_syncs=3
    ),
    # post-copy with the rest of RAM rate-limited: the guest runs seconds with pages
    # missing (max-postcopy-bandwidth), a cyclic and a random writer
    Config(
        "postcopy-bw16",
        ws_mib=64,
        rate_mib=48,
        caps=("postcopy-ram",),
        extra_params=(("max-postcopy-bandwidth", 16 * MiB),),
        postcopy_after_syncs=2,
    ),
    Config(
        "postcopy-random-bw16",
        ws_mib=64,
        rate_mib=48,
        pattern="random",
        caps=("postcopy-ram",),
        extra_params=(("max-postcopy-bandwidth", 16 * MiB),),
        postcopy_after_syncs=2,
    ),
    Config("heavy-multifd", ws_mib=256, rate_mib=200, caps=("multifd",), max_s=20.0),
    # the sweep: W, r, bandwidth and downtime limit around the moderate point
    Config("sweep-w64-r50", ws_mib=64, rate_mib=50),
    Config("sweep-w128-r50-bw200", ws_mib=128, rate_mib=50, bandwidth_mib=200),
    Config("sweep-w3-r64-bw32-dl30", ws_mib=3, rate_mib=64, bandwidth_mib=32, downtime_ms=30),
    Config("sweep-w64-r150", ws_mib=64, rate_mib=150, max_s=20.0),
    Config("sweep-random-w128-r40", ws_mib=128, rate_mib=40, pattern="random"),
    Config("downtime-30", ws_mib=64, rate_mib=20, downtime_ms=30, runs=5),
    Config("downtime-1000", ws_mib=64, rate_mib=20, downtime_ms=1000, runs=5),
)

#: make test's smoke: one small configuration, one run.
SMOKE = Config("smoke-idle", guest_mib=256, runs=1, max_s=30.0, tags=("calibration",))


def by_name(names: list[str]) -> list[Config]:
    known = {c.name: c for c in (*MATRIX, SMOKE)}
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(
            f"unknown configuration(s) {', '.join(missing)} (have: {', '.join(known)})"
        )
    return [known[n] for n in names]
