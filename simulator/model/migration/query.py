"""QEMU 7.2 ``query-migrate`` reply from an engine (migration.c fill_source_migration_info)."""

from __future__ import annotations

from typing import Any

from simulator.model.migration.params import Capability
from simulator.model.migration.qemu_precopy import QemuPrecopy
from simulator.model.migration.status import MigrationStatus as S
from simulator.model.units import PAGE_SIZE


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def ram_info(e: QemuPrecopy, now: float) -> dict[str, Any]:
    """populate_ram_info."""
    c = e.c
    done = status_at(e, now) is S.COMPLETED
    mbps = e.mbps
    if done and e.end is not None:
        span = (e.end - e.setup_end) * 1000
        mbps = (c.transferred + e.device_bytes) * 8 / span / 1000 if span > 0 else 0.0
    return {
        "transferred": c.transferred,
        "remaining": 0 if done else e.dirty * PAGE_SIZE,
        "total": e.cfg.layout.total_bytes,
        "duplicate": c.duplicate,
        "skipped": 0,
        "normal": c.normal,
        "normal-bytes": c.normal * PAGE_SIZE,
        "dirty-pages-rate": 0 if done else e.dirty_pages_rate,
        "mbps": round(mbps, 6),
        "dirty-sync-count": c.dirty_sync_count,
        "postcopy-requests": c.postcopy_requests,
        "page-size": PAGE_SIZE,
        "multifd-bytes": c.multifd_bytes,
        "pages-per-second": int(e.pps),
        "precopy-bytes": c.precopy_bytes,
        "downtime-bytes": c.downtime_bytes,
        "postcopy-bytes": c.postcopy_bytes,
        "dirty-sync-missed-zero-copy": 0,
    }


def status_at(e: QemuPrecopy, now: float) -> S:
    """The status at ``now``: the engine works a window ahead (a whole idle guest may be
    sent in one), so a status it set for a later moment is not shown before then."""
    shown = e.status
    for t, value in e.tl.history:
        if t > now:
            break
        shown = S(value)
    return shown


def query_migrate(e: QemuPrecopy, now: float) -> dict[str, Any]:
    """The ``return`` value of query-migrate on the source at time ``now``."""
    st = status_at(e, now)
    out: dict[str, Any] = {"status": st.value}
    if st in (S.SETUP,):
        return out
    if st in (S.CANCELLED, S.CANCELLING):
        return out
    if st is S.FAILED:
        if e.error_desc:
            out["error-desc"] = e.error_desc
        return out
    end = e.end if st is S.COMPLETED and e.end is not None else now
    out["total-time"] = _ms(end - e.start)
    out["setup-time"] = _ms(e.setup_end - e.start)
    if st is S.COMPLETED:
        out["downtime"] = _ms(e.downtime or 0.0)
    else:
        out["expected-downtime"] = e.expected_downtime
    out["ram"] = ram_info(e, now)
    if e.throttle:
        out["cpu-throttle-percentage"] = e.throttle
    caps = e.cfg.caps
    if Capability.XBZRLE in caps:
        c = e.c
        seen = c.xbzrle_pages + c.xbzrle_cache_miss
        out["xbzrle-cache"] = {
            "cache-size": e.cfg.params.xbzrle_cache_size,
            "bytes": c.xbzrle_bytes,
            "pages": c.xbzrle_pages,
            "cache-miss": c.xbzrle_cache_miss,
            "cache-miss-rate": c.xbzrle_cache_miss / seen if seen else 0.0,
            "encoding-rate": (c.xbzrle_pages * PAGE_SIZE / c.xbzrle_bytes)
            if c.xbzrle_bytes
            else 0.0,
            "overflow": c.xbzrle_overflow,
        }
    if Capability.COMPRESS in caps:
        c = e.c
        out["compression"] = {
            "pages": c.compress_pages,
            "busy": 0,
            "busy-rate": 0.0,
            "compressed-size": c.compressed_size,
            "compression-rate": (c.compress_pages * PAGE_SIZE / c.compressed_size)
            if c.compressed_size
            else 0.0,
        }
    return out
