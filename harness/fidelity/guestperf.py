"""Runs as reports in the format of QEMU's tests/migration/guestperf (report.py).

A report has ``hardware``, ``scenario``, ``progress_history`` (one Progress per sample:
status, ram stats, now, duration, downtime, downtime_expected, setup_time,
throttle_pcent), ``guest_timings``, ``qemu_timings``, ``vcpu_timings`` and the run's
binary, dst_host, kernel, initrd, transport and sleep, so guestperf's own plot and
comparison tools read it. Real and simulated runs use the same builder, fed with
query-migrate answers; hvlab's extra figures sit under an ``hvlab`` key that guestperf
ignores. The format is re-implemented here from its field list, not copied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

JSON = dict[str, Any]


def progress(info: JSON, now: float) -> JSON:
    """One guestperf Progress record from a query-migrate answer (engine.py
    _migrate_progress reads the same fields)."""
    ram = info.get("ram", {})
    return {
        "status": info.get("status", "active"),
        "ram": {
            "transferred_bytes": ram.get("transferred", 0),
            "remaining_bytes": ram.get("remaining", 0),
            "total_bytes": ram.get("total", 0),
            "duplicate_pages": ram.get("duplicate", 0),
            "skipped_pages": ram.get("skipped", 0),
            "normal_pages": ram.get("normal", 0),
            "normal_bytes": ram.get("normal-bytes", 0),
            "dirty_rate_pps": ram.get("dirty-pages-rate", 0),
            "transfer_rate_mbs": ram.get("mbps", 0),
            "iterations": ram.get("dirty-sync-count", 0),
        },
        "now": now,
        "duration": info.get("total-time", 0),
        "downtime": info.get("downtime", 0),
        "downtime_expected": info.get("expected-downtime", 0),
        "setup_time": info.get("setup-time", 0),
        "throttle_pcent": info.get("cpu-throttle-percentage", 0),
    }


def hardware(cpus: int, mem_mib: int) -> JSON:
    return {
        "cpus": cpus,
        "mem": mem_mib / 1024,
        "src_mem_bind": [],
        "dst_mem_bind": [],
        "src_cpu_bind": [],
        "dst_cpu_bind": [],
        "prealloc_pages": False,
        "huge_pages": False,
        "locked_pages": False,
    }


def report(
    *,
    scenario: JSON,
    hw: JSON,
    history: list[JSON],
    binary: str,
    kernel: str,
    initrd: str,
    hvlab: JSON,
    guest_timings: list[JSON] | None = None,
) -> JSON:
    return {
        "hardware": hw,
        "scenario": scenario,
        "progress_history": history,
        "guest_timings": guest_timings or [],
        "qemu_timings": [],
        "vcpu_timings": [],
        "binary": binary,
        "dst_host": "localhost",
        "kernel": kernel,
        "initrd": initrd,
        "transport": "tcp",
        "sleep": 0,
        "hvlab": hvlab,
    }


def save(data: JSON, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str))


def load(path: Path) -> JSON:
    data: JSON = json.loads(path.read_text())
    for key in ("hardware", "scenario", "progress_history", "hvlab"):
        if key not in data:
            raise ValueError(f"{path}: not a guestperf report (no {key!r})")
    return data
