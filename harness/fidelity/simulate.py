"""A configuration through the simulator, with only what a user knows in advance.

Inputs: the guest's RAM size and non-zero page layout (where the working set sits, from
the dump taken before the real run), the workload (W, r, pattern: hvlab-stress's
arguments; its 8-byte store per page makes a small XBZRLE delta), the parameters and
capabilities, and the host constants calibrated on the idle configuration (a
:class:`~simulator.model.host.Host`). Nothing is tuned per configuration. The model is
stepped like the real recorder: query-migrate every 50 ms, migrate-start-postcopy once
dirty-sync-count reaches the configuration's count, migrate_cancel at ``max_s``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from harness.fidelity import guestperf
from harness.fidelity.layout import Layout
from harness.fidelity.matrix import POLL_S, Config
from simulator.model import Capability, MemoryLayout, MigrationParameters, PrecopyConfig
from simulator.model.host import Host
from simulator.model.memory import DirtyPattern, Workload
from simulator.model.migration.qemu_precopy import QemuPrecopy
from simulator.model.migration.query import query_migrate
from simulator.model.units import PAGE_SIZE, MiB

JSON = dict[str, Any]
#: hvlab-stress's store: the counter's low bytes change, so a delta is one zero run
#: (1 byte, uleb128), one non-zero run length (1 byte) and about 3 changed bytes
#: (migration/xbzrle.c xbzrle_encode_buffer).
STRESS_XBZRLE_DELTA = 5
#: hvlab-stress paces by the guest clock and catches up at most 10 ms of backlog
STRESS_CATCHUP_S = 0.010
_MAX_STEPS = 100_000


@dataclass(frozen=True)
class Calibration:
    """Host constants plus the machine's extra RAM blocks (ram.total - guest RAM)."""

    host: Host
    rom_bytes: int
    device_state_bytes: int

    def to_json(self) -> JSON:
        return {
            "host": self.host.to_json(),
            "rom_bytes": self.rom_bytes,
            "device_state_bytes": self.device_state_bytes,
        }

    @classmethod
    def from_json(cls, data: JSON) -> Calibration:
        return cls(
            Host.from_json(data["host"]), int(data["rom_bytes"]), int(data["device_state_bytes"])
        )


def precopy_config(
    cfg: Config, lay: Layout, cal: Calibration, capacity: float | None
) -> PrecopyConfig:
    """The model's input for ``cfg`` on a guest with layout ``lay``."""
    ws = lay.ws if cfg.rate_mib > 0 else ()
    ws_bytes = sum(b - a for a, b in ws) * PAGE_SIZE
    workload = Workload(
        working_set=ws_bytes,
        dirty_rate=float(cfg.rate_mib * MiB) if ws else 0.0,
        pattern=DirtyPattern(cfg.pattern),
        cpu_capacity=capacity,
        xbzrle_delta=STRESS_XBZRLE_DELTA,
        extents=ws,
        catchup_s=STRESS_CATCHUP_S,
    )
    params = MigrationParameters().updated(cfg.params)
    layout = MemoryLayout(
        size=cfg.guest_mib * MiB,
        rom=cal.rom_bytes,
        extents=lay.nonzero,
    )
    return PrecopyConfig(
        layout=layout,
        workload=workload,
        params=params,
        caps=frozenset(Capability(c) for c in cfg.caps),
        host=cal.host,
        device_state_bytes=cal.device_state_bytes,
        vcpus=2,  # matrix.py's guests (real.spec)
    )


def run(cfg: Config, lay: Layout, cal: Calibration, capacity: float | None = None) -> JSON:
    """One simulated migration of ``cfg``: its guestperf-style report."""
    pc = precopy_config(cfg, lay, cal, capacity)
    e = QemuPrecopy(pc)
    history: list[JSON] = []
    postcopy_at = cancel_at = None
    last_active: JSON = {}
    t = 0.0
    for step in range(1, _MAX_STEPS):
        t = step * POLL_S
        e.run_until(t)
        info = query_migrate(e, t)
        history.append(guestperf.progress(info, round(t, 4)))
        st = info["status"]
        if st in ("active", "postcopy-active"):
            last_active = info
        if e.status.terminal:
            break
        syncs = info.get("ram", {}).get("dirty-sync-count", 0)
        wanted = cfg.postcopy_after_syncs
        if wanted is not None and postcopy_at is None and syncs >= wanted:
            e.request_postcopy()
            postcopy_at = t
        if t >= cfg.max_s and cancel_at is None and st == "active":
            e.cancel(t)
            cancel_at = t
    final = query_migrate(e, e.end if e.end is not None else t)
    if history and final["status"] != history[-1]["status"]:
        # the migration ended between the last poll and the next one (a switch-over that
        # began before the poll): end the history with it, as a real run's last poll does
        history.append(guestperf.progress(final, round(max(t, e.end or t), 4)))
    downtime = e.downtime
    pause = None
    if final["status"] == "completed" and downtime is not None:
        pause = (downtime + cal.host.resume_s) * 1000
    hv = {
        "kind": "sim",
        "config": cfg.name,
        "final": final,
        "last_active": last_active,
        "postcopy_requested_at_s": postcopy_at,
        "cancelled_at_s": cancel_at,
        "pause_ms": pause,
        "dst_alive": True,
        "downtime_s": downtime,
        "calibration": cal.to_json(),
        "invariants": invariants(e, pc),
    }
    return guestperf.report(
        scenario=cfg.scenario(),
        hw=guestperf.hardware(2, cfg.guest_mib),
        history=history,
        binary="python -m simulator --profile qemu-7.2",
        kernel="(simulated)",
        initrd="(simulated)",
        hvlab=hv,
    )


def invariants(e: QemuPrecopy, pc: PrecopyConfig) -> list[str]:
    """Physical invariants of a simulated run; the broken ones (empty: all hold)."""
    bad: list[str] = []
    c = e.c
    if c.transferred != c.precopy_bytes + c.downtime_bytes + c.postcopy_bytes:
        bad.append("transferred != precopy + downtime + postcopy bytes")
    if e.status.value == "completed":
        nz = pc.layout.nonzero_pages(pc.workload)
        if c.normal + c.xbzrle_pages < nz:
            bad.append(f"{c.normal + c.xbzrle_pages} non-zero pages sent < {nz} non-zero pages")
        if c.duplicate + c.normal + c.xbzrle_pages < pc.layout.total_pages:
            bad.append("fewer pages sent than RAM holds")
        if e.dirty:
            bad.append("completed with dirty pages left")
        assert e.end is not None
        limited = c.precopy_bytes
        bw = pc.params.max_bandwidth
        windows = (e.end - e.setup_end) / 0.1 + 2
        if bw and (e.end - e.start) + 1e-9 < (limited - windows * 4112 - bw * 0.1) / bw:
            bad.append("pre-copy bytes faster than max-bandwidth allows")
        if e.downtime is None or e.downtime < 0:
            bad.append("no downtime for a completed migration")
    values = [s.transferred for s in e.tl.samples]
    if any(b < a for a, b in itertools.pairwise(values)):
        bad.append("transferred decreased")
    syncs = [s.dirty_sync_count for s in e.tl.samples]
    if any(b < a for a, b in itertools.pairwise(syncs)):
        bad.append("dirty-sync-count decreased")
    return bad
