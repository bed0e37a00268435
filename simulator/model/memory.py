"""Guest memory: layout (zero vs non-zero pages) and the dirtying workload.

Memory is described by page *ranges*, never per page, so a 1 TiB guest costs the same
as a 1 GiB one. A workload dirties a writable working set of ``W`` pages at a demand rate
``r`` pages/s; the number of unique pages it dirties in a window ``dt`` is at most
``min(W, r*dt)`` for every pattern (cyclic: exactly that; random/hot-cold: the
coupon-collector expectation ``W*(1-exp(-r*dt/W))`` per region).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from simulator.model.units import PAGE_SIZE, pages

#: softmmu/cpu-throttle.c CPU_THROTTLE_TIMESLICE_NS: a throttled vCPU runs 10 ms at a time.
THROTTLE_SLICE_S = 0.010

#: A dirty-log range: (first page, end page, unique dirty pages spread evenly in it).
LogRange = tuple[int, int, int]


class DirtyPattern(Enum):
    """How the guest's writer walks its working set."""

    CYCLIC = "cyclic"
    RANDOM = "random"
    HOT_COLD = "hot-cold"


@dataclass(frozen=True)
class Workload:
    """A guest writer. Sizes in bytes, rates in bytes/s.

    ``cpu_capacity`` is what the writer reaches with a whole vCPU; under an auto-converge
    throttle p the achieved rate is ``min(dirty_rate, (1-p) * cpu_capacity)``
    (softmmu/cpu-throttle.c sleeps the vCPU, it does not scale the demand). ``None``
    means a CPU-bound writer (capacity = demand).

    ``catchup_s``: a paced writer (it writes what its clock says is due, but never more
    than this many seconds of backlog); None: it writes flat out up to its rate.
    ``extents`` places the working set in guest-physical memory: page ranges in the
    writer's order (a cyclic writer's index i is the i-th page of their concatenation),
    as a guest's allocator scatters them; empty means one contiguous range at
    ``ws_offset``. Their pages must add up to the working set.
    """

    working_set: int = 0
    dirty_rate: float = 0.0
    pattern: DirtyPattern = DirtyPattern.CYCLIC
    cpu_capacity: float | None = None
    hot_fraction: float = 0.1
    hot_share: float = 0.9
    ws_offset: int = 0
    xbzrle_delta: int = 64
    compress_ratio: float = 0.45
    extents: tuple[tuple[int, int], ...] = ()
    catchup_s: float | None = None

    def __post_init__(self) -> None:
        if self.extents and sum(b - a for a, b in self.extents) != self.ws_pages:
            raise ValueError("working-set extents must add up to the working set")

    @property
    def ws_pages(self) -> int:
        return pages(self.working_set)

    def physical(self) -> list[tuple[int, int, int]]:
        """(writer index of the first page, first page, end page) per physical range."""
        if not self.extents:
            base = self.ws_offset // PAGE_SIZE
            return [(0, base, base + self.ws_pages)] if self.ws_pages else []
        out, i = [], 0
        for a, b in self.extents:
            out.append((i, a, b))
            i += b - a
        return out

    def mean_run(self) -> float:
        """Pages a cyclic writer covers before it jumps elsewhere in physical memory."""
        return self.ws_pages / max(1, len(self.extents) if self.extents else 1)

    def effective_rate(self, throttle_pct: int) -> float:
        """Pages/s actually dirtied under a CPU throttle of ``throttle_pct`` percent.

        A paced writer (``catchup_s`` set) keeps time by the guest clock, which runs
        on while cpu-throttle sleeps the vCPU (p/(1-p) x 10 ms after every 10 ms of
        running, softmmu/cpu-throttle.c CPU_THROTTLE_TIMESLICE_NS); waking up it writes
        at most ``catchup_s`` of backlog, so it keeps (1-p)(10 ms + catchup)/10 ms of
        its demand. Otherwise the writer is CPU-bound: (1-p) x capacity.
        """
        demand = self.dirty_rate / PAGE_SIZE
        run = 1.0 - throttle_pct / 100.0
        if self.catchup_s is not None:
            kept = min(demand, demand * run * (1.0 + self.catchup_s / THROTTLE_SLICE_S))
            if self.cpu_capacity is None:
                return kept
            return min(kept, run * self.cpu_capacity / PAGE_SIZE)
        cap = (self.cpu_capacity if self.cpu_capacity is not None else self.dirty_rate) / PAGE_SIZE
        return min(demand, run * cap)


def unique_dirtied(w: Workload, rate_pages: float, dt: float) -> float:
    """Expected unique pages dirtied in ``dt`` seconds at ``rate_pages`` pages/s."""
    total = w.ws_pages
    if total == 0 or rate_pages <= 0 or dt <= 0:
        return 0.0
    writes = rate_pages * dt
    if w.pattern is DirtyPattern.CYCLIC:
        return min(float(total), writes)
    if w.pattern is DirtyPattern.RANDOM:
        return total * -math.expm1(-writes / total)
    hot = max(1, min(total, round(total * w.hot_fraction)))
    cold = total - hot
    got = hot * -math.expm1(-writes * w.hot_share / hot)
    if cold:
        got += cold * -math.expm1(-writes * (1 - w.hot_share) / cold)
    return got


