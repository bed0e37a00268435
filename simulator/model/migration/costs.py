"""Per-page wire and CPU cost of QEMU 7.2's RAM save path (migration/ram.c).

``ram_save_target_page``: zero check first (``save_zero_page``, 9 bytes, ``duplicate``);
then compression (``compress`` capability), multifd (``multifd`` capability), xbzrle after
the first complete round (``save_xbzrle_page``), else ``ram_save_page`` (4096+8 bytes,
``normal``). Counters are mutated here so the engine stays about time and state.

XBZRLE's cache starts cold: save_xbzrle_page counts a page that is not cached as a
miss, sends it whole and inserts it, so a page's first send after the bulk stage is a
miss and only its later sends can hit (the engine keeps per-range cached counts). The
cache is direct-mapped (page_cache.c cache_get_cache_pos: page number modulo the number
of slots) and cache_insert keeps a slot's page while it is fresh (used within
CACHED_PAGE_LIFETIME = 2 syncs), so of working-set pages that share a slot only one
stays cached while the writer keeps re-dirtying them: ``cache_share`` is the share of
working-set pages that have a slot of their own.

A non-zero page takes the slower of the link and its copy, not their sum: the source
queues the guest page itself (save_normal_page -> qemu_put_buffer_async, no copy) and the
destination's ram_load copies it into guest RAM while the next pages are on the wire.
(Scored against real QEMU 7.2 runs: downtime-bytes over downtime gives 1.9-2.9 us per
re-sent page on a host whose loopback link takes 2.2 us per page; the sum said 2.8.)

A non-zero page that reaches the destination for the first time costs the host's
``first_touch_s`` more: the destination faults the page in (anonymous memory, zeroed
by the kernel) before ram_load copies it, and the source's send blocks on the socket
meanwhile. Re-sent pages land on memory that is already there, except after a switch to
post-copy: the destination discards the pages still dirty (postcopy_start's discard
bitmap, ram_discard_range) and places each one again into fresh memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulator.model.host import Host
from simulator.model.memory import Workload
from simulator.model.migration.params import Capability, MigrationParameters, MultiFDCompression
from simulator.model.units import NORMAL_PAGE_WIRE, PAGE_SIZE, XBZRLE_OVERHEAD, ZERO_PAGE_WIRE

#: zlib level 1 throughput of one compress thread (pages/s); an estimate.
COMPRESS_PAGES_PER_THREAD = 50_000.0
#: multifd.c: 128 pages per packet, MultiFDPacket_t header + 8 bytes per page offset.
MULTIFD_PAGES_PER_PACKET = 128
MULTIFD_PACKET_HEADER = 64
_MULTIFD_RATIO = {
    MultiFDCompression.NONE: 1.0,
    MultiFDCompression.ZLIB: 0.45,
    MultiFDCompression.ZSTD: 0.4,
}


@dataclass
class RamCounters:
    """ram_counters / xbzrle_counters / compression_counters of ram.c (cumulative)."""

    transferred: int = 0
    duplicate: int = 0
    normal: int = 0
    precopy_bytes: int = 0
    downtime_bytes: int = 0
    postcopy_bytes: int = 0
    multifd_bytes: int = 0
    postcopy_requests: int = 0
    dirty_sync_count: int = 0
    xbzrle_pages: int = 0
    xbzrle_bytes: int = 0
    xbzrle_cache_miss: int = 0
    xbzrle_overflow: int = 0
    compress_pages: int = 0
    compressed_size: int = 0

    @property
    def pages_sent(self) -> int:
        return self.duplicate + self.normal + self.xbzrle_pages + self.compress_pages


class PageCosts:
    """Bytes and seconds per page for the current capabilities and round."""

    def __init__(
        self,
        host: Host,
        link: float,
        workload: Workload,
        params: MigrationParameters,
        caps: frozenset[Capability],
    ) -> None:
        self.link = link
        self.zero_tau = 1.0 / host.zero_scan_rate + ZERO_PAGE_WIRE / link
        self.multifd = Capability.MULTIFD in caps
        self.compress = Capability.COMPRESS in caps
        self.xbzrle = Capability.XBZRLE in caps
        self.xbzrle_active = False  # ram.c: only after the first complete round
        self.first_round = True  # every non-zero page sent now is new to the destination
        self.discarded = False  # post-copy: the destination dropped the dirty pages
        self.first_touch = host.first_touch_s
        self.cache_share = cache_share(workload, params.xbzrle_cache_size // PAGE_SIZE)
        self.delta = min(PAGE_SIZE + 1, workload.xbzrle_delta)
        copy = 1.0 / host.copy_rate
        if self.compress:
            size = math.ceil(PAGE_SIZE * workload.compress_ratio)
            self.nz_bytes = float(ZERO_PAGE_WIRE - 1 + 4 + size)
            copy = 1.0 / (COMPRESS_PAGES_PER_THREAD * params.compress_threads)
        elif self.multifd:
            ratio = _MULTIFD_RATIO[params.multifd_compression]
            per_page = PAGE_SIZE * ratio + 8 + MULTIFD_PACKET_HEADER / MULTIFD_PAGES_PER_PACKET
            self.nz_bytes = per_page
            copy /= params.multifd_channels
        else:
            self.nz_bytes = float(NORMAL_PAGE_WIRE)
        self.copy_tau = copy

    @property
    def xbzrle_on(self) -> bool:
        """save_xbzrle_page runs for non-zero pages now."""
        return self.xbzrle_active and not self.compress and not self.multifd

    def per_page(self, nonzero: int, hit: float = 0.0) -> tuple[float, float]:
        """(average bytes, seconds) for one page of the given content; ``hit`` is the
        share of such pages found in the XBZRLE cache."""
        if not nonzero:
            return float(ZERO_PAGE_WIRE), self.zero_tau
        b = self.nz_bytes
        if self.xbzrle_on:
            enc = XBZRLE_OVERHEAD + self.delta
            if enc < NORMAL_PAGE_WIRE:
                b = hit * enc + (1 - hit) * b
        touch = self.first_touch if self.first_round or self.discarded else 0.0
        # the copy (destination's ram_load, or the compress threads) overlaps the send
        return b, max(self.copy_tau, b / self.link) + touch

    def constant(self, nonzero: int) -> int | None:
        """Exact integer bytes per page if every page costs the same, else None."""
        if not nonzero:
            return ZERO_PAGE_WIRE
        if self.multifd or (self.xbzrle_active and not self.compress):
            return None
        return int(self.nz_bytes)

    def account(self, c: RamCounters, n: int, nonzero: int, hits: int = 0) -> int:
        """Send ``n`` pages (``hits`` of them found in the XBZRLE cache); update counters;
        return the bytes put on the wire."""
        if not nonzero:
            c.duplicate += n
            return n * ZERO_PAGE_WIRE
        if self.compress:
            c.compress_pages += n
            c.compressed_size += n * (int(self.nz_bytes) - 12)
            return n * int(self.nz_bytes)
        if self.multifd:
            packets = -(-n // MULTIFD_PAGES_PER_PACKET)
            b = round(n * (self.nz_bytes - MULTIFD_PACKET_HEADER / MULTIFD_PAGES_PER_PACKET))
            b += packets * MULTIFD_PACKET_HEADER
            c.normal += n
            c.multifd_bytes += b
            return b
        if self.xbzrle_active:
            miss = n - hits
            c.xbzrle_cache_miss += miss
            if XBZRLE_OVERHEAD + self.delta >= NORMAL_PAGE_WIRE:
                c.xbzrle_overflow += hits
                c.normal += n
                return n * NORMAL_PAGE_WIRE
            c.xbzrle_pages += hits
            c.xbzrle_bytes += hits * (3 + self.delta)
            c.normal += miss
            return hits * (XBZRLE_OVERHEAD + self.delta) + miss * NORMAL_PAGE_WIRE
        c.normal += n
        return n * NORMAL_PAGE_WIRE


def cache_share(workload: Workload, slots: int) -> float:
    """Share of working-set pages with an XBZRLE cache slot of their own (page number
    modulo ``slots``, page_cache.c cache_get_cache_pos)."""
    ws = workload.ws_pages
    if ws == 0 or slots <= 0:
        return 1.0
    arcs: list[tuple[int, int]] = []
    for _, a, b in workload.physical():
        if b - a >= slots:
            return slots / ws
        lo, hi = a % slots, b % slots
        if lo < hi:
            arcs.append((lo, hi))
        else:
            arcs += [(lo, slots), (0, hi)]
    covered, end = 0, 0
    for lo, hi in sorted(arcs):
        lo = max(lo, end)
        if hi > lo:
            covered += hi - lo
            end = hi
    return min(1.0, covered / ws)
