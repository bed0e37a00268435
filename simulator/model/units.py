"""Sizes and wire costs shared by the model (QEMU names where they exist)."""

from __future__ import annotations

import math

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40

#: TARGET_PAGE_SIZE on x86_64 and aarch64 (4 KiB guests).
PAGE_SIZE = 4096
#: ram.c save_page_header: 8-byte offset|flags word.
PAGE_HEADER = 8
#: ram.c save_zero_page: header + one byte (the fill value).
ZERO_PAGE_WIRE = PAGE_HEADER + 1
#: ram.c ram_save_page: header + the whole page.
NORMAL_PAGE_WIRE = PAGE_HEADER + PAGE_SIZE
#: RAM_SAVE_FLAG_EOS marker closing every ram_save_iterate / ram_save_complete.
EOS_WIRE = 8
#: xbzrle page: header + 1-byte ENCODING_FLAG_XBZRLE + be16 length (+ delta).
XBZRLE_OVERHEAD = PAGE_HEADER + 3
#: migration.c BUFFER_DELAY: the rate-limit window (seconds).
BUFFER_DELAY = 0.1
#: migration.c MAX_THROTTLE (default max-bandwidth, bytes/s).
MAX_THROTTLE = 128 * MiB
#: migration.c DEFAULT_MIGRATE_SET_DOWNTIME (ms).
DEFAULT_DOWNTIME_LIMIT_MS = 300


def pages(nbytes: int) -> int:
    """Whole pages needed for ``nbytes`` (rounded up)."""
    return -(-nbytes // PAGE_SIZE)


def window_budget(bandwidth: int) -> float:
    """Bytes one 100 ms window may send at ``bandwidth`` bytes/s; inf for no limit.

    QEMU 7.2 migration/migration.c sets the limit to ``bandwidth / XFER_LIMIT_RATIO``
    (integer division by 10) and migration/qemu-file.c qemu_file_rate_limit limits only
    while that is above 0: a bandwidth under 10 bytes/s is no limit at all."""
    limit = bandwidth // 10
    return float(limit) if limit > 0 else math.inf
