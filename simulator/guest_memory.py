"""Guest RAM content as page ranges with write versions: a compact, faithful encoding.

Page ``p`` written at version ``v`` holds ``content(p, v)`` (``v == 0`` is a zero page),
so two maps with the same coalesced ranges hold byte-identical memory. The migration
stream carries these ranges (not 4 KiB payloads) and the destination verifies the
source's digest of the whole map. The guest's writer (the ``--workload``) and the guest
helpers (``hvlab-pattern``) write into it; nothing else does.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from dataclasses import dataclass, field

from simulator.model import Workload
from simulator.model.units import PAGE_SIZE

Range = tuple[int, int, int]  # [start page, end page) at version
#: Intervals the dirty log holds before it is merged (and, if still long, coarsened: like
#: QEMU's dirty bitmap it has a fixed size, whoever does or does not read it).
LOG_LIMIT = 4096


def _coarsen(log: list[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    """Sorted disjoint intervals -> at most ``limit`` covering them (neighbours joined)."""
    while len(log) > limit:
        pairs = [(log[i][0], log[i + 1][1]) for i in range(0, len(log) - 1, 2)]
        log = pairs + ([log[-1]] if len(log) % 2 else [])
    return log


def page_content(page: int, version: int) -> bytes:
    """The 4 KiB a page holds (used by tests and spot checks, never for the stream)."""
    if version == 0:
        return bytes(PAGE_SIZE)
    seed = hashlib.sha256(f"{page}:{version}".encode()).digest()
    return (seed * (PAGE_SIZE // len(seed)))[:PAGE_SIZE]


@dataclass
class PageMap:
    """Sorted, gap-free ranges covering ``[0, pages)``; neighbours never share a version."""

    pages: int
    starts: list[int] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    next_version: int = 2
    _log: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.starts:
            self.starts, self.versions = [0], [0]

    @classmethod
    def boot(cls, pages: int, nonzero: list[tuple[int, int]]) -> PageMap:
        """A freshly booted guest: the model's non-zero ranges at version 1."""
        m = cls(pages)
        for a, b in nonzero:
            m.write(a, min(b, pages), 1)
        m._log.clear()
        return m

    def ranges(self) -> list[Range]:
        ends = [*self.starts[1:], self.pages]
        return list(zip(self.starts, ends, self.versions, strict=True))

    def _split(self, pos: int) -> int:
        """Ensure a range starts at ``pos``; return its index."""
        if pos >= self.pages:
            return len(self.starts)
        i = bisect.bisect_right(self.starts, pos) - 1
        if self.starts[i] != pos:
            self.starts.insert(i + 1, pos)
            self.versions.insert(i + 1, self.versions[i])
            i += 1
        return i

    def write(self, start: int, end: int, version: int | None = None) -> int:
        """Write pages ``[start, end)`` at ``version`` (a fresh one by default)."""
        start, end = max(0, start), min(end, self.pages)
        v = self.next_version if version is None else version
        self.next_version = max(self.next_version, v + 1)
        if end <= start:
            return v
        i = self._split(start)
        j = self._split(end)
        self.starts[i:j] = [start]
        self.versions[i:j] = [v]
        self._merge(i)
        self._log.append((start, end))
        if len(self._log) > LOG_LIMIT:
            self._log = _coarsen(self.take_log(), LOG_LIMIT // 2)
        return v

    def _merge(self, i: int) -> None:
        if i + 1 < len(self.starts) and self.versions[i + 1] == self.versions[i]:
            del self.starts[i + 1], self.versions[i + 1]
        if i > 0 and self.versions[i - 1] == self.versions[i]:
            del self.starts[i], self.versions[i]

    def slice(self, start: int, end: int) -> list[Range]:
        """The ranges intersecting ``[start, end)``, clipped."""
        out: list[Range] = []
        i = max(0, bisect.bisect_right(self.starts, start) - 1)
        while i < len(self.starts) and self.starts[i] < end:
            a = max(start, self.starts[i])
            b = min(end, self.starts[i + 1] if i + 1 < len(self.starts) else self.pages)
            if b > a:
                out.append((a, b, self.versions[i]))
            i += 1
        return out

    def versions_in(self, start: int, end: int) -> set[int]:
        return {v for _, _, v in self.slice(start, end)}

    def take_log(self) -> list[tuple[int, int]]:
        """Merged page intervals written since the last call (the guest's dirty log)."""
        log, self._log = sorted(self._log), []
        out: list[tuple[int, int]] = []
        for a, b in log:
            if out and a <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], b))
            else:
                out.append((a, b))
        return out

    def digest(self) -> str:
        """sha256 of the coalesced ranges: equal digests <=> identical guest memory."""
        h = hashlib.sha256(str(self.pages).encode())
        for a, b, v in self.ranges():
            h.update(f";{a},{b},{v}".encode())
        return h.hexdigest()

    def to_json(self) -> dict[str, object]:
        return {"pages": self.pages, "ranges": self.ranges(), "next": self.next_version}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> PageMap:
        pages = data["pages"]
        ranges = data["ranges"]
        nxt = data.get("next", 2)
        if not isinstance(pages, int) or not isinstance(ranges, list) or not isinstance(nxt, int):
            raise ValueError("malformed page map")
        m = cls(pages)
        for a, b, v in ranges:
            m.write(int(a), int(b), int(v))
        m.next_version = nxt
        m._log.clear()
        return m

    def dumps(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()


@dataclass
class Writer:
    """The guest's dirtying workload: a cyclic writer over its working set."""

    workload: Workload
    pos: float = 0.0
    carry: float = 0.0

    def run(self, mem: PageMap, dt: float) -> None:
        """Write for ``dt`` seconds of guest run time."""
        w = self.workload
        total = w.ws_pages
        if total == 0 or w.dirty_rate <= 0 or dt <= 0:
            return
        self.carry += w.dirty_rate / PAGE_SIZE * dt
        n = int(self.carry)
        if n == 0:
            return
        self.carry -= n
        base = w.ws_offset // PAGE_SIZE
        n = min(n, total)
        start = int(self.pos) % total
        v = mem.next_version
        end = start + n
        if end <= total:
            mem.write(base + start, base + end, v)
        else:
            mem.write(base + start, base + total, v)
            mem.write(base, base + end - total, v)
        self.pos = float(end % total)


def pattern_md5(mib: int, seed: str) -> str:
    """md5 of what the guest helper writes: the first MiB of ``yes "hvlab-$seed"``,
    ``mib`` times over."""
    line = f"hvlab-{seed}\n".encode()
    block = (line * ((1 << 20) // len(line) + 1))[: 1 << 20]
    h = hashlib.md5()
    for _ in range(mib):
        h.update(block)
    return h.hexdigest()
