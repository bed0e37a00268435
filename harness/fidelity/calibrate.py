"""Host constants from the idle configuration alone (never per configuration).

The host's loopback throughput is measured directly (hostprobe.py: it is what
stop-and-copy of pages the destination already holds runs at). From the idle runs'
medians: the cost of stopping the VM (QMP stop on the idle guest before it migrates),
the switch-over's fixed cost (the last bitmap sync and the device state, read from
QEMU's trace events: switchtrace.py),
the machine's extra RAM blocks (ram.total - guest RAM),
setup time, device state (the completion mbps counts it, ram.transferred does not:
migration.c migration_calculate_complete), the destination's first-touch cost per page
(fitted by simulation: the idle guest's downtime is its non-zero first-pass tail
landing on fresh destination memory), the rate-limit window's overrun (fitted on the
idle total time), and the resume time (pause - downtime). Everything else keeps the
model's defaults.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable
from typing import Any

from harness.fidelity import simulate
from harness.fidelity.layout import Layout
from harness.fidelity.matrix import Config
from simulator.model.host import Host
from simulator.model.units import MiB

JSON = dict[str, Any]
_FIT_STEPS = 24


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def calibrate(
    cfg: Config,
    runs: list[JSON],
    link: float | None = None,
    sockbuf: int | None = None,
    base: Host | None = None,
) -> simulate.Calibration:
    """Fit the host constants on the idle configuration's real runs; ``link`` and
    ``sockbuf`` are the host's loopback throughput and socket buffer limits
    (harness/fidelity/hostprobe.py), if measured."""
    ok = [r for r in runs if r["hvlab"]["final"].get("status") == "completed"]
    if not ok:
        raise ValueError(f"{cfg.name}: no completed real run to calibrate on")
    finals = [r["hvlab"]["final"] for r in ok]
    host = base or Host()
    rom = int(_median([f["ram"]["total"] for f in finals])) - cfg.guest_mib * MiB
    setup_s = _median([f.get("setup-time", 0) for f in finals]) / 1000
    device = []
    for f in finals:
        span_ms = f["total-time"] - f.get("setup-time", 0)
        device.append(f["ram"]["mbps"] * span_ms * 1000 / 8 - f["ram"]["transferred"])
    device_bytes = max(0, int(_median(device)))
    downtime_ms = _median([f["downtime"] for f in finals])
    pauses = [
        r["hvlab"]["pause_ms"] - r["hvlab"]["final"]["downtime"]
        for r in ok
        if r["hvlab"].get("pause_ms") is not None
    ]
    stops = [r["hvlab"]["stop_ms"] for r in ok if r["hvlab"].get("stop_ms") is not None]
    switches = [
        r["hvlab"]["switchover_ms"] for r in ok if r["hvlab"].get("switchover_ms") is not None
    ]
    host = dataclasses.replace(
        host,
        stop_overhead_s=_median(stops) / 1000 if stops else host.stop_overhead_s,
        switchover_s=_median(switches) / 1000 if switches else host.switchover_s,
        nic_bandwidth=link or host.nic_bandwidth,
        socket_buffer_bytes=sockbuf or host.socket_buffer_bytes,
        setup_fixed_s=setup_s,
        setup_per_gib_s=0.0,
        resume_s=max(0.0, _median(pauses) / 1000) if pauses else host.resume_s,
    )
    layouts = [Layout.from_json(r["hvlab"]["layout"]) for r in ok]
    total_ms = _median([f["total-time"] for f in finals])

    def sim(h: Host, key: str) -> float:
        cal = simulate.Calibration(h, rom, device_bytes)
        reps = [simulate.run(cfg, lay, cal) for lay in layouts]
        if key == "downtime":
            return _median([1000 * float(r["hvlab"]["downtime_s"] or 0.0) for r in reps])
        return _median([float(r["hvlab"]["final"].get("total-time", 0)) for r in reps])

    # two rounds: the overrun moves the switch-over a little, the touch cost the total
    for _ in range(2):
        touch = _fit(_varied(sim, host, "first_touch_s", "downtime"), downtime_ms, 1e-4)
        host = dataclasses.replace(host, first_touch_s=touch)
        overrun = _fit(_varied(sim, host, "window_overrun_s", "total"), total_ms, 0.02)
        host = dataclasses.replace(host, window_overrun_s=overrun)
    return simulate.Calibration(host, rom, device_bytes)


def _varied(
    sim: Callable[[Host, str], float], host: Host, field: str, figure: str
) -> Callable[[float], float]:
    """The simulated ``figure`` as a function of one host constant."""

    def f(x: float) -> float:
        values = host.to_json()
        values[field] = x
        return sim(Host.from_json(values), figure)

    return f


def _fit(f: Callable[[float], float], target: float, hi: float) -> float:
    """The x in [0, hi] where the increasing ``f`` reaches ``target`` (bisection)."""
    lo = 0.0
    if f(lo) >= target:
        return 0.0
    for _ in range(_FIT_STEPS):
        mid = (lo + hi) / 2
        if f(mid) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
