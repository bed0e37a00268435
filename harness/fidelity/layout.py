"""Where the guest's non-zero pages are: a dump of guest RAM before the migration.

A user who knows a guest knows its memory's layout: here it is read, not guessed. QMP
``pmemsave`` writes guest-physical RAM to a file; every 4 KiB page is zero or not (the
test ram.c's save_zero_page makes with buffer_is_zero), and hvlab-stress's pages carry
their working-set index in word 0 (a tag, see harness/guest_src/hvlab-stress.c), so the
dump also says where each working-set page sits, in the writer's order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import ramdump
from harness.machine import Machine
from harness.ramdump import CHUNK_PAGES, PAGE

_TAG = 0x68766C6162 << 24
_TAG_MASK = ~((1 << 24) - 1) & ((1 << 64) - 1)


@dataclass(frozen=True)
class Layout:
    """Guest RAM pages; non-zero page ranges; the working set's physical ranges in the
    writer's order (``(first, end)`` page numbers)."""

    pages: int
    nonzero: tuple[tuple[int, int], ...]
    ws: tuple[tuple[int, int], ...]

    @property
    def nonzero_pages(self) -> int:
        return sum(b - a for a, b in self.nonzero)

    @property
    def ws_pages(self) -> int:
        return sum(b - a for a, b in self.ws)

    def to_json(self) -> dict[str, object]:
        return {"pages": self.pages, "nonzero": self.nonzero, "ws": self.ws}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Layout:
        def ranges(key: str) -> tuple[tuple[int, int], ...]:
            raw = data[key]
            assert isinstance(raw, list)
            return tuple((int(a), int(b)) for a, b in raw)

        pages = data["pages"]
        assert isinstance(pages, int)
        return cls(pages, ranges("nonzero"), ranges("ws"))


def _runs(mask: np.ndarray, offset: int) -> list[tuple[int, int]]:
    """Ranges of True in a boolean page mask."""
    if not mask.any():
        return []
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [(int(a) + offset, int(b) + offset) for a, b in zip(starts, ends, strict=True)]


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in ranges:
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def scan(dump: Path) -> Layout:
    """The layout of a raw RAM dump (page 0 = the dump's first page)."""
    size = dump.stat().st_size
    pages = size // PAGE
    nonzero: list[tuple[int, int]] = []
    phys: list[np.ndarray] = []
    index: list[np.ndarray] = []
    with dump.open("rb") as f:
        for first in range(0, pages, CHUNK_PAGES):
            n = min(CHUNK_PAGES, pages - first)
            words = np.frombuffer(f.read(n * PAGE), dtype="<u8").reshape(n, PAGE // 8)
            nonzero += _runs(np.asarray(words.any(axis=1)), first)
            head = words[:, 0]
            tagged = np.flatnonzero((head & np.uint64(_TAG_MASK)) == np.uint64(_TAG))
            phys.append(tagged + first)
            index.append((head[tagged] & np.uint64((1 << 24) - 1)).astype(np.int64))
    p = np.concatenate(phys) if phys else np.zeros(0, np.int64)
    i = np.concatenate(index) if index else np.zeros(0, np.int64)
    order = np.argsort(i, kind="stable")
    p, i = p[order], i[order]
    ws: list[tuple[int, int]] = []
    for a in p.tolist():
        if ws and ws[-1][1] == a:
            ws[-1] = (ws[-1][0], a + 1)
        else:
            ws.append((a, a + 1))
    return Layout(pages, tuple(_merge(nonzero)), tuple(ws))


def read(vm: Machine, work: Path) -> Layout:
    """Dump the guest's RAM with pmemsave (the VM keeps running) and scan it."""
    dump = ramdump.dump(vm, work / "ram.dump")
    try:
        layout = scan(dump)
    finally:
        dump.unlink(missing_ok=True)
    (work / "layout.json").write_text(json.dumps(layout.to_json()))
    return layout
