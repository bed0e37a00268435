"""The migration dirty bitmap as page ranges with integer dirty counts.

Each segment is ``[start, end, dirty, nonzero, cached]``: ``dirty`` unique dirty pages
spread evenly over ``[start, end)``, whose content is all non-zero (1) or all zero (0),
and ``cached`` of its pages held in the XBZRLE cache (migration/page_cache.c). Scans
walk in address order from a cursor as ram.c ``find_dirty_block`` does; syncs OR the
guest's dirty log in (ram.c ``migration_bitmap_sync``), treating overlaps as independent.
"""

from __future__ import annotations

from simulator.model.memory import LogRange

Seg = list[int]


def full_bitmap(total: int, nonzero: list[tuple[int, int]]) -> list[Seg]:
    """Every page dirty (ram.c ``ram_init_bitmaps``), split at content boundaries."""
    segs: list[Seg] = []
    pos = 0
    for a, b in nonzero:
        if a > pos:
            segs.append([pos, a, a - pos, 0, 0])
        segs.append([a, b, b - a, 1, 0])
        pos = b
    if pos < total:
        segs.append([pos, total, total - pos, 0, 0])
    return segs


def split_at(segs: list[Seg], pos: int) -> int:
    """Ensure a segment boundary at ``pos``; return the index of the segment starting there."""
    lo, hi = 0, len(segs)
    while lo < hi:
        mid = (lo + hi) // 2
        if segs[mid][1] <= pos:
            lo = mid + 1
        else:
            hi = mid
    if lo == len(segs):
        return lo
    s = segs[lo]
    if s[0] == pos:
        return lo
    length, dirty = s[1] - s[0], s[2]
    left_len = pos - s[0]
    left = dirty * left_len // length
    # keep both halves feasible (dirty <= length)
    left = max(left, dirty - (length - left_len))
    cached = s[4] * left_len // length
    segs[lo : lo + 1] = [
        [s[0], pos, left, s[3], cached],
        [pos, s[1], dirty - left, s[3], s[4] - cached],
    ]
    return lo + 1


def union(segs: list[Seg], log: list[LogRange]) -> int:
    """OR a dirty log into the bitmap; return the number of newly dirty pages."""
    newly = 0
    for a, b, count in log:
        if count <= 0 or b <= a:
            continue
        i = split_at(segs, a)
        split_at(segs, b)
        span = b - a
        while i < len(segs) and segs[i][0] < b:
            s = segs[i]
            length = s[1] - s[0]
            lc = count * (s[1] - a) // span - count * (s[0] - a) // span
            old = s[2]
            new = min(length, old + lc - (old * lc + length // 2) // length)
            newly += new - old
            s[2] = new
            i += 1
    return newly


def coalesce(segs: list[Seg]) -> None:
    """Merge neighbours that are both clean with the same content and cache share."""
    out: list[Seg] = []
    for s in segs:
        o = out[-1] if out else None
        if (
            o is not None
            and o[2] == 0
            and s[2] == 0
            and o[3] == s[3]
            and o[1] == s[0]
            and o[4] * (s[1] - s[0]) == s[4] * (o[1] - o[0])
        ):
            o[1] = s[1]
            o[4] += s[4]
        else:
            out.append(s)
    segs[:] = out


def dirty_count(segs: list[Seg]) -> int:
    return sum(s[2] for s in segs)