def _index_log(
    w: Workload, rate_pages: float, dt: float, pos: float
) -> tuple[list[LogRange], float]:
    """The period's dirty ranges in writer-index space (0 .. W pages)."""
    total = w.ws_pages
    if w.pattern is DirtyPattern.CYCLIC:
        n = min(total, int(rate_pages * dt))
        new_pos = (pos + rate_pages * dt) % total
        start = int(pos) % total
        if n >= total:
            return [(0, total, total)], new_pos
        end = start + n
        if end <= total:
            return ([(start, end, n)] if n else []), new_pos
        return [(0, end - total, end - total), (start, total, total - start)], new_pos
    if w.pattern is DirtyPattern.RANDOM:
        return [(0, total, round(unique_dirtied(w, rate_pages, dt)))], pos
    hot = max(1, min(total, round(total * w.hot_fraction)))
    cold = total - hot
    out = [(0, hot, round(hot * -math.expm1(-rate_pages * dt * w.hot_share / hot)))]
    if cold:
        c = round(cold * -math.expm1(-rate_pages * dt * (1 - w.hot_share) / cold))
        out.append((hot, total, c))
    return out, pos


def dirty_log(
    w: Workload, rate_pages: float, dt: float, pos: float
) -> tuple[list[LogRange], float]:
    """Dirty-log ranges (guest-physical pages) for one period and the cyclic writer's
    next position.

    ``pos`` is the cyclic writer's offset inside the working set (pages). Ranges of the
    writer's index space map onto the working set's physical extents; a range's unique
    count is shared between the extents it covers in proportion to their length.
    """
    if w.ws_pages == 0 or rate_pages <= 0 or dt <= 0:
        return [], pos
    log, new_pos = _index_log(w, rate_pages, dt, pos)
    phys = w.physical()
    out: list[LogRange] = []
    for a, b, count in log:
        span = b - a
        got = 0
        for i0, p0, p1 in phys:
            lo, hi = max(a, i0), min(b, i0 + (p1 - p0))
            if lo >= hi:
                continue
            share = count * (hi - a) // span - got
            got += share
            out.append((p0 + lo - i0, p0 + hi - i0, share))
    out.sort()
    return out, new_pos


@dataclass(frozen=True)
class MemoryLayout:
    """Guest RAM: ``size`` bytes, non-zero data in ``[0, resident)``, plus ``rom`` bytes.

    ``rom`` models QEMU's extra migratable RAM blocks (BIOS, option ROMs: ``ram.total``
    is 1074274304 for ``-m 1024`` on q35), of which the first ``rom_nonzero`` bytes hold
    data (all of them unless given). The working set is non-zero too.
    ``extents``, when given, says where the non-zero pages of RAM are instead of
    ``resident`` (page ranges, e.g. read from a dump of a real guest: Linux allocates
    from the top of RAM down, so an idle guest's data is not at the bottom).
    """

    size: int
    resident: int = 0
    rom: int = 0
    extents: tuple[tuple[int, int], ...] = ()
    rom_nonzero: int | None = None

    def __post_init__(self) -> None:
        if self.size <= 0 or self.size % PAGE_SIZE:
            raise ValueError("memory size must be a positive multiple of 4 KiB")
        if not 0 <= self.resident <= self.size:
            raise ValueError("resident bytes must lie within memory")
        if any(not 0 <= a < b <= self.size // PAGE_SIZE for a, b in self.extents):
            raise ValueError("non-zero extents must lie within memory")

    @property
    def total_pages(self) -> int:
        return self.size // PAGE_SIZE + pages(self.rom)

    @property
    def total_bytes(self) -> int:
        return self.total_pages * PAGE_SIZE

    def nonzero_ranges(self, w: Workload) -> list[tuple[int, int]]:
        """Sorted, merged page ranges holding non-zero data."""
        ram = self.size // PAGE_SIZE
        spans = list(self.extents) if self.extents else [(0, pages(self.resident))]
        for _, a, b in w.physical():
            spans.append((min(a, ram), min(b, ram)))
        rom_data = self.rom if self.rom_nonzero is None else min(self.rom, self.rom_nonzero)
        spans.append((ram, ram + pages(rom_data)))
        out: list[tuple[int, int]] = []
        for a, b in sorted(s for s in spans if s[1] > s[0]):
            if out and a <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], b))
            else:
                out.append((a, b))
        return out

    def nonzero_pages(self, w: Workload) -> int:
        return sum(b - a for a, b in self.nonzero_ranges(w))


@dataclass(frozen=True)
class MemoryImage:
    """Compact content identity of guest RAM: layout plus a write generation.

    The source bumps ``generation`` whenever the guest writes; a destination holds an
    equal image only if every page dirtied up to switch-over reached it.
    """

    size: int
    nonzero: tuple[tuple[int, int], ...]
    generation: int
